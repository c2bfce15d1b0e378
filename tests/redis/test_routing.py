"""``command_key``: which key a cluster client routes a command by."""

from __future__ import annotations

import pytest

from actors.redis import Argument, command_key


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("HSET", "{user:1}.profile", "name", "ada"), b"{user:1}.profile"),
        ((b"get", b"k"), b"k"),
        (("EVALSHA", "abc", 2, "{s}.a", "{s}.b", "argv"), b"{s}.a"),
        (("EVAL", "return 1", 0), None),
        (("EVAL", "return 1", "x"), None),
        (("FCALL_RO", "f", "1", "key"), b"key"),
        (("XREAD", "COUNT", 5, "STREAMS", "{s}.log", "0"), b"{s}.log"),
        (("XREADGROUP", "GROUP", "g", "c", "streams", "s", ">"), b"s"),
        (("XREAD", "COUNT", 5), None),
        (("PUBLISH", "news", "x"), None),
        (("CLUSTER", "SHARDS"), None),
        (("ping",), None),
        (("DBSIZE",), None),
        ((), None),
    ],
)
def test_the_routing_key_of_a_command(args: tuple[Argument, ...], key: bytes | None) -> None:
    assert command_key(args) == key
