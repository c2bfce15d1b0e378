"""The users' integration guide, in Python, against a real redis-server (issue 4, requirement 7).

Notification publisher and subscriber, the ``events.*`` handler that strips the prefix from the
channel, the presence map fed by ``UserOnline | UserOffline``, the chat service joining
``chat:{room}``, live updates dispatched by type, and the error policies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import orjson
import pytest
import trio

from actors import (
    InvalidChannelNameError,
    Message,
    RedisConnectionError,
    RestartIntensityError,
    channel_name,
    message_type,
    open_actor_system,
)
from actors.pubsub import (
    ConnectionOptions,
    DeadLetter,
    ErrorAction,
    ErrorPolicy,
    PubSub,
    PubSubSettings,
    RetryPolicy,
    open_pubsub,
    subscription,
)
from actors.supervision import Backoff
from actors.testing import Inbox, RedisServer

TIMEOUT = 10.0
FAST = Backoff(initial=0.01, multiplier=2.0, maximum=0.05, jitter=0.0, reset_after=0.0)


@attrs.frozen
class Notification:
    type: str
    title: str


@message_type("guide-test.notification")
@attrs.frozen(kw_only=True)
class NotificationMessage(Message):
    user_id: str
    notification: Notification


@message_type("guide-test.event")
@attrs.frozen(kw_only=True)
class Event(Message):
    name: str


@message_type("guide-test.user-online")
@attrs.frozen(kw_only=True)
class UserOnline(Message):
    user_id: str


@message_type("guide-test.user-offline")
@attrs.frozen(kw_only=True)
class UserOffline(Message):
    user_id: str


PresenceMessage = UserOnline | UserOffline


@message_type("guide-test.chat")
@attrs.frozen(kw_only=True)
class ChatMessage(Message):
    user_id: str
    text: str


@message_type("guide-test.data-update")
@attrs.frozen(kw_only=True)
class DataUpdate(Message):
    key: str
    value: int


@message_type("guide-test.config-update")
@attrs.frozen(kw_only=True)
class ConfigUpdate(Message):
    setting: str


@message_type("guide-test.status-update")
@attrs.frozen(kw_only=True)
class StatusUpdate(Message):
    status: str


LiveUpdate = DataUpdate | ConfigUpdate | StatusUpdate


@pytest.fixture(scope="module")
def redis_url(module_redis_url: str) -> str:
    return module_redis_url


@pytest.fixture(params=["memory", "redis"])
async def pubsub(request: pytest.FixtureRequest) -> AsyncIterator[PubSub]:
    """Every scenario runs on the in-process broker and on a real redis-server."""
    url = "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")
    settings = PubSubSettings(publish_retry=RetryPolicy(backoff=FAST))
    async with (
        open_actor_system() as system,
        open_pubsub(system, url, settings=settings) as client,
    ):
        yield client


async def test_notification_publisher_and_subscriber(pubsub: PubSub) -> None:
    inbox = Inbox()

    class NotificationSubscriber:
        @subscription("notifications")
        async def handle_notification(self, message: NotificationMessage) -> None:
            inbox.add(message)

    await pubsub.register(NotificationSubscriber())
    user_inbox = Inbox()

    async def user_handler(message: NotificationMessage) -> None:
        user_inbox.add(message)

    await pubsub.subscribe(channel_name("user:{id}", id="42"), user_handler)
    sent = NotificationMessage(user_id="42", notification=Notification("build", "green"))
    # The guide's notifyUser: the user's channel, then the broadcast channel.
    assert await pubsub.publish(channel_name("user:{id}", id="42"), sent) == 1
    assert await pubsub.publish("notifications", sent) == 1
    assert (await inbox.wait_for(1))[0] == sent
    assert (await user_inbox.wait_for(1))[0] == sent


async def test_a_handler_annotated_object_or_any_gets_the_bytes(pubsub: PubSub) -> None:
    inbox = Inbox()

    async def anything(message: object) -> None:
        inbox.add(message)

    async def anything_at_all(message: Any) -> None:
        inbox.add(message)

    await pubsub.subscribe("loose", anything)
    await pubsub.subscribe("loose", anything_at_all)
    await pubsub.publish("loose", b"raw")
    assert await inbox.wait_for(2) == [b"raw", b"raw"]


async def test_a_type_the_codec_cannot_decode_into_is_refused_by_subscribe(
    pubsub: PubSub,
) -> None:
    async def numbers(message: list[int]) -> None:
        pass

    with pytest.raises(TypeError, match="cannot decode into"):
        await pubsub.subscribe("numbers", numbers)
    with pytest.raises(TypeError, match="cannot decode into"):
        await pubsub.subscribe("numbers", numbers, message_type=set)


async def test_events_pattern_handler_strips_the_prefix_from_the_channel(pubsub: PubSub) -> None:
    inbox = Inbox()

    class EventSubscriber:
        @subscription("events.*", pattern=True)
        async def handle_events(self, message: Event, channel: str) -> None:
            inbox.add((channel.removeprefix("events."), message.name))

    await pubsub.register(EventSubscriber())
    await pubsub.publish("events.deploy", Event(name="v1"))
    await pubsub.publish("events.alert", Event(name="disk"))
    assert sorted(await inbox.wait_for(2)) == [("alert", "disk"), ("deploy", "v1")]


async def test_presence_map_fed_by_a_tagged_union(pubsub: PubSub) -> None:
    presence: dict[str, UserOnline] = {}
    seen = Inbox()

    async def on_presence(message: PresenceMessage) -> None:
        match message:
            case UserOnline(user_id=user):
                presence[user] = message
            case UserOffline(user_id=user):
                presence.pop(user, None)
        seen.add(message)

    await pubsub.subscribe("presence", on_presence, message_type=PresenceMessage)
    await pubsub.publish("presence", UserOnline(user_id="ada"))
    await pubsub.publish("presence", UserOnline(user_id="bob"))
    await pubsub.publish("presence", UserOffline(user_id="ada"))
    await seen.wait_for(3)
    assert sorted(presence) == ["bob"]


async def test_chat_service_joins_a_room_channel(pubsub: PubSub) -> None:
    inbox = Inbox()

    async def handle_chat(message: ChatMessage) -> None:
        inbox.add(message.text)

    room = channel_name("chat:{room}", room="lobby")
    await pubsub.subscribe(room, handle_chat)
    await pubsub.publish(room, ChatMessage(user_id="ada", text="hello"))
    assert await inbox.wait_for(1) == ["hello"]
    with pytest.raises(InvalidChannelNameError):
        channel_name("chat:{room}", room="*")
    with pytest.raises(InvalidChannelNameError):
        await pubsub.subscribe("chat:*", handle_chat)


async def test_a_sharded_publish_reaches_only_sharded_subscribers(pubsub: PubSub) -> None:
    sharded, plain = Inbox(), Inbox()

    class RoomSubscriber:
        @subscription("{room:7}.chat", sharded=True)
        async def handle(self, message: Event) -> None:
            sharded.add(("decorated", message.name))

    async def handle_sharded(message: Event) -> None:
        sharded.add(("direct", message.name))

    async def handle_plain(message: Event) -> None:
        plain.add(message.name)

    handles = await pubsub.register(RoomSubscriber())
    handles.append(await pubsub.subscribe("{room:7}.chat", handle_sharded, sharded=True))
    await pubsub.subscribe("{room:7}.chat", handle_plain)
    assert [handle.statistics().sharded for handle in handles] == [True, True]
    assert await pubsub.publish("{room:7}.chat", Event(name="sharded"), sharded=True) == 1
    assert await pubsub.publish("{room:7}.chat", Event(name="plain")) == 1
    assert sorted(await sharded.wait_for(2)) == [("decorated", "sharded"), ("direct", "sharded")]
    assert await plain.wait_for(1) == ["plain"]
    with pytest.raises(ValueError, match="pattern or sharded"):
        subscription("x*", pattern=True, sharded=True)


async def test_live_updates_are_dispatched_by_type(pubsub: PubSub) -> None:
    inbox = Inbox()

    async def handle_update(update: LiveUpdate) -> None:
        match update:
            case DataUpdate(key=key, value=value):
                inbox.add(("data", key, value))
            case ConfigUpdate(setting=setting):
                inbox.add(("config", setting))
            case StatusUpdate(status=status):
                inbox.add(("status", status))

    await pubsub.subscribe("updates", handle_update, message_type=LiveUpdate)
    for update in (
        DataUpdate(key="k", value=1),
        ConfigUpdate(setting="s"),
        StatusUpdate(status="ok"),
    ):
        await pubsub.publish("updates", update)
    assert await inbox.wait_for(3) == [("data", "k", 1), ("config", "s"), ("status", "ok")]


async def test_a_payload_that_does_not_decode_is_skipped_and_dead_lettered(
    pubsub: PubSub,
) -> None:
    inbox = Inbox()
    letters = Inbox()

    async def dead_letters(letter: DeadLetter) -> None:
        letters.add(letter)

    async def handle(message: Event) -> None:
        inbox.add(message.name)

    policy = ErrorPolicy(dead_letters=dead_letters)
    handle_ = await pubsub.subscribe("strict", handle, error_policy=policy)
    await pubsub.broker.publish("strict", b'{"type": "nope"}')
    await pubsub.broker.publish("strict", b"\xff not json")
    await pubsub.publish("strict", Event(name="fine"))
    assert await inbox.wait_for(1) == ["fine"]
    assert [letter.payload for letter in await letters.wait_for(2)] == [
        b'{"type": "nope"}',
        b"\xff not json",
    ]
    counters = handle_.statistics().counters
    assert (counters.decode_errors, counters.skipped, counters.handled) == (2, 2, 1)


async def test_failing_handler_is_retried_then_skipped_by_type(pubsub: PubSub) -> None:
    attempts = Inbox()

    class Flaky(Exception):
        pass

    async def handle(message: Event) -> None:
        attempts.add(message.name)
        raise Flaky(message.name)

    letters = Inbox()

    async def dead_letters(letter: DeadLetter) -> None:
        letters.add(letter)

    policy = ErrorPolicy(
        retry=RetryPolicy(max_attempts=3, backoff=FAST),
        exhausted=ErrorAction.SKIP,
        dead_letters=dead_letters,
    )
    handle_ = await pubsub.subscribe("flaky", handle, error_policy=policy)
    await pubsub.publish("flaky", Event(name="once"))
    assert await attempts.wait_for(3) == ["once"] * 3
    assert isinstance((await letters.wait_for(1))[0].error, Flaky)
    counters = handle_.statistics().counters
    assert (counters.retries, counters.skipped, counters.escalations) == (2, 1, 0)


async def test_escalating_handler_restarts_its_actor_and_the_subscription_goes_on(
    pubsub: PubSub,
) -> None:
    inbox = Inbox()

    async def handle(message: Event) -> None:
        if message.name == "poison":
            raise ValueError("poison")
        inbox.add(message.name)

    policy = ErrorPolicy(default=ErrorAction.ESCALATE)
    handle_ = await pubsub.subscribe("escalate", handle, error_policy=policy)
    await pubsub.publish("escalate", Event(name="poison"))
    await pubsub.publish("escalate", Event(name="after"))
    assert await inbox.wait_for(1) == ["after"]
    stats = handle_.statistics()
    assert stats.restarts == 1
    assert stats.counters.escalations == 1


async def test_too_many_escalations_reach_open_pubsub(redis_url: str) -> None:
    async def handle(message: Event) -> None:
        raise ValueError("always")

    settings = PubSubSettings(max_restarts=2, within=60.0)
    policy = ErrorPolicy(default=ErrorAction.ESCALATE)
    with pytest.raises(RestartIntensityError), trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(system, redis_url, settings=settings) as client,
        ):
            await client.subscribe("doomed", handle, error_policy=policy)
            for number in range(5):
                await client.publish("doomed", Event(name=str(number)))
            await trio.sleep_forever()


async def test_unsubscribing_stops_the_actor_and_the_server_subscription(pubsub: PubSub) -> None:
    async def handle(message: Event) -> None:
        pass

    handle_ = await pubsub.subscribe("short-lived", handle)
    assert await pubsub.publish("short-lived", Event(name="x")) == 1
    await handle_.close()
    assert not handle_.ref.alive
    assert await pubsub.publish("short-lived", Event(name="y")) == 0


async def test_dead_letters_go_to_a_capped_redis_list_and_to_a_channel(redis_url: str) -> None:
    from actors.pubsub import RedisPubSub, dead_letters_to_channel, dead_letters_to_list

    async def handle(message: Event) -> None:
        pass

    async with (
        open_actor_system() as system,
        open_pubsub(system, redis_url) as client,
    ):
        broker = client.broker
        assert isinstance(broker, RedisPubSub)
        watched = Inbox()

        async def watch(record: bytes) -> None:
            watched.add(orjson.loads(record))

        await client.subscribe("dead-letters", watch, message_type=bytes)
        to_list = dead_letters_to_list(broker, "dead:strict", cap=3)
        to_channel = dead_letters_to_channel(broker, "dead-letters")

        async def both(letter: DeadLetter) -> None:
            await to_list(letter)
            await to_channel(letter)

        await client.subscribe("strict-list", handle, error_policy=ErrorPolicy(dead_letters=both))
        for number in range(5):
            await broker.publish("strict-list", f"bad {number}".encode())
        records = await watched.wait_for(5)
        assert [record["payload"] for record in records] == [f"bad {n}" for n in range(5)]
        assert records[0]["channel"] == "strict-list"
        assert "decode" in records[0]["reason"]
        kept = await broker.connection().execute("LRANGE", "dead:strict", 0, -1)
        assert [orjson.loads(item)["payload"] for item in kept] == ["bad 4", "bad 3", "bad 2"]


@pytest.fixture
def private_server(redis_server: RedisServer) -> RedisServer:
    return redis_server


RECONNECTING = PubSubSettings(
    publish_retry=RetryPolicy(max_attempts=3, backoff=FAST),
    ack_timeout=2.0,
    connection=ConnectionOptions(reconnect=FAST, max_restarts=1000, within=1.0),
)


async def test_a_publish_meeting_a_lost_connection_is_retried_once_it_is_back(
    private_server: RedisServer,
) -> None:
    inbox = Inbox()

    async def handle(message: Event) -> None:
        inbox.add(message.name)

    with trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(system, private_server.url, settings=RECONNECTING) as client,
        ):
            await client.subscribe("retried", handle)
            private_server.kill()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, private_server.restart)
                receivers = await client.publish("retried", Event(name="after the gap"))
            assert receivers == 1
            assert await inbox.wait_for(1) == ["after the gap"]


async def test_a_publish_fails_clearly_after_its_last_attempt(
    private_server: RedisServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(
                system,
                private_server.url,
                settings=attrs.evolve(
                    RECONNECTING,
                    connection=attrs.evolve(RECONNECTING.connection, reconnect_wait=0.3),
                ),
            ) as client,
        ):
            await client.broker.wait_connected()
            private_server.kill()
            with pytest.raises(RedisConnectionError, match="not back within"):
                await client.publish("nowhere", Event(name="lost"))
