"""Redis Pub/Sub through the supervised connection actor: subscribers are actors.

Needs a Redis server: set REDIS_URL (the test suite points it at a private redis-server).
"""

from __future__ import annotations

import os

import trio

from actors import Actor, MailboxConfig, Overflow, open_actor_system
from actors.pubsub import ConnectionOptions, MailboxSink, open_redis_pubsub
from actors.redis import ConnectionLost, RedisMessage, Resubscribed


# docs: start subscriber
class Printer(Actor):
    """Prints what arrives; a pattern subscription tells the concrete channel."""

    def __init__(self, label: str, done: trio.Event, expected: int) -> None:
        self.label = label
        self.done = done
        self.expected = expected
        self.seen = 0

    async def receive(self, message: object) -> object:
        match message:
            case RedisMessage(channel=channel, payload=payload):
                print(f"{self.label}: {channel.decode()} -> {payload.decode()}")
                self.seen += 1
                if self.seen == self.expected:
                    self.done.set()
            case ConnectionLost(reason=reason):
                print(f"{self.label}: gap started ({reason}); messages may be lost")
            case Resubscribed(gap_start=start, gap_end=end):
                print(f"{self.label}: resubscribed after {end - start:.3f} s")
        return None


# docs: end subscriber


async def main() -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    # docs: start open
    async with open_actor_system() as system:
        options = ConnectionOptions(probe_interval=5.0, probe_timeout=3.0)
        async with open_redis_pubsub(system, url, options=options) as pubsub:
            done = trio.Event(), trio.Event()
            mailbox = MailboxConfig(capacity=1000, overflow=Overflow.DROP_OLDEST)
            news = await system.spawn(Printer, "news", done[0], 1, mailbox=mailbox)
            events = await system.spawn(Printer, "events", done[1], 2, mailbox=mailbox)
            await pubsub.subscribe("notifications", MailboxSink(news))
            await pubsub.psubscribe("events.*", MailboxSink(events))

            print("receivers:", await pubsub.publish("notifications", "build finished"))
            await pubsub.publish("events.deploy", "v1.2.3 is live")
            await pubsub.publish("events.alert", "disk at 91%")
            with trio.fail_after(5):
                await done[0].wait()
                await done[1].wait()
            stats = pubsub.statistics().hub
            print("subscriptions:", [row.name.decode() for row in stats.subscriptions])
    # docs: end open


if __name__ == "__main__":
    trio.run(main)
