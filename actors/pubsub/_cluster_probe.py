"""The liveness probe of a cluster node's connection: a shard channel whose slot the node owns.

A plain channel proves nothing about a node's shard subscriptions (a cluster forwards every
``PUBLISH`` to every node), so each node's hub probes with ``SSUBSCRIBE``/``SPUBLISH`` on a shard
channel of its own: the hub's unique prefix, then a hash tag chosen so that the name's slot is
one the node serves. The choice is deterministic (the first tag ``{0}``, ``{1}``, ... that fits),
and kept while the node still serves that slot; a refresh that takes the slot away re-homes the
probe (``PubSubHub.rehome_probe``).
"""

from __future__ import annotations

from typing import Final

from actors.redis import HASH_SLOTS, key_slot

__all__ = ["MAX_PROBE_CANDIDATES", "probe_channel_for"]

MAX_PROBE_CANDIDATES: Final = HASH_SLOTS * 16
"""Hash tags tried for a node's probe channel before giving up (a node that owns one slot needs
about 16384; each costs about half a microsecond)."""


def probe_channel_for(prefix: bytes, slots: frozenset[int], current: bytes | None = None) -> bytes:
    """The probe channel of a node that serves ``slots``.

    Args:
        prefix: The hub's own prefix (unique to the process and hub; allow it in ACLs). A
            prefix with a hash tag of its own fixes the slot: then no tag can fit.
        slots: The slots the node serves (its shard's).
        current: The channel in use: kept if its slot is still among ``slots``.

    Returns:
        ``current`` if it still fits, else ``prefix`` plus the first tag ``{n}`` whose slot is
        among ``slots``; ``prefix`` plus ``{0}`` if none fits (no slots, or too many tries): the
        node then answers ``MOVED`` or ``sunsubscribe``, and the probe proves the connection
        with PING alone until a refresh gives it slots.
    """
    if current is not None and key_slot(current) in slots:
        return current
    if slots:
        for number in range(MAX_PROBE_CANDIDATES):
            candidate = prefix + b"{%d}" % number
            if key_slot(candidate) in slots:
                return candidate
    return prefix + b"{0}"
