"""Notifications and live updates on ``memory://``: routing, validation, dispatch by type."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from actors import ActorsError, ActorSystem, InvalidIdentifierError, message_type
from actors.observability import PubSubMetrics
from actors.pubsub import DeadLetter, ErrorPolicy, PubSubSettings, open_pubsub
from actors.server.notifications import (
    BROADCAST_CHANNEL,
    MAX_BODY_LENGTH,
    InvalidNotificationError,
    LiveUpdate,
    Notification,
    Notifier,
    ServerStats,
    UpdateDispatcher,
    publish_update,
    registered_update_types,
    update_channel,
    user_channel,
)
from actors.testing import Inbox


@message_type("test.notifications.memory.score")
@attrs.frozen(kw_only=True)
class MemoryScore(LiveUpdate):
    home: int
    away: int


@message_type("test.notifications.memory.alert")
@attrs.frozen(kw_only=True)
class MemoryAlert(LiveUpdate):
    level: str


@message_type("test.notifications.memory.orphan")
@attrs.frozen(kw_only=True)
class MemoryOrphan(LiveUpdate):
    """An update type no handler of the tests below asks for."""

    note: str


@attrs.frozen
class NotRegistered(LiveUpdate):
    value: int


async def test_a_user_notification_reaches_only_that_user(system: ActorSystem) -> None:
    async with open_pubsub(system, "memory://") as pubsub:
        notifier = Notifier(pubsub)
        ada, bob = Inbox(), Inbox()
        await notifier.subscribe_user("ada", ada)
        bob_handle = await notifier.subscribe_user("bob", bob)
        assert bob_handle.name == user_channel("bob") == "user:bob"

        sent = await notifier.notify(
            "bob", kind="mention", title="ada mentioned you", body="hi @bob", data={"room": "x"}
        )
        assert await bob.wait_for(1) == [sent]
        assert sent.user_id == "bob"
        assert sent.channel == "user:bob"
        assert sent.id.startswith("n-")
        assert len(sent.id) == 18
        assert sent.data == {"room": "x"}
        # A later notification for ada arrives alone: bob's went to bob's channel only.
        marker = await notifier.notify("ada", kind="mention", title="for ada")
        assert await ada.wait_for(1) == [marker]
        assert bob.items == [sent]


async def test_a_broadcast_reaches_every_subscriber(system: ActorSystem) -> None:
    async with open_pubsub(system, "memory://") as pubsub:
        notifier = Notifier(pubsub)
        first, second, personal = Inbox(), Inbox(), Inbox()
        await notifier.subscribe_broadcast(first)
        await notifier.subscribe_broadcast(second)
        await notifier.subscribe_user("ada", personal)
        sent = await notifier.broadcast(kind="announcement", title="Maintenance at 6")
        assert sent.user_id is None
        assert sent.channel == BROADCAST_CHANNEL == "notifications"
        assert sent.body == ""
        assert await first.wait_for(1) == [sent]
        assert await second.wait_for(1) == [sent]
        marker = await notifier.notify("ada", kind="x", title="after")
        assert await personal.wait_for(1) == [marker]


@pytest.mark.parametrize(
    ("user_id", "fields", "error"),
    [
        ("*", {}, InvalidIdentifierError),
        ("user:*", {}, InvalidIdentifierError),
        ("a b", {}, InvalidIdentifierError),
        ("", {}, InvalidIdentifierError),
        ("x" * 65, {}, InvalidIdentifierError),
        ("bob", {"kind": ""}, InvalidNotificationError),
        ("bob", {"kind": "two words"}, InvalidNotificationError),
        ("bob", {"kind": "k" * 33}, InvalidNotificationError),
        ("bob", {"kind": "é"}, InvalidNotificationError),
        ("bob", {"title": ""}, InvalidNotificationError),
        ("bob", {"title": "   "}, InvalidNotificationError),
        ("bob", {"title": "t" * 201}, InvalidNotificationError),
        ("bob", {"body": "b" * (MAX_BODY_LENGTH + 1)}, InvalidNotificationError),
        ("bob", {"data": {"room": 1}}, InvalidNotificationError),
        ("bob", {"data": {str(n): "v" for n in range(33)}}, InvalidNotificationError),
    ],
)
async def test_invalid_notifications_are_refused_before_anything_is_published(
    system: ActorSystem, user_id: str, fields: dict[str, object], error: type[Exception]
) -> None:
    async with open_pubsub(system, "memory://") as pubsub:
        notifier = Notifier(pubsub)
        everything = Inbox()
        await pubsub.psubscribe("*", everything, message_type=bytes)
        arguments: dict[str, object] = {"kind": "mention", "title": "hello", **fields}
        with pytest.raises(error) as raised:
            await notifier.notify(user_id, **arguments)  # type: ignore[arg-type]
        assert isinstance(raised.value, ActorsError)
        assert isinstance(raised.value, ValueError)
        if error is InvalidNotificationError:
            with pytest.raises(InvalidNotificationError):
                await notifier.broadcast(**arguments)  # type: ignore[arg-type]
        await notifier.broadcast(kind="marker", title="the only message")
        [payload] = await everything.wait_for(1)
        assert isinstance(payload, bytes)
        assert b'"marker"' in payload


async def test_user_notifications_are_counted_under_one_metrics_group(
    system: ActorSystem,
) -> None:
    metrics = PubSubMetrics()
    async with open_pubsub(system, "memory://", metrics=metrics) as pubsub:
        notifier = Notifier(pubsub)
        for user in ("ada", "bob", "carol"):
            await notifier.notify(user, kind="mention", title="hi")
        await notifier.broadcast(kind="announcement", title="all")
    published = "actors_pubsub_messages_published_total"
    registry = metrics.registry
    labels = {"channel_group": "user:*", "type": "notification"}
    assert registry.get_sample_value(published, labels) == 3.0
    labels = {"channel_group": "notifications", "type": "notification"}
    assert registry.get_sample_value(published, labels) == 1.0
    labels = {"channel_group": "user:ada", "type": "notification"}
    assert registry.get_sample_value(published, labels) is None


async def test_a_received_notification_with_bad_fields_is_skipped(system: ActorSystem) -> None:
    """Validation runs on receipt too: a hostile publisher's notification does not decode."""
    async with open_pubsub(system, "memory://") as pubsub:
        notifier = Notifier(pubsub)
        inbox = Inbox()
        handle = await notifier.subscribe_user("bob", inbox)
        await pubsub.broker.publish(
            "user:bob", b'{"type":"notification","id":"n-1","kind":"a b","title":"t"}'
        )
        good = await notifier.notify("bob", kind="ok", title="fine")
        assert await inbox.wait_for(1) == [good]
        counters = handle.statistics().counters
        assert (counters.decode_errors, counters.skipped, counters.handled) == (1, 1, 1)


def test_notifications_validate_when_made() -> None:
    with pytest.raises(InvalidNotificationError):
        Notification(kind="no spaces", title="t")
    with pytest.raises(InvalidIdentifierError):
        Notification(user_id="*", kind="k", title="t")
    assert Notification(kind="k", title="t").id != Notification(kind="k", title="t").id


async def test_updates_are_dispatched_by_their_type(system: ActorSystem) -> None:
    async with open_pubsub(system, "memory://") as pubsub:
        dispatcher = UpdateDispatcher(pubsub)
        scores, alerts = Inbox(), Inbox()
        dispatcher.on(MemoryScore, scores)

        @dispatcher.on(MemoryAlert)
        async def on_alert(alert: MemoryAlert) -> None:
            await alerts(alert)

        assert dispatcher.handled_types == (MemoryAlert, MemoryScore)
        async with dispatcher.open():
            handle = dispatcher.handle
            assert handle is not None
            assert handle.name == "events.*"
            assert handle.spec.pattern
            assert update_channel(MemoryScore) == "events.test.notifications.memory.score"
            assert await publish_update(pubsub, MemoryScore(home=2, away=1)) == 1
            assert await publish_update(pubsub, MemoryAlert(level="red")) == 1
            await publish_update(pubsub, MemoryScore(home=3, away=1))
            assert await scores.wait_for(2) == [
                MemoryScore(home=2, away=1),
                MemoryScore(home=3, away=1),
            ]
            assert await alerts.wait_for(1) == [MemoryAlert(level="red")]
            assert dispatcher.statistics().counters.handled == 3
        assert dispatcher.handle is None
        assert pubsub.subscriptions() == []


async def test_unhandled_and_undecodable_updates_are_counted_and_skipped(
    system: ActorSystem,
) -> None:
    letters: list[DeadLetter] = []

    async def dead_letter(letter: DeadLetter) -> None:
        letters.append(letter)

    settings = PubSubSettings(error_policy=ErrorPolicy(dead_letters=dead_letter))
    async with open_pubsub(system, "memory://", settings=settings) as pubsub:
        dispatcher = UpdateDispatcher(pubsub)
        scores = Inbox()
        dispatcher.on(MemoryScore, scores)
        async with dispatcher.open():
            await publish_update(pubsub, MemoryOrphan(note="nobody listens"))
            await pubsub.broker.publish("events.junk", b"not json")
            await pubsub.broker.publish("events.nothing", b'{"type": "no.such.update"}')
            await publish_update(pubsub, MemoryScore(home=1, away=0))
            assert await scores.wait_for(1) == [MemoryScore(home=1, away=0)]
            counters = dispatcher.statistics().counters
            assert counters.received == 4
            assert counters.decode_errors == 3
            assert counters.skipped == 3
            assert counters.handled == 1
        assert [letter.channel for letter in letters] == [
            b"events.test.notifications.memory.orphan",
            b"events.junk",
            b"events.nothing",
        ]
        assert all(letter.subscription == b"events.*" for letter in letters)
        assert "test.notifications.memory.orphan" in letters[0].reason


async def test_a_catch_all_handler_gets_every_known_update(system: ActorSystem) -> None:
    async with open_pubsub(system, "memory://") as pubsub:
        dispatcher = UpdateDispatcher(pubsub)
        everything, scores = Inbox(), Inbox()
        dispatcher.on_any(everything)
        dispatcher.on(MemoryScore, scores)
        assert set(dispatcher.handled_types) == set(registered_update_types())
        assert {ServerStats, MemoryScore, MemoryAlert, MemoryOrphan} <= set(
            dispatcher.handled_types
        )
        async with dispatcher.open():
            stats = ServerStats(server="web-1", sessions=2, rooms=1, users=2, sent_at=5.0)
            updates = [MemoryScore(home=0, away=0), MemoryOrphan(note="seen"), stats]
            for update in updates:
                await publish_update(pubsub, update)
            assert await everything.wait_for(3) == updates
            assert await scores.wait_for(1) == [updates[0]]


async def test_the_dispatcher_refuses_misuse(system: ActorSystem) -> None:
    async with open_pubsub(system, "memory://") as pubsub:
        dispatcher = UpdateDispatcher(pubsub)
        inbox = Inbox()
        with pytest.raises(TypeError, match="not registered"):
            dispatcher.on(NotRegistered, inbox)
        with pytest.raises(TypeError, match="not a LiveUpdate"):
            dispatcher.on(Notification, inbox)  # type: ignore[type-var]
        with pytest.raises(RuntimeError, match="register a handler"):
            await dispatcher.start()
        with pytest.raises(TypeError):
            await publish_update(pubsub, NotRegistered(value=1))
        dispatcher.on(MemoryScore, inbox)
        with trio.testing.assert_checkpoints():
            await dispatcher.start()
        with pytest.raises(RuntimeError, match="has started"):
            dispatcher.on(MemoryAlert, inbox)
        with pytest.raises(RuntimeError, match="has started"):
            dispatcher.on_any(inbox)
        with pytest.raises(RuntimeError, match="has started"):
            await dispatcher.start()
        await dispatcher.close()
        with trio.testing.assert_checkpoints():
            await dispatcher.close()
        with pytest.raises(RuntimeError, match="not running"):
            dispatcher.statistics()
