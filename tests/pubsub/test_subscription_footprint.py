"""What an idle subscription keeps alive, in bytes: a ceiling, as for idle actors in
tests/runtime/test_actor_footprint.py.

A subscription is a supervised actor, its supervisor's record of it, its sink and its row in
the broker's table, and the client's handle: about 4,800 bytes on ``memory://`` (Python 3.11),
5,400 before 2026-12-06.
"""

from __future__ import annotations

import gc
import tracemalloc

import trio.testing

from actors import ActorSystem
from actors.pubsub import SubscriptionHandle, open_pubsub

SUBSCRIPTION_BYTES = 5_000
SUBSCRIPTIONS = 1_000


async def _ignore(message: bytes) -> None:
    pass


def traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_an_idle_subscription_keeps_at_most_5000_bytes(system: ActorSystem) -> None:
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        async with open_pubsub(system, "memory://") as pubsub:
            # The first subscription makes what every later one shares (the releaser's list).
            handles: list[SubscriptionHandle] = [await pubsub.subscribe("warm-up", _ignore)]
            handles.extend(handles * SUBSCRIPTIONS)  # room for every handle
            del handles[1:]
            await trio.testing.wait_all_tasks_blocked()
            before = traced_bytes()
            for number in range(SUBSCRIPTIONS):
                handles.append(await pubsub.subscribe(f"channel.{number}", _ignore))
            await trio.testing.wait_all_tasks_blocked()
            per_subscription = (traced_bytes() - before) / SUBSCRIPTIONS
    finally:
        if started:
            tracemalloc.stop()
    assert per_subscription <= SUBSCRIPTION_BYTES
