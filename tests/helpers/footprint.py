"""Bytes that idle actors and subscriptions keep, measured in a fresh Python process.

The test command runs under coverage, whose tracer gives every suspended coroutine a frame
object of its own (about 100 bytes more per idle actor) that an application does not pay. So
the byte ceilings are measured here, in a child process started without coverage:
``measured("class-actor")`` or ``measured("subscription")`` returns the bytes per item.

Run as a script, it prints the figure for the kind named as its argument.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

import trio
import trio.testing

from actors import Actor, ActorRef, ActorSystem, open_actor_system
from actors.pubsub import SubscriptionHandle, open_pubsub

if TYPE_CHECKING:
    from collections.abc import Callable

ACTORS = 400
SUBSCRIPTIONS = 1_000


class Idle(Actor):
    async def receive(self, message: object) -> None:
        pass


async def _ignore(message: bytes) -> None:
    pass


def traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def spawn_idle(system: ActorSystem, target: object, measure: Callable[[], int]) -> float:
    """What ``measure`` grows by per actor, for ``ACTORS`` idle actors spawned from ``target``
    after a first one (which makes what they share, such as the class's behavior)."""
    refs: list[ActorRef] = [await system.spawn(target)]
    refs.extend(refs * ACTORS)  # room for every ref, so that appending makes nothing
    del refs[1:]
    await trio.testing.wait_all_tasks_blocked()
    before = measure()
    for _ in range(ACTORS):
        refs.append(await system.spawn(target))
    await trio.testing.wait_all_tasks_blocked()
    return (measure() - before) / ACTORS


async def class_actor_bytes() -> float:
    """Bytes per idle class actor."""
    async with open_actor_system() as system:
        return await spawn_idle(system, Idle, traced_bytes)


async def subscription_bytes() -> float:
    """Bytes per idle ``memory://`` subscription, over ``SUBSCRIPTIONS`` after a first one."""
    async with open_actor_system() as system, open_pubsub(system, "memory://") as pubsub:
        # The first subscription makes what every later one shares (the releaser's list).
        handles: list[SubscriptionHandle] = [await pubsub.subscribe("warm-up", _ignore)]
        handles.extend(handles * SUBSCRIPTIONS)  # room for every handle
        del handles[1:]
        await trio.testing.wait_all_tasks_blocked()
        before = traced_bytes()
        for number in range(SUBSCRIPTIONS):
            handles.append(await pubsub.subscribe(f"channel.{number}", _ignore))
        await trio.testing.wait_all_tasks_blocked()
        return (traced_bytes() - before) / SUBSCRIPTIONS


KINDS = {"class-actor": class_actor_bytes, "subscription": subscription_bytes}


def measured(kind: str) -> float:
    """Run this file in a child process without coverage and return its figure for ``kind``."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("COV_CORE_", "COVERAGE_"))
    }
    finished = subprocess.run(
        [sys.executable, str(Path(__file__)), kind],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"measuring {kind} failed: {finished.stderr[-2000:]}")
    return float(finished.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    tracemalloc.start()
    sys.stdout.write(f"{trio.run(KINDS[sys.argv[1]])}\n")
