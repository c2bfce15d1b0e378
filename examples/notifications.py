"""Notifications per user and for everybody, and live updates dispatched by type.

Runs on ``memory://``; set REDIS_URL to run it on a Redis server instead.
"""

from __future__ import annotations

import os

import attrs
import trio

from actors import message_type, open_actor_system
from actors.pubsub import DeadLetter, ErrorPolicy, PubSubSettings, open_pubsub
from actors.server.notifications import (
    LiveUpdate,
    Notification,
    Notifier,
    ServerStats,
    UpdateDispatcher,
    publish_update,
)


# docs: start update-type
@message_type("deploy")
@attrs.frozen(kw_only=True)
class Deploy(LiveUpdate):
    """A live update of our own: it goes out on ``events.deploy``."""

    service: str
    version: str


# docs: end update-type


async def main() -> None:
    url = os.environ.get("REDIS_URL", "memory://")

    async def dead_letter(letter: DeadLetter) -> None:
        print(f"dead letter from {letter.channel.decode()}: {letter.reason}")

    settings = PubSubSettings(error_policy=ErrorPolicy(dead_letters=dead_letter))
    async with open_actor_system() as system, open_pubsub(system, url, settings=settings) as pubsub:
        # docs: start notify
        notifier = Notifier(pubsub)
        shown: list[Notification] = []
        both_shown = trio.Event()

        async def show(notification: Notification) -> None:
            target = notification.user_id or "everybody"
            print(f"[{target}] {notification.kind}: {notification.title}")
            shown.append(notification)
            if len(shown) == 2:
                both_shown.set()

        bob = await notifier.subscribe_user("bob", show)  # user:bob
        everybody = await notifier.subscribe_broadcast(show)  # notifications
        await notifier.notify(
            "bob", kind="mention", title="ada mentioned you", data={"room": "lobby"}
        )
        await notifier.broadcast(kind="announcement", title="Maintenance at 6")
        with trio.fail_after(5):
            await both_shown.wait()
        await bob.close()
        await everybody.close()
        # docs: end notify

        # docs: start dispatch
        dispatcher = UpdateDispatcher(pubsub)
        done = trio.Event()

        @dispatcher.on(ServerStats)
        async def on_stats(stats: ServerStats) -> None:
            print(f"{stats.server}: {stats.sessions} sessions, {stats.users} users")

        @dispatcher.on(Deploy)
        async def on_deploy(deploy: Deploy) -> None:
            print(f"deployed {deploy.service} {deploy.version}")
            done.set()

        async with dispatcher.open():  # one PSUBSCRIBE events.*, a tagged union by "type"
            stats = ServerStats(server="web-1", sessions=12, rooms=3, users=9)
            await publish_update(pubsub, stats)  # on events.server_stats
            await pubsub.broker.publish("events.unknown", b'{"type": "unknown"}')  # skipped
            await publish_update(pubsub, Deploy(service="api", version="1.2.3"))
            with trio.fail_after(5):
                await done.wait()
            counters = dispatcher.statistics().counters
            print(f"handled {counters.handled}, skipped {counters.skipped}")
        # docs: end dispatch


if __name__ == "__main__":
    trio.run(main)
