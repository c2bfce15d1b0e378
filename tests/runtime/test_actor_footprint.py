"""What an idle actor keeps alive: objects the cyclic garbage collector tracks, and bytes.

A process may hold 100,000 idle actors, and every full collection walks every tracked object of
each. These are ceilings, counted over a few hundred actors against a count taken just before
they were spawned, so that a change adding one object (or a few hundred bytes) to every idle
actor fails here rather than in a benchmark. What an idle class actor keeps today: its ref, its
cell (which is its mailbox), its instance, the one coroutine of its incarnation, the cancel
scope of the incarnation (scope, status and the status's two sets), and trio's task, context,
child-nursery list and the four objects of a wait in ``wait_task_rescheduled``.
"""

from __future__ import annotations

import gc

from footprint import Idle, measured, spawn_idle

from actors import ActorContext, ActorSystem

IDLE_CLASS_ACTOR_OBJECTS = 15
IDLE_FUNCTION_ACTOR_OBJECTS = 19
IDLE_CLASS_ACTOR_BYTES = 3_300  # about 3,000 today (Python 3.11); 3,700 before 2026-12-06


async def idle(context: ActorContext) -> None:
    async for _ in context:
        pass


def tracked_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


async def test_an_idle_class_actor_keeps_at_most_15_tracked_objects(system: ActorSystem) -> None:
    assert await spawn_idle(system, Idle, tracked_objects) <= IDLE_CLASS_ACTOR_OBJECTS


async def test_an_idle_function_actor_keeps_at_most_19_tracked_objects(
    system: ActorSystem,
) -> None:
    assert await spawn_idle(system, idle, tracked_objects) <= IDLE_FUNCTION_ACTOR_OBJECTS


def test_an_idle_class_actor_keeps_at_most_3300_bytes() -> None:
    """Measured in a fresh process without coverage's tracer (see ``footprint``)."""
    assert measured("class-actor") <= IDLE_CLASS_ACTOR_BYTES
