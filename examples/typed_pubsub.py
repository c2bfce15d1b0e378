"""Typed Pub/Sub: attrs messages, handlers as supervised actors, error policies.

Needs a Redis server: set REDIS_URL (the test suite points it at a private redis-server).
"""

from __future__ import annotations

import os

import attrs
import trio

from actors import Message, channel_name, message_type, open_actor_system
from actors.pubsub import (
    DeadLetter,
    ErrorPolicy,
    PubSubSettings,
    open_pubsub,
    subscription,
)


# docs: start messages
@attrs.frozen
class Notification:
    type: str
    title: str


@message_type("notification")
@attrs.frozen(kw_only=True)
class NotificationMessage(Message):
    user_id: str
    notification: Notification


@message_type("user-online")
@attrs.frozen(kw_only=True)
class UserOnline(Message):
    user_id: str


@message_type("user-offline")
@attrs.frozen(kw_only=True)
class UserOffline(Message):
    user_id: str


PresenceMessage = UserOnline | UserOffline


@message_type("event")
@attrs.frozen(kw_only=True)
class Event(Message):
    name: str


# docs: end messages


# docs: start service
class NotificationSubscriber:
    """Handlers declared on a class, subscribed with one ``register`` call."""

    def __init__(self, done: trio.Event) -> None:
        self.done = done

    @subscription("notifications")
    async def handle_notification(self, message: NotificationMessage) -> None:
        print(f"notification for {message.user_id}: {message.notification.title}")

    @subscription("events.*", pattern=True)
    async def handle_events(self, message: Event, channel: str) -> None:
        print(f"event {channel.removeprefix('events.')}: {message.name}")
        self.done.set()


# docs: end service


async def main() -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")

    # docs: start use
    async def dead_letter(letter: DeadLetter) -> None:
        print(f"dead letter from {letter.channel.decode()}: {letter.reason}")

    settings = PubSubSettings(error_policy=ErrorPolicy(dead_letters=dead_letter))
    async with open_actor_system() as system, open_pubsub(system, url, settings=settings) as pubsub:
        done = trio.Event()
        await pubsub.register(NotificationSubscriber(done))

        online: set[str] = set()
        presence_seen = trio.Event()

        async def on_presence(message: PresenceMessage) -> None:
            match message:
                case UserOnline(user_id=user):
                    online.add(user)
                case UserOffline(user_id=user):
                    online.discard(user)
            presence_seen.set()

        await pubsub.subscribe("presence", on_presence, message_type=PresenceMessage)

        note = NotificationMessage(user_id="42", notification=Notification("build", "all green"))
        print("receivers:", await pubsub.publish("notifications", note))
        await pubsub.publish(channel_name("user:{id}", id="42"), note)
        await pubsub.publish("presence", UserOnline(user_id="ada"))
        await pubsub.broker.publish("presence", b'{"type": "unknown"}')  # skipped, dead-lettered
        await pubsub.publish("events.deploy", Event(name="v1.2.3"))
        with trio.fail_after(5):
            await done.wait()
            await presence_seen.wait()
        print("online:", sorted(online))
    # docs: end use


if __name__ == "__main__":
    trio.run(main)
