"""A channel with history: every message once and in order across a gap, and ``since``.

A subscriber that falls behind (here: a handler held up, its small mailbox overflowing) reads
what it missed back from the channel's history; a late subscriber starts after a position it
was given, as a browser that reconnects does.

Runs on ``memory://``; set REDIS_URL to run it on a Redis server instead.
"""

from __future__ import annotations

import os

import attrs
import trio

from actors import Message, message_type, open_actor_system
from actors.pubsub import (
    History,
    Position,
    PubSubSettings,
    Recovered,
    RecoveryEvent,
    open_pubsub,
)
from actors.runtime import MailboxConfig, Overflow


@message_type("example.price")
@attrs.frozen(kw_only=True)
class Price(Message):
    symbol: str
    cents: int


async def main() -> None:
    url = os.environ.get("REDIS_URL", "memory://")
    # docs: start settings
    settings = PubSubSettings(
        histories={
            "prices:*": History(size=10_000, ttl=3600.0),  # the last 10,000, for an hour
        }
    )
    # docs: end settings
    async with open_actor_system() as system, open_pubsub(system, url, settings=settings) as pubsub:
        # docs: start recover
        got: list[tuple[int, int]] = []  # (cents, offset)
        all_in = trio.Event()
        held = trio.Event()

        async def on_price(price: Price, channel: str, position: Position | None) -> None:
            await held.wait()  # a slow handler: its mailbox of 8 overflows meanwhile
            assert position is not None
            got.append((price.cents, position.offset))
            if len(got) == 101:
                all_in.set()

        async def on_recovery(event: RecoveryEvent) -> None:
            if isinstance(event, Recovered):
                print(f"read {event.count} missed prices back, up to {event.position}")
            else:
                print(f"cannot recover ({event.reason}): reload the prices")

        await pubsub.subscribe(
            "prices:eur",
            on_price,
            recover=True,
            on_recovery=on_recovery,
            mailbox=MailboxConfig(capacity=8, overflow=Overflow.DROP_OLDEST),
        )
        for cents in range(100, 200):
            await pubsub.publish("prices:eur", Price(symbol="EUR", cents=cents))
        held.set()
        await pubsub.publish("prices:eur", Price(symbol="EUR", cents=200))
        with trio.fail_after(10):
            await all_in.wait()
        assert [cents for cents, _ in got] == list(range(100, 201))  # each once, in order
        print(f"received all {len(got)} prices in order, offsets 1 to {got[-1][1]}")
        # docs: end recover

        # docs: start since
        late: list[int] = []
        read_all = trio.Event()

        async def on_late(price: Price) -> None:
            late.append(price.cents)

        async def when_recovered(event: RecoveryEvent) -> None:
            read_all.set()

        # A client that had everything up to offset 98 of this epoch gets 99 to 101.
        found = await pubsub.history_store.recent("prices:eur", 0)
        assert found is not None
        epoch = found.window.epoch
        await pubsub.subscribe(
            "prices:eur",
            on_late,
            recover=True,
            since=Position(epoch, 98),
            on_recovery=when_recovered,
        )
        with trio.fail_after(10):
            await read_all.wait()
        print(f"a late subscriber from offset 98 got {late}")
        # docs: end since


if __name__ == "__main__":
    trio.run(main)
