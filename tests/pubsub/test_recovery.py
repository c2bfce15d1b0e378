"""Channels with history, and subscribers that recover (issue 12, requirements 1 to 3).

The broker conformance suite's recovery half: every scenario takes ``broker_url`` and runs on
``memory://NAME`` and on a private ``redis-server`` with the same expected outcome (the memory
broker keeps history with the semantics of the Redis scripts). A subscriber misses publications
here the way it would in production: through its own bounded mailbox (a blocked handler and a
small ``drop_oldest`` or ``drop_newest`` mailbox), through a lost connection (Redis only), or
by starting from a position it was given (``since``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from actors import ActorSystem, Message, RedisTimeoutError, message_type
from actors.pubsub import (
    ConnectionOptions,
    History,
    Position,
    PubSub,
    PubSubSettings,
    Recovered,
    RecoveryEvent,
    SubscriptionHandle,
    Unrecoverable,
    open_pubsub,
)
from actors.redis import ConnectionLost, Resubscribed, open_redis_connection
from actors.runtime import MailboxConfig, Overflow
from actors.supervision import Backoff
from actors.testing import Inbox, RedisServer

TIMEOUT = 10.0
ROOMS = "room:{*}"
HISTORY = History(size=1000, ttl=600.0)
FAST = Backoff(initial=0.01, multiplier=2.0, maximum=0.05, jitter=0.0, reset_after=0.0)
# A subscriber that reconnects after 0.5 s: long enough for a publisher's messages to be missed.
SLOW = ConnectionOptions(reconnect=attrs.evolve(FAST, initial=0.5, maximum=0.5), ack_timeout=5.0)


@message_type("recovery-test.tick")
@attrs.frozen(kw_only=True)
class Tick(Message):
    n: int


def settings(**changes: Any) -> PubSubSettings:
    defaults: dict[str, Any] = {
        "histories": {ROOMS: HISTORY, "small:{*}": History(size=5, ttl=600.0)},
        "connection": ConnectionOptions(reconnect=FAST, ack_timeout=5.0),
    }
    return PubSubSettings(**(defaults | changes))


@asynccontextmanager
async def pubsub_at(system: ActorSystem, url: str, **changes: Any) -> AsyncIterator[PubSub]:
    async with open_pubsub(system, url, settings=settings(**changes)) as pubsub:
        await pubsub.broker.wait_connected()
        yield pubsub


class Received:
    """What a three-argument handler was given, and the gap events; the handler may be held."""

    def __init__(self) -> None:
        self.messages = Inbox()
        self.events = Inbox()
        self.open = trio.Event()
        self.open.set()

    async def handler(self, message: Tick, channel: str, position: Position | None) -> None:
        await self.open.wait()
        self.messages.add((message.n, position))

    async def on_gap(self, event: ConnectionLost | Resubscribed) -> None:
        self.events.add(event)

    async def on_recovery(self, event: RecoveryEvent) -> None:
        self.events.add(event)

    def numbers(self) -> list[int]:
        return [n for n, _ in self.messages.items]

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events.items if isinstance(event, kind)]


async def publish_ticks(pubsub: PubSub, channel: str, numbers: range) -> None:
    for n in numbers:
        await pubsub.publish(channel, Tick(n=n))


async def test_a_channel_with_history_numbers_its_messages(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        received = Received()
        plain = Inbox()
        await pubsub.subscribe("room:{a}", received.handler)
        await pubsub.subscribe("room:{a}", plain, message_type=Tick)
        counts = [await pubsub.publish("room:{a}", Tick(n=n)) for n in (1, 2, 3)]
        await received.messages.wait_for(3, timeout=TIMEOUT)
        await plain.wait_for(3, timeout=TIMEOUT)
    assert counts == [1, 1, 1]  # one client holds the channel, however many local sinks
    epoch = received.messages.items[0][1].epoch
    assert received.messages.items == [(n, Position(epoch, n)) for n in (1, 2, 3)]
    assert [tick.n for tick in plain.items] == [1, 2, 3]


async def test_a_message_id_is_appended_once(system: ActorSystem, broker_url: str) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        received = Received()
        await pubsub.subscribe("room:{a}", received.handler)
        once = Tick(n=1)
        first = await pubsub.publish("room:{a}", once)
        again = await pubsub.publish("room:{a}", once)  # as a retry would resend it
        await pubsub.publish("room:{a}", Tick(n=2))
        await received.messages.wait_for(2, timeout=TIMEOUT)
        found = await pubsub.history_store.read("room:{a}", after=0, up_to=None, limit=10)
    assert (first, again) == (1, 0)
    assert received.numbers() == [1, 2]
    assert found is not None
    assert [offset for offset, _ in found.entries] == [1, 2]


async def test_a_recovering_subscriber_gets_every_message_once_in_order(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        received = Received()
        received.open = trio.Event()
        small = MailboxConfig(capacity=4, overflow=Overflow.DROP_OLDEST)
        handle = await pubsub.subscribe(
            "room:{a}",
            received.handler,
            recover=True,
            on_recovery=received.on_recovery,
            mailbox=small,
        )
        await publish_ticks(pubsub, "room:{a}", range(1, 201))
        await trio.sleep(0.2)  # the mailbox overflows: most of the 200 are dropped
        received.open.set()
        await publish_ticks(pubsub, "room:{a}", range(201, 211))
        await received.messages.wait_for(210, timeout=TIMEOUT)
        statistics = handle.statistics()
    assert received.numbers() == list(range(1, 211))
    assert [position.offset for _, position in received.messages.items] == list(range(1, 211))
    recovered = sum(event.count for event in received.of(Recovered))
    assert received.of(Unrecoverable) == []
    assert statistics.recovery is not None
    # The dropped messages were read back, as the events and the counters say.
    assert recovered == statistics.recovery.recovered
    assert recovered > 0
    assert statistics.mailbox.dropped_oldest > 0
    assert handle.position == received.messages.items[-1][1]


async def test_a_non_recovering_subscriber_keeps_what_it_got(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        received = Received()
        received.open = trio.Event()
        small = MailboxConfig(capacity=4, overflow=Overflow.DROP_OLDEST)
        handle = await pubsub.subscribe("room:{a}", received.handler, mailbox=small)
        await publish_ticks(pubsub, "room:{a}", range(1, 101))
        await trio.sleep(0.2)
        received.open.set()
        await publish_ticks(pubsub, "room:{a}", range(101, 103))
        await received.messages.wait_until(lambda items: items and items[-1][0] == 102)
        dropped = handle.statistics().mailbox.dropped_oldest
    assert dropped > 0
    assert len(received.numbers()) == 102 - dropped
    assert received.numbers() == sorted(received.numbers())
    assert handle.position is None


async def subscribe_since(
    pubsub: PubSub, channel: str, since: Position, last: int
) -> tuple[Received, SubscriptionHandle]:
    """A recovering subscriber from ``since``: once it has heard how its catch-up went, one
    more message (``last``) is published, and it is received."""
    received = Received()
    handle = await pubsub.subscribe(
        channel, received.handler, recover=True, since=since, on_recovery=received.on_recovery
    )
    await received.events.wait_for(1, timeout=TIMEOUT)
    await pubsub.publish(channel, Tick(n=last))
    await received.messages.wait_until(lambda items: items and items[-1][0] == last)
    return received, handle


async def test_since_delivers_what_came_after_a_position(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        await publish_ticks(pubsub, "room:{b}", range(1, 11))
        window = await pubsub.history_store.read("room:{b}", after=0, up_to=None, limit=0)
        assert window is not None
        since = Position(window.window.epoch, 4)
        received, _ = await subscribe_since(pubsub, "room:{b}", since, last=11)
    assert received.numbers() == list(range(5, 12))
    assert received.events.items == [Recovered("room:{b}", 6, Position(window.window.epoch, 10))]


async def test_since_from_another_epoch_is_unrecoverable(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        await publish_ticks(pubsub, "room:{c}", range(1, 4))
        since = Position("0123456789abcdef", 2)
        received, handle = await subscribe_since(pubsub, "room:{c}", since, last=4)
    [event] = received.events.items
    assert isinstance(event, Unrecoverable)
    assert "new epoch" in event.reason
    assert event.position is not None
    assert event.position.offset == 3
    assert received.numbers() == [4]  # what came before the reload is the app's to load
    assert handle.position == Position(event.position.epoch, 4)


async def test_a_trimmed_history_is_unrecoverable(system: ActorSystem, broker_url: str) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        await publish_ticks(pubsub, "small:{d}", range(1, 301))
        window = await pubsub.history_store.read("small:{d}", after=0, up_to=None, limit=0)
        assert window is not None
        since = Position(window.window.epoch, 1)
        received, _ = await subscribe_since(pubsub, "small:{d}", since, last=301)
    [event] = received.events.items
    assert isinstance(event, Unrecoverable)
    assert "no longer holds offset 2" in event.reason
    assert event.position == Position(window.window.epoch, 300)
    assert received.numbers() == [301]


async def test_the_periodic_check_finds_a_loss_nothing_showed(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url, history_check_interval=0.1) as pubsub:
        received = Received()
        received.open = trio.Event()
        # drop_newest: the last publications are the ones lost, so no later one shows the gap.
        small = MailboxConfig(capacity=2, overflow=Overflow.DROP_NEWEST)
        handle = await pubsub.subscribe(
            "room:{e}",
            received.handler,
            recover=True,
            on_recovery=received.on_recovery,
            mailbox=small,
        )
        await publish_ticks(pubsub, "room:{e}", range(1, 21))
        await trio.sleep(0.05)
        received.open.set()
        await received.messages.wait_for(20, timeout=TIMEOUT)
        statistics = handle.statistics()
    assert statistics.mailbox.dropped_newest > 0
    assert statistics.recovery is not None
    assert received.numbers() == list(range(1, 21))
    recovered = sum(event.count for event in received.of(Recovered))
    assert recovered == statistics.recovery.recovered
    assert recovered > 0
    assert statistics.mailbox.dropped_newest > 0


async def test_a_history_that_restarts_is_unrecoverable_then_followed(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        received = Received()
        await pubsub.subscribe(
            "room:{f}", received.handler, recover=True, on_recovery=received.on_recovery
        )
        await publish_ticks(pubsub, "room:{f}", range(1, 4))
        await received.messages.wait_for(3, timeout=TIMEOUT)
        await pubsub.history_store.forget("room:{f}")  # as an expiry, or a server that lost it
        await publish_ticks(pubsub, "room:{f}", range(4, 6))
        await received.messages.wait_for(5, timeout=TIMEOUT)
    # What a subscriber first reads may come from the history (Recovered) or live: never both.
    [event] = received.of(Unrecoverable)
    assert isinstance(event, Unrecoverable)
    assert "new epoch" in event.reason
    assert received.numbers() == [1, 2, 3, 4, 5]
    assert [position.offset for _, position in received.messages.items] == [1, 2, 3, 1, 2]


async def test_a_forgotten_history_is_gone_and_starts_over(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        await publish_ticks(pubsub, "room:{g}", range(1, 4))
        store = pubsub.history_store
        before = await store.read("room:{g}", after=0, up_to=None, limit=10)
        await store.forget("room:{g}")
        await store.forget("room:{never}")  # nothing to forget: no error
        gone = await store.read("room:{g}", after=0, up_to=None, limit=10)
        await publish_ticks(pubsub, "room:{g}", range(4, 5))
        after = await store.read("room:{g}", after=0, up_to=None, limit=10)
    assert before is not None
    assert len(before.entries) == 3
    assert gone is None
    assert after is not None
    assert after.window.epoch != before.window.epoch
    assert [offset for offset, _ in after.entries] == [1]


async def test_a_subscriber_of_a_new_channel_gets_its_history_from_offset_1(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        received = Received()
        received.open = trio.Event()
        small = MailboxConfig(capacity=2, overflow=Overflow.DROP_OLDEST)
        handle = await pubsub.subscribe(
            "room:{g}",
            received.handler,
            recover=True,
            on_recovery=received.on_recovery,
            mailbox=small,
        )
        assert handle.position is None  # the channel has no history yet
        await publish_ticks(pubsub, "room:{g}", range(1, 51))
        await trio.sleep(0.1)
        received.open.set()
        await received.messages.wait_for(50, timeout=TIMEOUT)
    assert received.numbers() == list(range(1, 51))
    assert received.of(Unrecoverable) == []


async def test_a_pattern_reads_envelopes_but_does_not_recover(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        received = Received()
        await pubsub.psubscribe("room:*", received.handler)
        await pubsub.publish("room:{h}", Tick(n=1))
        await pubsub.publish("room:plain", Tick(n=2))  # no history: no envelope
        await received.messages.wait_for(2, timeout=TIMEOUT)
    [(first, position), (second, none)] = received.messages.items
    assert (first, second) == (1, 2)
    assert position is not None
    assert position.offset == 1
    assert none is None


async def test_what_recovery_refuses(system: ActorSystem) -> None:
    async with pubsub_at(system, "memory://") as pubsub:
        inbox = Inbox()
        with pytest.raises(ValueError, match="keeps no history"):
            await pubsub.subscribe("plain", inbox, recover=True)
        with pytest.raises(ValueError, match="pass recover=True"):
            await pubsub.subscribe("room:{a}", inbox, since=Position("e", 1))
        with pytest.raises(TypeError, match="carries the payload as JSON"):
            await pubsub.publish("room:{a}", "not json")
        assert await pubsub.publish("room:{a}", '"json text"') == 0
        assert await pubsub.publish("room:{a}", {"as": "dict"}) == 0


async def test_a_broken_envelope_is_a_decode_error_and_the_rest_flows(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        received = Received()
        handle = await pubsub.subscribe(
            "room:{i}", received.handler, recover=True, on_recovery=received.on_recovery
        )
        await pubsub.broker.publish("room:{i}", b'{"no":"envelope"}')
        await pubsub.publish("room:{i}", Tick(n=1))
        await received.messages.wait_for(1, timeout=TIMEOUT)
        counters = handle.statistics().counters
    assert counters.decode_errors == 1
    assert received.numbers() == [1]


@pytest.mark.redis
async def test_a_lost_connection_is_recovered_on_resubscription(
    system: ActorSystem, redis_server: RedisServer
) -> None:
    async with (
        pubsub_at(system, redis_server.url, connection=SLOW) as subscriber,
        pubsub_at(system, redis_server.url) as publisher,
    ):
        recovering, plain = Received(), Received()
        await subscriber.subscribe(
            "room:{j}",
            recovering.handler,
            recover=True,
            on_gap=recovering.on_gap,
            on_recovery=recovering.on_recovery,
        )
        await subscriber.subscribe("room:{j}", plain.handler, on_gap=plain.on_gap)
        await publish_ticks(publisher, "room:{j}", range(1, 6))
        await recovering.messages.wait_for(5, timeout=TIMEOUT)
        async with open_redis_connection(redis_server.url) as admin:
            # The subscriber's connection breaks; what is published meanwhile is lost to Pub/Sub.
            await admin.execute("CLIENT", "KILL", "TYPE", "pubsub")
        await publish_ticks(publisher, "room:{j}", range(6, 56))
        await recovering.events.wait_until(
            lambda items: any(isinstance(event, Recovered) for event in items), timeout=TIMEOUT
        )
        await publish_ticks(publisher, "room:{j}", range(56, 61))
        await recovering.messages.wait_for(60, timeout=TIMEOUT)
        await plain.messages.wait_until(lambda items: items and items[-1][0] == 60)
    assert recovering.numbers() == list(range(1, 61))
    kinds = [type(event) for event in recovering.events.items]
    assert kinds == [ConnectionLost, Resubscribed, Recovered]
    assert plain.of(Recovered) == []
    assert len(plain.numbers()) < 60


async def test_a_gap_whose_read_a_lost_connection_cut_off_is_held_then_recovered(
    system: ActorSystem, redis_server: RedisServer
) -> None:
    """The messages queued behind a read that the connection's loss cut off don't each read
    again on the dead connection (three such reads within a millisecond once gave the gap up as
    ``unreadable``): the gap is held, and the resubscription fills it."""
    async with (
        pubsub_at(system, redis_server.url, connection=SLOW) as subscriber,
        pubsub_at(system, redis_server.url) as publisher,
        open_redis_connection(redis_server.url) as admin,
    ):
        received = Received()
        received.open = trio.Event()
        await subscriber.subscribe(
            "room:{k}",
            received.handler,
            recover=True,
            on_gap=received.on_gap,
            on_recovery=received.on_recovery,
            mailbox=MailboxConfig(capacity=4, overflow=Overflow.DROP_OLDEST),
        )
        await publish_ticks(publisher, "room:{k}", range(1, 21))
        await trio.sleep(0.2)  # the handler holds 1; the mailbox keeps 17 to 20: a gap
        # The read of the gap (a script: a write for CLIENT PAUSE) waits in the server...
        await admin.execute("CLIENT", "PAUSE", "5000", "WRITE")
        received.open.set()
        await trio.sleep(0.2)
        # ... until the connection is killed under it, with 18 to 20 still queued.
        await admin.execute("CLIENT", "KILL", "TYPE", "pubsub")
        await admin.execute("CLIENT", "UNPAUSE")
        await received.events.wait_until(
            lambda items: any(isinstance(event, Recovered) for event in items), timeout=TIMEOUT
        )
        await publish_ticks(publisher, "room:{k}", range(21, 26))
        await received.messages.wait_for(25, timeout=TIMEOUT)
    assert received.numbers() == list(range(1, 26))
    assert received.of(Unrecoverable) == []
    kinds = [type(event) for event in received.events.items]
    assert kinds == [ConnectionLost, Resubscribed, Recovered]
    assert received.of(Recovered)[0].count == 19


async def test_a_loss_nothing_showed_is_found_within_two_check_intervals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """On trio's clock: the first check after the loss sees the top, the next one reads it back."""
    from actors import open_actor_system

    started = trio.current_time()
    async with (
        open_actor_system() as system,
        pubsub_at(system, "memory://", history_check_interval=10.0) as pubsub,
    ):
        received = Received()
        holding, release = trio.Event(), trio.Event()
        recovered_at: list[float] = []

        async def handler(message: Tick, channel: str, position: Position | None) -> None:
            if message.n == 1:
                holding.set()
                await release.wait()
            await received.handler(message, channel, position)

        async def on_recovery(event: RecoveryEvent) -> None:
            recovered_at.append(trio.current_time() - started)
            await received.on_recovery(event)

        small = MailboxConfig(capacity=1, overflow=Overflow.DROP_NEWEST, batch_size=1)
        await pubsub.subscribe(
            "room:{k}", handler, recover=True, on_recovery=on_recovery, mailbox=small
        )
        await trio.testing.wait_all_tasks_blocked()  # its first catch-up is done
        await pubsub.publish("room:{k}", Tick(n=1))
        await holding.wait()
        await publish_ticks(pubsub, "room:{k}", range(2, 6))  # 2 is queued, 3 to 5 are lost
        release.set()
        await received.messages.wait_for(2, timeout=1.0)
        assert trio.current_time() == started
        await received.messages.wait_for(5, timeout=30.0)
    assert received.numbers() == [1, 2, 3, 4, 5]
    assert received.events.items == [Recovered("room:{k}", 3, received.messages.items[-1][1])]
    assert recovered_at == [20.0]


async def test_an_idle_history_that_expires_starts_over_without_a_loss(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Nothing published for a whole TTL: the next epoch is followed from offset 1, no reload."""
    from actors import open_actor_system

    brief = {"brief:{*}": History(size=10, ttl=60.0)}
    async with (
        open_actor_system() as system,
        pubsub_at(system, "memory://", histories=brief, history_check_interval=10.0) as pubsub,
    ):
        received = Received()
        handle = await pubsub.subscribe(
            "brief:{l}", received.handler, recover=True, on_recovery=received.on_recovery
        )
        await publish_ticks(pubsub, "brief:{l}", range(1, 3))
        await received.messages.wait_for(2, timeout=1.0)
        first_epoch = received.messages.items[0][1].epoch
        await trio.sleep(75.0)  # the history expired at 60 s; the check at 70 s saw none
        assert handle.position is None
        await publish_ticks(pubsub, "brief:{l}", range(3, 5))
        await received.messages.wait_for(4, timeout=1.0)
    assert received.events.items == []
    positions = [position for _, position in received.messages.items]
    assert [position.offset for position in positions] == [1, 2, 1, 2]
    assert positions[2].epoch != first_epoch


async def test_the_newest_publications_are_read_with_their_window(
    system: ActorSystem, broker_url: str
) -> None:
    async with pubsub_at(system, broker_url) as pubsub:
        store = pubsub.history_store
        assert await store.recent("room:{m}", 3) is None
        await publish_ticks(pubsub, "room:{m}", range(1, 11))
        await publish_ticks(pubsub, "small:{m}", range(1, 301))
        newest = await store.recent("room:{m}", 3)
        everything = await store.recent("room:{m}", 50)
        window_only = await store.recent("room:{m}", 0)
        trimmed = await store.recent("small:{m}", 500)
        with pytest.raises(ValueError, match="limit must not be negative"):
            await store.recent("room:{m}", -1)
    assert newest is not None
    assert everything is not None
    assert window_only is not None
    assert [offset for offset, _ in newest.entries] == [8, 9, 10]
    assert (newest.window.last, newest.window.first) == (10, 1)
    assert [offset for offset, _ in everything.entries] == list(range(1, 11))
    assert window_only.entries == []
    assert window_only.window == newest.window
    assert trimmed is not None
    offsets = [offset for offset, _ in trimmed.entries]
    assert offsets == list(range(trimmed.window.first, 301))
    assert 5 <= len(offsets) <= 105  # Redis trims whole nodes (MAXLEN ~), memory exactly


async def test_subscribing_with_recovery_to_a_silent_server_fails_after_exactly_ack_timeout(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """The position is read before the subscription starts: a server that stopped answering
    fails the subscribe at ``ack_timeout``, and nothing is left subscribed."""
    from in_memory_redis import connection_options, serving

    async with serving() as server:
        changes = {"connection": connection_options(server), "ack_timeout": 2.5}
        async with pubsub_at(system, "redis://memory", **changes) as pubsub:
            server.stall()
            started = trio.current_time()
            with pytest.raises(RedisTimeoutError, match=r"did not say its position within 2\.5 s"):
                await pubsub.subscribe("room:{n}", Received().handler, recover=True)
            assert trio.current_time() - started == 2.5
            assert pubsub.subscriptions() == []
            server.resume()
