"""Cluster hash slots: ``key_slot`` agrees with the specification and with ``CLUSTER KEYSLOT``."""

from __future__ import annotations

import random

import pytest
import trio
from _servers import cluster_node_args
from hypothesis import given
from hypothesis import strategies as st

from actors.redis import HASH_SLOTS, key_slot, open_redis_connection
from actors.testing import RedisServerFactory

# Keys and the slots Redis 7 gives them (CLUSTER KEYSLOT), the cluster specification's examples.
VECTORS = [
    ("{user1000}.a", 3443),
    ("{user1000}.b", 3443),
    ("user1000", 3443),
    ("foo{}{bar}", 8363),  # an empty tag: the whole key is hashed
    ("foo{{bar}}zap", 4015),  # the tag is "{bar"
    ("{bar", 4015),
    ("foo{bar}{zap}", 5061),  # only the first tag counts
    ("bar", 5061),
    ("123456789", 12739),  # CRC16/XMODEM("123456789") is 0x31C3
    ("", 0),
    ("a{", 14311),  # no closing brace: the whole key is hashed
    ("}{x}", 16287),
    ("{}", 15257),
]


def reference_slot(key: bytes) -> int:
    """The specification's algorithm, bit by bit: the reference ``key_slot`` is checked against."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    crc = 0
    for byte in key:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384


@pytest.mark.parametrize(("key", "slot"), VECTORS)
def test_key_slot_of_the_specification_vectors(key: str, slot: int) -> None:
    assert key_slot(key) == slot
    assert key_slot(key.encode()) == slot
    assert reference_slot(key.encode()) == slot


def test_keys_sharing_a_hash_tag_share_a_slot() -> None:
    tagged = [f"presence:{{lobby}}:{suffix}" for suffix in ("members", "expiry", "users")]
    assert {key_slot(key) for key in tagged} == {key_slot("lobby")}


def test_a_str_key_is_hashed_as_its_utf8_bytes() -> None:
    assert key_slot("caf\u00e9{\u00e9}") == key_slot("\u00e9".encode()) == key_slot(b"\xc3\xa9")


@given(st.binary(max_size=64) | st.text(alphabet="ab{}", max_size=12).map(str.encode))
def test_key_slot_matches_the_bitwise_reference(key: bytes) -> None:
    slot = key_slot(key)
    assert slot == reference_slot(key)
    assert 0 <= slot < HASH_SLOTS


def random_keys(count: int, seed: int) -> list[bytes]:
    """Keys of every shape: plain, with braces in any place and number, with any byte."""
    rng = random.Random(seed)
    alphabet = [b"{", b"}", b"a", b"b", b":", b"\x00", b"\xff", b"\xc3\xa9"]
    keys = []
    for index in range(count):
        if index % 4 == 0:
            keys.append(rng.randbytes(rng.randrange(0, 40)))
        else:
            keys.append(b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 16))))
    return keys


async def test_key_slot_agrees_with_cluster_keyslot(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(cluster_node_args())
    keys = [key.encode() for key, _ in VECTORS] + random_keys(2000, seed=11)
    answers: dict[bytes, int] = {}
    with trio.fail_after(20):
        async with open_redis_connection(server.url) as redis:

            async def ask(chunk: list[bytes]) -> None:
                for key in chunk:
                    answers[key] = await redis.execute("CLUSTER", "KEYSLOT", key)

            # Eight tasks at once: the connection pipelines their commands.
            async with trio.open_nursery() as nursery:
                for start in range(8):
                    nursery.start_soon(ask, keys[start::8])
    assert len(answers) == len(set(keys))
    assert {key: key_slot(key) for key in answers} == answers
