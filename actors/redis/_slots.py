"""Redis Cluster hash slots: which of the 16384 slots a key or shard channel belongs to.

A cluster hashes a key (and a shard channel, for ``SSUBSCRIBE``/``SPUBLISH``) with CRC16, the
XMODEM variant its specification calls CRC16/CCITT (polynomial 0x1021, initial value 0), modulo
16384. Only the hash tag is hashed when there is one: the text between the first ``{`` and the
first ``}`` after it, if that text is not empty. So ``{user1000}.following`` and
``{user1000}.followers`` share a slot, and a command or script may use both; ``foo{}{bar}``
hashes whole, ``foo{{bar}}zap`` hashes ``{bar``.

The CRC is the standard library's ``binascii.crc_hqx`` (C code): it computes exactly this CRC, about
8 times as fast as a table-driven CRC in Python (250 ns against 1.9 us for a 23-byte key).
"""

from __future__ import annotations

from binascii import crc_hqx
from typing import Final

__all__ = ["HASH_SLOTS", "hash_tag", "key_slot"]

HASH_SLOTS: Final = 16384
"""Slots of a Redis Cluster's key space."""


def key_slot(key: bytes | str) -> int:
    """The cluster hash slot of a key or shard channel, as ``CLUSTER KEYSLOT`` answers.

    Args:
        key: The key or channel; a ``str`` is encoded as UTF-8, as the client sends it.

    Returns:
        A slot from 0 to 16383: CRC16 (XMODEM) of the hash tag if the key has a non-empty one
        (between its first ``{`` and the next ``}``), else of the whole key, modulo 16384.
    """
    if isinstance(key, str):
        key = key.encode()
    return crc_hqx(hash_tag(key) or key, 0) & (HASH_SLOTS - 1)


def hash_tag(key: bytes) -> bytes | None:
    """The hash tag of a key or shard channel: the non-empty text between its first ``{`` and
    the first ``}`` after it, or None if it has none (then the whole key is hashed)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return None
