"""Which key a command is routed by on a Redis Cluster.

A cluster node serves the commands whose keys hash to its slots; a client finds the slot from
the command's first key. Most commands name it right after the command's name; the scripting
commands name it after the key count, and a few commands have none (the command may then go to
any node). Pure: nothing here talks to a server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actors.redis._resp import Argument

__all__ = ["command_key"]

_KEY_COUNT_COMMANDS: Final = frozenset(
    {b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"}
)
"""``COMMAND numkeys key [key ...] arg ...``: the keys come after the key count."""
_KEYLESS_COMMANDS: Final = frozenset(
    {
        b"PING",
        b"INFO",
        b"CLUSTER",
        b"CLIENT",
        b"PUBSUB",
        b"PUBLISH",
        b"SCRIPT",
        b"FUNCTION",
        b"COMMAND",
        b"TIME",
        b"ECHO",
        b"HELLO",
        b"DBSIZE",
        b"CONFIG",
    }
)
"""Commands without a key: any node answers them (``PUBLISH`` reaches the whole cluster)."""


def _word(argument: Argument) -> bytes:
    if isinstance(argument, bytes):
        return argument
    return str(argument).encode()


def command_key(args: Sequence[Argument]) -> bytes | None:
    """The key a cluster routes a command by, or None for a command without one.

    ``EVAL``/``EVALSHA``/``FCALL`` (and their ``_RO`` forms) are routed by their first key (None
    when their key count is 0); ``XREAD``/``XREADGROUP`` by the first stream after ``STREAMS``;
    commands such as ``PING``, ``INFO``, ``CLUSTER``, ``PUBLISH`` have none; every other command
    by its first argument. Keys of one command must share a slot (use a hash tag), or the
    cluster refuses it with ``CROSSSLOT``.

    Args:
        args: The command name and its arguments, as for ``execute``.
    """
    if not args:
        return None
    name = _word(args[0]).upper()
    if name in _KEYLESS_COMMANDS or len(args) < 2:
        return None
    if name in _KEY_COUNT_COMMANDS:
        count = args[2] if len(args) > 2 else 0
        try:
            keys = int(count)
        except (TypeError, ValueError):
            return None
        return _word(args[3]) if keys > 0 and len(args) > 3 else None
    if name in (b"XREAD", b"XREADGROUP"):
        words = [_word(argument).upper() for argument in args]
        if b"STREAMS" in words:
            index = words.index(b"STREAMS") + 1
            return _word(args[index]) if index < len(args) else None
        return None
    return _word(args[1])
