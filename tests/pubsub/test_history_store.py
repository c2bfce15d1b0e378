"""A channel's history in Redis: numbering, the capped stream, idempotent retries, the envelope.

Against a private redis-server, and a private Redis Cluster for the single-slot script and
SPUBLISH; the publisher's side only (subscribers that recover come on top of it).
"""

from __future__ import annotations

import pytest
import trio
from push_collector import PushCollector

from actors.pubsub._history import (
    History,
    HistoryWindow,
    Position,
    check_message_id,
    history_keys,
    history_window,
    publish_with_history,
    read_envelope,
    read_range,
    write_envelope,
)
from actors.redis import key_slot, open_redis_connection
from actors.testing import RedisCluster, RedisServer

pytestmark = pytest.mark.redis

HISTORY = History(size=100, ttl=60.0)


def test_history_settings_are_checked() -> None:
    assert History(size=1, ttl=0.0004).ttl_milliseconds == 1
    assert History(size=10, ttl=2.5).ttl_milliseconds == 2500
    for size, ttl in ((0, 1.0), (10, 0.0), (10, -1.0)):
        with pytest.raises(ValueError, match="must be positive"):
            History(size=size, ttl=ttl)


def test_the_keys_of_a_channel_share_its_slot() -> None:
    tagged = history_keys("chat:{lobby}")
    assert tagged.meta == "chat:{lobby}:history:meta"
    assert tagged.stream == "chat:{lobby}:history:stream"
    assert tagged.ids == "chat:{lobby}:history:ids"
    plain = history_keys("notifications")
    assert plain.meta == "{notifications}:history:meta"
    for channel in ("chat:{lobby}", "notifications", "x{y", "user:7", "a{b}c{d}"):
        keys = history_keys(channel)
        slots = {key_slot(channel), key_slot(keys.meta), key_slot(keys.stream)}
        assert slots == {key_slot(channel)}, channel
        assert key_slot(keys.ids) == key_slot(channel)
    for channel in ("a}b", "a{}b"):  # no key's hash tag can be the whole name
        with pytest.raises(ValueError, match="give the channel a hash tag"):
            history_keys(channel)


@pytest.mark.parametrize("message_id", ["", "a b", "{x}", "x" * 129, "é"])
def test_a_message_id_must_be_a_plain_token(message_id: str) -> None:
    with pytest.raises(ValueError, match="invalid message id"):
        check_message_id(message_id)


async def test_publications_are_numbered_kept_and_published_in_an_envelope(
    redis_server: RedisServer,
) -> None:
    pushes = PushCollector()
    async with (
        open_redis_connection(redis_server.url) as redis,
        open_redis_connection(redis_server.url, push_handler=pushes) as listener,
    ):
        listener.send_subscription_command("SUBSCRIBE", "news")
        with trio.fail_after(5):
            await pushes.wait_for(1)  # the acknowledgement
        results = [
            await publish_with_history(
                redis, "news", b'{"n":%d}' % n, history=HISTORY, message_id=f"m{n}"
            )
            for n in (1, 2, 3)
        ]
        epoch = results[0].position.epoch
        assert len(epoch) == 16
        assert [r.position for r in results] == [Position(epoch, n) for n in (1, 2, 3)]
        assert all(r.appended for r in results)
        with trio.fail_after(5):
            frames = await pushes.wait_for(4)
        received = [frame[2] for frame in frames[1:]]
        assert [frame[0] for frame in frames[1:]] == [b"message"] * 3
        assert [read_envelope(e) for e in received] == [
            (Position(epoch, n), b'{"n":%d}' % n) for n in (1, 2, 3)
        ]
        assert received[0] == b'{"epoch":"%s","offset":1,"data":{"n":1}}' % epoch.encode()
        keys = history_keys("news")
        entries = await redis.execute("XRANGE", keys.stream, "2-0", "3-0")
        assert entries == [[b"2-0", [b"data", b'{"n":2}']], [b"3-0", [b"data", b'{"n":3}']]]
        meta = await redis.execute("HGETALL", keys.meta)
        assert meta == {b"epoch": epoch.encode(), b"offset": b"3"}
        assert await redis.execute("ZRANGE", keys.ids, 0, -1, "WITHSCORES") == [
            [b"m1", 1.0],
            [b"m2", 2.0],
            [b"m3", 3.0],
        ]
        for key in (keys.meta, keys.stream, keys.ids):
            ttl = await redis.execute("PTTL", key)
            assert 0 < ttl <= 60_000, key


async def test_a_retried_publish_appends_and_publishes_nothing_again(
    redis_server: RedisServer,
) -> None:
    async with open_redis_connection(redis_server.url) as redis:
        first = await publish_with_history(
            redis, "orders", b'{"n":1}', history=HISTORY, message_id="order-1"
        )
        again = await publish_with_history(
            redis, "orders", b'{"n":1}', history=HISTORY, message_id="order-1"
        )
        other = await publish_with_history(
            redis, "orders", b'{"n":2}', history=HISTORY, message_id="order-2"
        )
    assert first.appended
    assert not again.appended
    assert again.position == first.position
    assert other.position == Position(first.position.epoch, 2)


async def test_an_id_is_remembered_while_its_publication_is_among_the_last_size(
    redis_server: RedisServer,
) -> None:
    small = History(size=3, ttl=60.0)
    async with open_redis_connection(redis_server.url) as redis:
        for n in range(1, 6):
            await publish_with_history(redis, "ids", b"%d" % n, history=small, message_id=f"m{n}")
        recent = await publish_with_history(redis, "ids", b"3", history=small, message_id="m3")
        forgotten = await publish_with_history(redis, "ids", b"2", history=small, message_id="m2")
        kept = await redis.execute("ZRANGE", history_keys("ids").ids, 0, -1)
    assert (recent.appended, recent.position.offset) == (False, 3)
    assert (forgotten.appended, forgotten.position.offset) == (True, 6)  # past the last 3
    assert kept == [b"m4", b"m5", b"m2"]


async def test_the_stream_is_capped_to_about_its_size(redis_server: RedisServer) -> None:
    small = History(size=10, ttl=60.0)
    async with open_redis_connection(redis_server.url) as redis:
        for n in range(1, 501):
            await publish_with_history(redis, "busy", b"%d" % n, history=small, message_id=f"{n}")
        keys = history_keys("busy")
        length = await redis.execute("XLEN", keys.stream)
        last = await redis.execute("XREVRANGE", keys.stream, "+", "-", "COUNT", 1)
    # MAXLEN ~ trims whole nodes (100 entries by default): the newest are always kept.
    assert 10 <= length <= 110
    assert last[0][0] == b"500-0"


async def test_a_history_that_expired_starts_a_new_epoch_from_offset_1(
    redis_server: RedisServer,
) -> None:
    brief = History(size=10, ttl=0.001)
    async with open_redis_connection(redis_server.url) as redis:
        first = await publish_with_history(redis, "c", b"1", history=brief, message_id="a")
        await trio.sleep(0.05)  # 50 times the TTL: Redis expires a key it reads after its TTL
        # Kept longer this time, so that the stream can be read back however slow the machine.
        later = await publish_with_history(redis, "c", b"3", history=HISTORY, message_id="c")
        entries = await redis.execute("XRANGE", history_keys("c").stream, "-", "+")
    assert later.position.offset == 1
    assert later.position.epoch != first.position.epoch
    assert entries == [[b"1-0", [b"data", b"3"]]]


async def test_a_lost_meta_drops_the_old_stream_with_the_old_epoch(
    redis_server: RedisServer,
) -> None:
    async with open_redis_connection(redis_server.url) as redis:
        for n in (1, 2, 3):
            await publish_with_history(redis, "c", b"%d" % n, history=HISTORY, message_id=f"{n}")
        keys = history_keys("c")
        await redis.execute("DEL", keys.meta)  # evicted, say
        fresh = await publish_with_history(redis, "c", b"4", history=HISTORY, message_id="4")
        entries = await redis.execute("XRANGE", keys.stream, "-", "+")
    assert fresh.position.offset == 1
    assert entries == [[b"1-0", [b"data", b"4"]]]


@pytest.mark.parametrize(
    "envelope",
    [
        b"",
        b"[]",
        b'{"epoch":"e","offset":1}',
        b'{"epoch":1,"offset":1,"data":{}}',
        b'{"epoch":"e","offset":0,"data":{}}',
        b'{"epoch":"e","offset":"1","data":{}}',
        b'{"epoch":"e","offset":1.5,"data":{}}',
        b'{"epoch":"e-1","offset":1,"data":{}',
    ],
)
def test_what_is_not_an_envelope_is_refused(envelope: bytes) -> None:
    with pytest.raises(ValueError, match="not a history envelope"):
        read_envelope(envelope)


def test_our_own_envelope_gives_its_payload_back_byte_for_byte() -> None:
    envelope = b'{"epoch":"0a1b","offset":12,"data":{"a": 1, "b": "}"}}'
    assert read_envelope(envelope) == (Position("0a1b", 12), b'{"a": 1, "b": "}"}')
    # Broken, in our shape: the payload it gives is not JSON either, so decoding refuses it.
    assert read_envelope(b'{"epoch":"0a1b","offset":12,"data":{"a":1}') == (
        Position("0a1b", 12),
        b'{"a":1',
    )
    # Not quite ours (an offset with a leading zero): parsed, and refused as JSON.
    with pytest.raises(ValueError, match="not a history envelope"):
        read_envelope(b'{"epoch":"0a1b","offset":012,"data":{}}')


def test_an_envelope_written_by_another_client_reads_the_same() -> None:
    spaced = b'{ "offset": 7, "data": {"a": [1, 2]}, "epoch": "e1" }'
    assert read_envelope(spaced) == (Position("e1", 7), b'{"a":[1,2]}')


async def test_on_a_cluster_the_script_runs_on_the_channel_s_master_and_spublishes(
    redis_cluster: RedisCluster,
) -> None:
    channel = "room:{lobby}"
    master = redis_cluster.master_of_slot(key_slot(channel))
    pushes = PushCollector()
    async with (
        open_redis_connection(master.url) as redis,
        open_redis_connection(master.url, push_handler=pushes) as listener,
    ):
        listener.send_subscription_command("SSUBSCRIBE", channel)
        with trio.fail_after(5):
            await pushes.wait_for(1)  # the acknowledgement
        done = await publish_with_history(
            redis, channel, b'{"x":1}', history=HISTORY, message_id="m", sharded=True
        )
        with trio.fail_after(5):
            frames = await pushes.wait_for(2)
    assert frames[1][:2] == [b"smessage", channel.encode()]
    received = [frames[1][2]]
    assert read_envelope(received[0]) == (done.position, b'{"x":1}')


@pytest.mark.parametrize(
    ("window", "position", "covered"),
    [
        (HistoryWindow("e", last=10, first=1), Position("e", 0), True),
        (HistoryWindow("e", last=10, first=5), Position("e", 4), True),
        (HistoryWindow("e", last=10, first=5), Position("e", 3), False),
        (HistoryWindow("e", last=10, first=5), Position("e", 10), True),
        (HistoryWindow("e", last=10, first=0), Position("e", 10), True),
        (HistoryWindow("e", last=10, first=0), Position("e", 9), False),
        (HistoryWindow("e", last=10, first=1), Position("e", 11), False),
        (HistoryWindow("e", last=10, first=1), Position("other", 3), False),
    ],
)
def test_a_window_covers_a_position_when_all_after_it_is_kept(
    window: HistoryWindow, position: Position, covered: bool
) -> None:
    assert window.covers(position) is covered


async def test_the_window_and_a_range_read_what_the_stream_keeps(
    redis_server: RedisServer,
) -> None:
    small = History(size=100, ttl=60.0)
    async with open_redis_connection(redis_server.url) as redis:
        assert await history_window(redis, "feed") is None
        published = [
            await publish_with_history(redis, "feed", b"%d" % n, history=small, message_id=f"{n}")
            for n in range(1, 2501)
        ]
        epoch = published[0].position.epoch
        window = await history_window(redis, "feed")
        assert window is not None
        assert (window.epoch, window.last) == (epoch, 2500)
        assert 2400 - 100 <= window.first <= 2401  # MAXLEN ~ keeps about the last 100
        got = await read_range(redis, "feed", after=2450, up_to=2456, limit=7)
        rest = await read_range(redis, "feed", after=2456, up_to=None, limit=1000)
        everything = await read_range(redis, "feed", after=0, up_to=2500, limit=5000)
        nothing = await read_range(redis, "feed", after=2500, up_to=None, limit=10)
        window_only = await read_range(redis, "feed", after=0, up_to=None, limit=0)
        with pytest.raises(ValueError, match="limit must not be negative"):
            await read_range(redis, "feed", after=0, up_to=1, limit=-1)
        missing = await read_range(redis, "elsewhere", after=0, up_to=None, limit=10)
    assert got is not None
    assert rest is not None
    assert everything is not None
    assert got.window == window
    assert got.entries == [(n, b"%d" % n) for n in range(2451, 2457)]
    assert rest.entries == [(n, b"%d" % n) for n in range(2457, 2501)]
    assert [offset for offset, _ in everything.entries] == list(range(window.first, 2501))
    assert nothing is not None
    assert nothing.entries == []
    assert window_only is not None
    assert window_only.entries == []
    assert missing is None


@pytest.mark.parametrize(
    ("position", "payload"),
    [
        (Position("9f3a", 1), b'{"n":1}'),
        (Position("00ff", 123456), b'"text"'),
        (Position("e", 7), b"[]"),
    ],
)
def test_the_envelope_writer_matches_the_script_and_the_reader(
    position: Position, payload: bytes
) -> None:
    envelope = write_envelope(position, payload)
    assert envelope == b'{"epoch":"%s","offset":%d,"data":%s}' % (
        position.epoch.encode(),
        position.offset,
        payload,
    )
    assert read_envelope(envelope) == (position, payload)
