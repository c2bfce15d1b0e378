"""SubscriptionTable without a server: reference counts, routing, acknowledgements, gap events.

The table is the single source of truth for what the process wants from Redis (design invariant
2) and the router that hands pushed frames to local sinks without waiting (invariant 1).
"""

from __future__ import annotations

import gc
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from actors.redis import (
    ConnectionLost,
    Kind,
    RedisMessage,
    Resubscribed,
    SubscriptionEvent,
    SubscriptionTable,
)


def ZERO_CLOCK() -> float:
    """The table reads trio's clock by default; these tests route frames outside trio."""
    return 0.0


class ListSink:
    """A sink that records what it is given; ``accept=False`` makes it refuse (a full mailbox)."""

    def __init__(self, *, accept: bool = True) -> None:
        self.accept = accept
        self.events: list[SubscriptionEvent] = []
        self.refused = 0

    def deliver(self, event: SubscriptionEvent) -> bool:
        if not self.accept:
            self.refused += 1
            return False
        self.events.append(event)
        return True

    @property
    def messages(self) -> list[RedisMessage]:
        return [event for event in self.events if isinstance(event, RedisMessage)]


# --- reference counts ---------------------------------------------------------------------------


def test_first_add_and_last_remove_are_reported() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    a, b = ListSink(), ListSink()
    assert table.add(Kind.CHANNEL, b"news", a) is True
    assert table.add(Kind.CHANNEL, b"news", b) is False
    assert len(table) == 1
    row = table.get(Kind.CHANNEL, b"news")
    assert row is not None
    assert row.sinks == [a, b]
    assert table.remove(Kind.CHANNEL, b"news", a) is False
    assert table.get(Kind.CHANNEL, b"news") is not None
    assert table.remove(Kind.CHANNEL, b"news", b) is True
    assert table.get(Kind.CHANNEL, b"news") is None
    assert len(table) == 0
    # Removing again, or a sink that never subscribed, is not a "last remove".
    assert table.remove(Kind.CHANNEL, b"news", b) is False
    table.add(Kind.CHANNEL, b"news", a)
    assert table.remove(Kind.CHANNEL, b"news", b) is False
    assert table.get(Kind.CHANNEL, b"news") is not None


def test_the_same_sink_twice_counts_twice() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sink = ListSink()
    assert table.add(Kind.CHANNEL, b"c", sink) is True
    assert table.add(Kind.CHANNEL, b"c", sink) is False
    assert table.remove(Kind.CHANNEL, b"c", sink) is False
    assert table.remove(Kind.CHANNEL, b"c", sink) is True


def test_kinds_are_counted_separately() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sink = ListSink()
    assert table.add(Kind.CHANNEL, b"x", sink) is True
    assert table.add(Kind.PATTERN, b"x", sink) is True
    assert table.add(Kind.SHARD, b"x", sink) is True
    assert len(table) == 3
    assert table.names(Kind.CHANNEL) == [b"x"]
    assert table.names(Kind.PATTERN) == [b"x"]
    assert table.names(Kind.SHARD) == [b"x"]
    assert table.remove(Kind.PATTERN, b"x", sink) is True
    assert table.names(Kind.PATTERN) == []
    assert table.names(Kind.CHANNEL) == [b"x"]


def test_rows_and_names_keep_the_order_of_first_subscription() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sink = ListSink()
    for name in (b"c", b"a", b"b"):
        table.add(Kind.CHANNEL, name, sink)
    table.add(Kind.PATTERN, b"p*", sink)
    assert table.names(Kind.CHANNEL) == [b"c", b"a", b"b"]
    assert [(row.kind, row.name) for row in table.rows()] == [
        (Kind.CHANNEL, b"c"),
        (Kind.CHANNEL, b"a"),
        (Kind.CHANNEL, b"b"),
        (Kind.PATTERN, b"p*"),
    ]


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([b"a", b"b", b"c"]), st.integers(0, 3)),
        max_size=60,
    )
)
def test_reference_counts_match_a_model(operations: list[tuple[bool, bytes, int]]) -> None:
    """Random adds and removes: "first" and "last" are reported exactly at 0 -> 1 and 1 -> 0."""
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sinks = [ListSink() for _ in range(4)]
    model: dict[bytes, list[int]] = {}
    for adding, name, index in operations:
        holders = model.setdefault(name, [])
        if adding:
            assert table.add(Kind.CHANNEL, name, sinks[index]) is (not holders)
            holders.append(index)
        else:
            expected_last = holders == [index]
            assert table.remove(Kind.CHANNEL, name, sinks[index]) is expected_last
            if index in holders:
                holders.remove(index)
        assert set(table.names(Kind.CHANNEL)) == {n for n, h in model.items() if h}
    for name, holders in model.items():
        row = table.get(Kind.CHANNEL, name)
        if holders:
            assert row is not None
            positions = [next(i for i, s in enumerate(sinks) if s is sink) for sink in row.sinks]
            assert sorted(positions) == sorted(holders)
        else:
            assert row is None


# --- routing ------------------------------------------------------------------------------------


def test_message_frames_reach_their_channel_sinks() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    a, b, other = ListSink(), ListSink(), ListSink()
    table.add(Kind.CHANNEL, b"news", a)
    table.add(Kind.CHANNEL, b"news", b)
    table.add(Kind.CHANNEL, b"other", other)
    assert table.route([b"message", b"news", b"hello"]) is True
    assert len(a.messages) == len(b.messages) == 1
    assert other.events == []
    message = a.messages[0]
    assert message is b.messages[0]  # one object shared by every sink
    assert message.kind is Kind.CHANNEL
    assert message.channel == b"news"
    assert message.payload == b"hello"
    assert message.pattern is None
    assert message.subscription == b"news"
    row = table.get(Kind.CHANNEL, b"news")
    assert row is not None
    assert (row.delivered, row.dropped) == (2, 0)


def test_a_routed_message_is_not_tracked_by_the_cyclic_collector() -> None:
    """Messages waiting in mailboxes must not count towards the collector's next full
    collection; what a layer above keeps in ``decoded`` stays alive as long as the message."""
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sink = ListSink()
    table.add(Kind.CHANNEL, b"news", sink)
    table.route([b"message", b"news", b"hello"])
    message = sink.messages[0]
    assert not gc.is_tracked(message)
    message.decoded = decoded = {"text": ["hello"]}
    del decoded
    gc.collect()
    assert message.decoded == {"text": ["hello"]}
    assert message != RedisMessage(Kind.CHANNEL, b"news", b"hello")  # compared by identity


def test_pattern_messages_carry_the_concrete_channel() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sink = ListSink()
    table.add(Kind.PATTERN, b"news.*", sink)
    assert table.route([b"pmessage", b"news.*", b"news.sport", b"goal"]) is True
    [message] = sink.messages
    assert message.kind is Kind.PATTERN
    assert message.pattern == b"news.*"
    assert message.channel == b"news.sport"
    assert message.payload == b"goal"
    assert message.subscription == b"news.*"
    assert "news.sport" in repr(message)
    assert "news.*" in repr(message)


def test_shard_messages_go_to_shard_subscriptions_only() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    shard, plain = ListSink(), ListSink()
    table.add(Kind.SHARD, b"s", shard)
    table.add(Kind.CHANNEL, b"s", plain)
    assert table.route([b"smessage", b"s", b"x"]) is True
    assert [m.kind for m in shard.messages] == [Kind.SHARD]
    assert plain.events == []
    assert table.route([b"message", b"s", b"y"]) is True
    assert [m.payload for m in plain.messages] == [b"y"]
    assert [m.payload for m in shard.messages] == [b"x"]


def test_channel_and_matching_pattern_deliver_once_per_subscription() -> None:
    """Redis sends one frame per matching subscription; the table routes each of them once."""
    table = SubscriptionTable(clock=ZERO_CLOCK)
    both, channel_only, pattern_only = ListSink(), ListSink(), ListSink()
    table.add(Kind.CHANNEL, b"news.sport", both)
    table.add(Kind.PATTERN, b"news.*", both)
    table.add(Kind.CHANNEL, b"news.sport", channel_only)
    table.add(Kind.PATTERN, b"news.*", pattern_only)
    # What Redis pushes for one PUBLISH news.sport goal: a message, then a pmessage.
    table.route([b"message", b"news.sport", b"goal"])
    table.route([b"pmessage", b"news.*", b"news.sport", b"goal"])
    assert [(m.kind, m.payload) for m in both.messages] == [
        (Kind.CHANNEL, b"goal"),
        (Kind.PATTERN, b"goal"),
    ]
    assert [m.kind for m in channel_only.messages] == [Kind.CHANNEL]
    assert [m.kind for m in pattern_only.messages] == [Kind.PATTERN]


def test_acknowledgements_set_and_clear_the_flag() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sink = ListSink()
    for kind in Kind:
        table.add(kind, b"n", sink)
    assert table.unacknowledged() == 3
    for word, kind in [
        (b"subscribe", Kind.CHANNEL),
        (b"psubscribe", Kind.PATTERN),
        (b"ssubscribe", Kind.SHARD),
    ]:
        assert table.route([word, b"n", 1]) is True
        row = table.get(kind, b"n")
        assert row is not None
        assert row.acknowledged
    assert table.unacknowledged() == 0
    table.mark_unacknowledged()
    assert table.unacknowledged() == 3
    for word in (b"subscribe", b"psubscribe", b"ssubscribe"):
        table.route([word, b"n", 1])
    for kind in Kind:  # ours: an unsubscribe went out (then a subscribe, still due)
        table.unsubscribe_sent(kind, b"n")
    assert table.route([b"unsubscribe", b"n", 0]) is True
    assert table.route([b"punsubscribe", b"n", 0]) is True
    assert table.route([b"sunsubscribe", b"n", 0]) is True
    assert table.unacknowledged() == 3
    assert sink.events == []  # acknowledgements are never delivered to sinks
    assert table.server_unsubscribed == 0


def test_acknowledgement_of_an_unknown_name_is_harmless() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    assert table.route([b"subscribe", b"gone", 0]) is True
    assert table.route([b"unsubscribe", b"gone", 0]) is True
    assert len(table) == 0
    assert table.unroutable == 0


def test_unroutable_messages_are_counted() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sink = ListSink()
    table.add(Kind.CHANNEL, b"kept", sink)
    assert table.route([b"message", b"left", b"x"]) is True
    assert table.route([b"pmessage", b"l*", b"left", b"x"]) is True
    assert table.route([b"smessage", b"left", b"x"]) is True
    # The channel name is subscribed, but not as a pattern: still unroutable.
    assert table.route([b"pmessage", b"kept", b"kept", b"x"]) is True
    assert table.unroutable == 4
    assert sink.events == []


def test_a_refusing_sink_is_counted_as_a_drop_and_does_not_affect_others() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    full, ok = ListSink(accept=False), ListSink()
    table.add(Kind.CHANNEL, b"c", full)
    table.add(Kind.CHANNEL, b"c", ok)
    for index in range(5):
        table.route([b"message", b"c", str(index).encode()])
    row = table.get(Kind.CHANNEL, b"c")
    assert row is not None
    assert (row.delivered, row.dropped) == (5, 5)
    assert full.refused == 5
    assert [m.payload for m in ok.messages] == [b"0", b"1", b"2", b"3", b"4"]


def test_broadcast_tells_each_sink_once() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    a, b, c = ListSink(), ListSink(), ListSink()
    table.add(Kind.CHANNEL, b"1", a)
    table.add(Kind.CHANNEL, b"2", a)
    table.add(Kind.PATTERN, b"*", a)
    table.add(Kind.CHANNEL, b"1", a)  # the same sink twice on one row
    table.add(Kind.CHANNEL, b"2", b)
    table.add(Kind.SHARD, b"3", c)
    lost = ConnectionLost(at=1.0, reason="test")
    table.broadcast(lost)
    assert a.events == [lost]
    assert b.events == [lost]
    assert c.events == [lost]
    back = Resubscribed(gap_start=1.0, gap_end=2.0)
    table.broadcast(back)
    assert a.events == [lost, back]
    assert b.events == [lost, back]
    # A sink that refuses is not retried and does not stop the others.
    table.add(Kind.CHANNEL, b"4", ListSink(accept=False))
    d = ListSink()
    table.add(Kind.CHANNEL, b"5", d)
    table.broadcast(lost)
    assert d.events == [lost]


# --- malformed frames ---------------------------------------------------------------------------


def test_frames_that_are_not_pubsub_are_refused() -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sink = ListSink()
    table.add(Kind.CHANNEL, b"c", sink)
    frames: list[list[Any]] = [
        [],
        [1, 2, 3],
        [None],
        ["message", "c", "x"],  # str, not bytes
        [b"message", b"c"],  # too short
        [b"message", b"c", b"x", b"y"],  # too long
        [b"message", 5, b"x"],
        [b"message", b"c", 5],
        [b"message", b"c", [b"x"]],
        [b"pmessage", b"c", b"c"],
        [b"pmessage", b"*", b"c", None],
        [b"smessage", b"c"],
        [b"subscribe", b"c"],
        [b"subscribe", 5, 1],
        [b"invalidate", [b"key"]],
        [b"MESSAGE", b"c", b"x"],
    ]
    for frame in frames:
        assert table.route(frame) is False, frame
    table.route_many([*frames, [[b"message"], b"c", b"x"]])  # the batch path, an odd word too
    assert sink.events == []
    assert table.unroutable == 0
    row = table.get(Kind.CHANNEL, b"c")
    assert row is not None
    assert not row.acknowledged


_atoms = st.one_of(
    st.binary(max_size=8),
    st.sampled_from(
        [
            b"message",
            b"pmessage",
            b"smessage",
            b"subscribe",
            b"psubscribe",
            b"ssubscribe",
            b"unsubscribe",
            b"punsubscribe",
            b"sunsubscribe",
            b"c",
            b"c*",
        ]
    ),
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(max_size=4),
)
_values = st.recursive(
    _atoms,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.binary(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.lists(st.lists(_values, max_size=5), max_size=20))
def test_random_frames_never_crash_and_never_corrupt_counts(frames: list[list[Any]]) -> None:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    channel, pattern = ListSink(), ListSink(accept=False)
    table.add(Kind.CHANNEL, b"c", channel)
    table.add(Kind.PATTERN, b"c*", pattern)
    for frame in frames:
        routed = table.route(frame)
        assert isinstance(routed, bool)
    channel_row = table.get(Kind.CHANNEL, b"c")
    pattern_row = table.get(Kind.PATTERN, b"c*")
    assert channel_row is not None
    assert pattern_row is not None
    # Every event a sink got is a well-formed message for its own subscription.
    for message in channel.events:
        assert isinstance(message, RedisMessage)
        assert message.kind is Kind.CHANNEL
        assert message.channel == b"c"
        assert isinstance(message.payload, bytes)
    assert channel_row.delivered == len(channel.events)
    assert channel_row.dropped == 0
    assert pattern_row.delivered == 0
    assert pattern_row.dropped == pattern.refused
    assert len(table) == 2


# --- routing a whole read at once -----------------------------------------------------------


class RaisingSink(ListSink):
    def deliver(self, event: SubscriptionEvent) -> bool:
        raise RuntimeError("a broken sink")


def _routed_table() -> tuple[SubscriptionTable, dict[str, ListSink]]:
    table = SubscriptionTable(clock=ZERO_CLOCK)
    sinks = {
        "one": ListSink(),
        "full": ListSink(accept=False),
        "broken": RaisingSink(),
        "two-a": ListSink(),
        "two-b": ListSink(),
        "pattern": ListSink(),
    }
    table.add(Kind.CHANNEL, b"one", sinks["one"])
    table.add(Kind.CHANNEL, b"full", sinks["full"])
    table.add(Kind.CHANNEL, b"broken", sinks["broken"])
    table.add(Kind.CHANNEL, b"two", sinks["two-a"])
    table.add(Kind.CHANNEL, b"two", sinks["two-b"])
    table.add(Kind.PATTERN, b"p.*", sinks["pattern"])
    return table, sinks


FRAMES: list[Any] = [
    [b"message", b"one", b"1"],
    [b"message", b"full", b"2"],
    [b"message", b"broken", b"3"],
    [b"message", b"two", b"4"],
    [b"message", b"nobody", b"5"],
    [b"pmessage", b"p.*", b"p.x", b"6"],
    [b"message", b"one", 7],  # malformed: the payload is not bytes
    [b"message", b"one"],  # malformed: too short
    [b"subscribe", b"one", 1],
    [b"smessage", b"one", b"9"],  # no shard subscription of that name
    [[b"message"], b"one", b"10"],  # not a Pub/Sub frame
    [b"message", b"one", b"8"],
]


def test_route_many_does_what_route_does_frame_by_frame() -> None:
    one_by_one, sinks_one = _routed_table()
    together, sinks_many = _routed_table()
    for frame in FRAMES:
        one_by_one.route(frame)
    together.route_many(FRAMES)
    for sink_name in sinks_one:
        payloads = [m.payload for m in sinks_one[sink_name].messages]
        assert [m.payload for m in sinks_many[sink_name].messages] == payloads, sink_name
    assert [m.payload for m in sinks_many["one"].messages] == [b"1", b"8"]
    for kind, name in [
        (Kind.CHANNEL, b"one"),
        (Kind.CHANNEL, b"full"),
        (Kind.CHANNEL, b"broken"),
        (Kind.CHANNEL, b"two"),
        (Kind.PATTERN, b"p.*"),
    ]:
        expected, row = one_by_one.get(kind, name), together.get(kind, name)
        assert expected is not None
        assert row is not None
        assert (row.delivered, row.dropped, row.acknowledged) == (
            expected.delivered,
            expected.dropped,
            expected.acknowledged,
        ), name
    assert (together.unroutable, together.malformed) == (2, 2)
    assert (one_by_one.unroutable, one_by_one.malformed) == (2, 2)
    assert together.last_frame is not None


# --- unsubscribes nobody asked for --------------------------------------------------------------


class Clock:
    """A clock a test sets by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


UNSUBSCRIBES = [
    (
        Kind.SHARD,
        b"sunsubscribe",
        b"ssubscribe",
        "the server ended the shard subscription (its hash slot moved)",
    ),
    (Kind.CHANNEL, b"unsubscribe", b"subscribe", "the server ended the channel subscription"),
    (Kind.PATTERN, b"punsubscribe", b"psubscribe", "the server ended the pattern subscription"),
]


@pytest.mark.parametrize(("kind", "unsubscribe", "subscribe", "reason"), UNSUBSCRIBES)
def test_an_unsubscribe_nobody_asked_for_is_a_gap_of_that_subscription_alone(
    kind: Kind, unsubscribe: bytes, subscribe: bytes, reason: str
) -> None:
    clock = Clock()
    asked: list[tuple[Kind, bytes]] = []
    table = SubscriptionTable(on_server_unsubscribed=lambda *row: asked.append(row), clock=clock)
    moved, other = ListSink(), ListSink()
    table.add(kind, b"moved", moved)
    table.add(kind, b"moved", moved)  # the same sink twice: told once
    table.add(kind, b"kept", other)
    for name in (b"moved", b"kept"):
        table.route([subscribe, name, 1])
    clock.now = 2.5
    assert table.route([unsubscribe, b"moved", 0]) is True

    row = table.get(kind, b"moved")
    assert row is not None
    assert (row.acknowledged, row.gap_start, len(row.sinks)) == (False, 2.5, 2)
    assert moved.events == [ConnectionLost(at=2.5, reason=reason, kind=kind, name=b"moved")]
    assert (asked, table.server_unsubscribed, table.unacknowledged()) == ([(kind, b"moved")], 1, 1)
    assert other.events == []  # a subscription's gap is no other subscription's
    # Messages of the other subscription still flow; the resubscription's acknowledgement
    # closes the gap, for the sinks of that subscription only.
    clock.now = 3.0
    table.route([subscribe, b"moved", 1])
    assert (row.acknowledged, row.gap_start) == (True, None)
    back = Resubscribed(gap_start=2.5, gap_end=3.0, kind=kind, name=b"moved")
    assert moved.events[1:] == [back]
    assert back.duration == 0.5
    assert other.events == []


@pytest.mark.parametrize(("kind", "unsubscribe", "subscribe", "reason"), UNSUBSCRIBES)
def test_our_own_unsubscribe_is_an_acknowledgement_even_when_subscribed_again_since(
    kind: Kind, unsubscribe: bytes, subscribe: bytes, reason: str
) -> None:
    asked: list[tuple[Kind, bytes]] = []
    table = SubscriptionTable(on_server_unsubscribed=lambda *row: asked.append(row), clock=Clock())
    first, second = ListSink(), ListSink()
    table.add(kind, b"n", first)
    table.route([subscribe, b"n", 1])
    assert table.remove(kind, b"n", first) is True
    table.unsubscribe_sent(kind, b"n")  # the last sink left: the hub unsubscribed
    table.add(kind, b"n", second)  # and a new one subscribed before the acknowledgement came
    table.route([unsubscribe, b"n", 0])
    row = table.get(kind, b"n")
    assert row is not None
    assert not row.acknowledged
    table.route([subscribe, b"n", 1])
    assert table.statistics()[0].acknowledged
    assert (asked, table.server_unsubscribed, first.events, second.events) == ([], 0, [], [])
    # The one acknowledgement due was used up: another unsubscribe is the server's own.
    table.route([unsubscribe, b"n", 0])
    assert (asked, table.server_unsubscribed) == ([(kind, b"n")], 1)
    assert [type(event) for event in second.events] == [ConnectionLost]


def test_a_new_connection_owes_no_acknowledgement_of_the_old_one_s_unsubscribes() -> None:
    asked: list[tuple[Kind, bytes]] = []
    table = SubscriptionTable(on_server_unsubscribed=lambda *row: asked.append(row), clock=Clock())
    sink = ListSink()
    table.add(Kind.SHARD, b"n", sink)
    table.unsubscribe_sent(Kind.SHARD, b"n")  # on a connection that broke before answering
    table.mark_unacknowledged()
    table.route([b"ssubscribe", b"n", 1])
    table.route([b"sunsubscribe", b"n", 0])
    assert asked == [(Kind.SHARD, b"n")]


def test_a_removal_during_an_open_gap_asks_again_and_tells_once() -> None:
    clock = Clock()
    asked: list[tuple[Kind, bytes]] = []
    table = SubscriptionTable(on_server_unsubscribed=lambda *row: asked.append(row), clock=clock)
    sink = ListSink()
    table.add(Kind.SHARD, b"n", sink)
    table.route([b"ssubscribe", b"n", 1])
    table.route([b"sunsubscribe", b"n", 0])
    clock.now = 1.0
    table.route([b"ssubscribe", b"n", 1])
    clock.now = 2.0
    table.route([b"sunsubscribe", b"n", 0])
    clock.now = 3.0
    table.route([b"sunsubscribe", b"n", 0])  # moved again before the resubscription landed
    table.route([b"ssubscribe", b"n", 1])
    assert table.server_unsubscribed == 3
    assert len(asked) == 3
    assert [(type(event).__name__, getattr(event, "at", None)) for event in sink.events] == [
        ("ConnectionLost", 0.0),
        ("Resubscribed", None),
        ("ConnectionLost", 2.0),
        ("Resubscribed", None),
    ]
    last = sink.events[-1]
    assert isinstance(last, Resubscribed)
    assert (last.gap_start, last.gap_end) == (2.0, 3.0)


def test_an_unsubscribe_for_a_name_nobody_holds_tells_nobody() -> None:
    asked: list[tuple[Kind, bytes]] = []
    table = SubscriptionTable(on_server_unsubscribed=lambda *row: asked.append(row), clock=Clock())
    sink = ListSink()
    table.add(Kind.SHARD, b"held", sink)
    assert table.route([b"sunsubscribe", b"gone", 0]) is True
    assert (asked, table.server_unsubscribed, sink.events) == ([], 0, [])


def test_a_sink_that_refuses_the_gap_event_breaks_nothing() -> None:
    table = SubscriptionTable(clock=Clock())
    refusing, raising, fine = ListSink(accept=False), ListSink(), ListSink()

    def boom(event: SubscriptionEvent) -> bool:
        raise RuntimeError("broken sink")

    raising.deliver = boom  # type: ignore[method-assign]
    for sink in (refusing, raising, fine):
        table.add(Kind.SHARD, b"n", sink)
    table.route([b"sunsubscribe", b"n", 0])
    assert [type(event) for event in fine.events] == [ConnectionLost]
    assert table.server_unsubscribed == 1


def test_every_unsubscribe_sent_owes_one_acknowledgement() -> None:
    asked: list[tuple[Kind, bytes]] = []
    table = SubscriptionTable(on_server_unsubscribed=lambda *row: asked.append(row), clock=Clock())
    sink = ListSink()
    table.add(Kind.SHARD, b"n", sink)
    table.unsubscribe_sent(Kind.SHARD, b"n")  # left, joined, left again, joined again:
    table.unsubscribe_sent(Kind.SHARD, b"n")  # two unsubscribes on their way
    table.route([b"sunsubscribe", b"n", 0])
    table.route([b"sunsubscribe", b"n", 0])
    assert (asked, sink.events) == ([], [])
    table.route([b"sunsubscribe", b"n", 0])
    assert asked == [(Kind.SHARD, b"n")]
