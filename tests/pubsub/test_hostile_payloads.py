"""100,000 hostile payloads through a real Redis: none crashes anything, each is counted, and the
valid messages published between them all arrive, in order (issue 4, requirement 7)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import attrs
import orjson
import pytest
import trio

from actors import MailboxConfig, Message, Overflow, message_type, open_actor_system
from actors.pubsub import DeadLetter, ErrorPolicy, open_pubsub
from actors.redis import open_redis_connection
from actors.testing import RedisServer
from actors.testing.pytest_plugin import require_redis_server

HOSTILE = 100_000
VALID_EVERY = 10  # one valid message after every ten hostile ones
TIMEOUT = 300.0  # a hang guard: the test takes 25 to 90 s, by how busy the machine is


@message_type("hostile-test.reading")
@attrs.frozen(kw_only=True)
class Reading(Message):
    sensor: str
    value: float
    sequence: int


def hostile_payloads(rng: random.Random) -> Iterator[bytes]:
    """Every kind of bad input a subscriber can meet, in a random order."""
    base = {"type": "hostile-test.reading", "sensor": "s", "value": 1.5, "sequence": 1}
    kinds: list[Callable[[], bytes]] = [
        lambda: b"\xff\xfe invalid utf-8 \xc3\x28",
        lambda: b"",
        lambda: b"not json at all",
        lambda: b"[1, 2, 3]",
        lambda: orjson.dumps({**base, "type": "hostile-test.unknown"}),
        lambda: orjson.dumps({key: value for key, value in base.items() if key != "type"}),
        lambda: orjson.dumps({**base, "type": 42}),
        lambda: orjson.dumps({**base, "value": "not a number"}),
        lambda: orjson.dumps({**base, "sequence": [1]}),
        lambda: orjson.dumps({key: value for key, value in base.items() if key != "sensor"}),
        lambda: b"[" * 5_000 + b"]" * 5_000,
        lambda: b'{"a":' * 3_000 + b"1" + b"}" * 3_000,
        lambda: orjson.dumps({**base, "timestamp": "yesterday"}),
        lambda: orjson.dumps({**base, "timestamp": "2026-11-25T10:00:00"}),  # naive
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64))),
    ]
    big = orjson.dumps({**base, "sensor": "x" * (1024 * 1024 + 1)})  # past the 1 MiB limit
    for number in range(HOSTILE):
        if number % 10_000 == 0:
            yield big
        else:
            yield kinds[rng.randrange(len(kinds))]()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_redis_server()
    server = RedisServer(
        tmp_path_factory.mktemp("hostile"),
        extra_args=("--client-output-buffer-limit", "pubsub 0 0 0"),
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


# 100,000 publishes to a real Redis, a round trip each, take about 23 s on a quiet machine and
# 60 to 90 s under coverage on a busy one. Its own fail_after(TIMEOUT) reports a hang first;
# the session guard sits above it.
@pytest.mark.timeout(2 * TIMEOUT)
async def test_hostile_payloads_are_all_counted_and_valid_ones_all_arrive_in_order(
    redis_url: str,
) -> None:
    rng = random.Random(20261125)
    received: list[int] = []
    letters = 0
    expected_valid = HOSTILE // VALID_EVERY
    done = trio.Event()

    async def handle(reading: Reading) -> None:
        received.append(reading.sequence)
        if len(received) == expected_valid:
            done.set()

    async def dead_letter(letter: DeadLetter) -> None:
        nonlocal letters
        letters += 1

    policy = ErrorPolicy(dead_letters=dead_letter)
    with trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(system, redis_url) as pubsub,
            open_redis_connection(redis_url) as publisher,
        ):
            handle_ = await pubsub.subscribe(
                "sensors",
                handle,
                error_policy=policy,
                mailbox=MailboxConfig(capacity=math.inf, overflow=Overflow.BLOCK),
            )
            # One publisher awaiting each reply: Redis sees the messages in exactly this order.
            sequence = 0
            for number, payload in enumerate(hostile_payloads(rng), start=1):
                assert await publisher.publish("sensors", payload) == 1
                if number % VALID_EVERY == 0:
                    sequence += 1
                    valid = Reading(sensor="s", value=float(sequence), sequence=sequence)
                    encoded = pubsub.settings.codec.encode(valid)
                    assert await publisher.publish("sensors", encoded) == 1
            await done.wait()
            stats = handle_.statistics()
    assert received == list(range(1, expected_valid + 1))
    counters = stats.counters
    assert counters.decode_errors == HOSTILE
    assert counters.skipped == HOSTILE
    assert letters == HOSTILE
    assert counters.handled == expected_valid
    assert counters.escalations == 0
    assert stats.restarts == 0
    assert stats.mailbox.dropped == 0
