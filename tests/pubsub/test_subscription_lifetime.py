"""A subscription lives as long as its subscriber (issue 9, requirement 6).

When the actor of a typed subscription stops for good, for whatever reason, its broker
subscription is released as ``close()`` releases it: the server's ``PUBSUB NUMSUB`` falls to
zero with the last local subscriber, the supervisor forgets the child, and no task is left
behind. A raw sink of a stopped actor is removed at its next message. ``subscribe`` refuses
exactly the glob characters docs/pubsub.md lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from pubsub_test_helpers import wait_for

from actors import ActorContext, ActorSystem, InvalidChannelNameError
from actors.messages import GLOB_CHARACTERS
from actors.pubsub import MailboxSink, PubSub, open_pubsub
from actors.redis import open_redis_connection
from actors.testing import RedisServer

TIMEOUT = 20.0


def tasks_below(task: trio.lowlevel.Task) -> int:
    return sum(
        1 + tasks_below(child) for nursery in task.child_nurseries for child in nursery.child_tasks
    )


def task_count() -> int:
    """Every task of the run, the root's included."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    return 1 + tasks_below(root)


async def numsub(url: str, channel: str) -> int:
    async with open_redis_connection(url) as redis:
        return (await redis.pubsub_numsub(channel))[channel]


async def wait_numsub(url: str, channel: str, expected: int) -> None:
    async def reached() -> bool:
        return await numsub(url, channel) == expected

    await wait_for(reached, what=f"NUMSUB {channel} = {expected}")


async def _ignore(message: bytes) -> None:
    pass


def proved_healthy(pubsub: PubSub) -> Callable[[], Awaitable[bool]]:
    """Whether the connection answered its first probe (its watching tasks are running)."""

    async def answered() -> bool:
        await trio.lowlevel.checkpoint()
        return pubsub.broker.statistics().hub.last_probe_age is not None  # type: ignore[attr-defined]

    return answered


async def test_a_subscription_whose_actor_is_stopped_is_released(
    system: ActorSystem, redis_server: RedisServer
) -> None:
    url = redis_server.url
    with trio.fail_after(TIMEOUT):
        async with open_pubsub(system, url) as pubsub:
            await wait_for(proved_healthy(pubsub), what="the connection's first probe")
            await trio.testing.wait_all_tasks_blocked()  # the releaser did its work
            tasks_before = task_count()
            children_before = len(pubsub.supervisor.which_children())
            kept = await pubsub.subscribe("shared", _ignore)
            stopped = await pubsub.subscribe("shared", _ignore)
            alone = await pubsub.subscribe("alone", _ignore)
            assert (await numsub(url, "shared"), await numsub(url, "alone")) == (1, 1)

            await stopped.ref.stop("stopped from outside")
            await alone.ref.stop("stopped from outside")
            await wait_numsub(url, "alone", 0)
            assert await numsub(url, "shared") == 1  # another local subscriber still holds it
            assert pubsub.subscriptions() == [kept]
            await kept.close()
            await wait_numsub(url, "shared", 0)
            await trio.testing.wait_all_tasks_blocked()  # the releaser did its work
            assert pubsub.subscriptions() == []
            assert pubsub.broker.statistics().hub.subscriptions == ()  # type: ignore[attr-defined]
            assert len(pubsub.supervisor.which_children()) == children_before
            assert task_count() == tasks_before


async def test_a_subscription_is_released_on_the_memory_broker_too(system: ActorSystem) -> None:
    async with open_pubsub(system, "memory://") as pubsub:
        handle = await pubsub.subscribe("news", _ignore)
        assert await pubsub.broker.pubsub_numsub("news") == {"news": 1}  # type: ignore[attr-defined]
        await handle.ref.stop()
        await trio.testing.wait_all_tasks_blocked()  # the releaser did its work
        assert await pubsub.broker.pubsub_numsub("news") == {"news": 0}  # type: ignore[attr-defined]
        assert pubsub.subscriptions() == []


async def test_a_raw_sink_of_a_stopped_actor_is_removed_at_its_next_message(
    system: ActorSystem, redis_server: RedisServer
) -> None:
    url = redis_server.url

    async def reader(context: ActorContext) -> None:
        async for _ in context:
            pass

    with trio.fail_after(TIMEOUT):
        async with open_pubsub(system, url) as pubsub:
            broker = pubsub.broker
            actor = await system.spawn(reader)
            await broker.subscribe("raw", MailboxSink(actor))
            await actor.stop()
            assert await numsub(url, "raw") == 1  # nothing has told the table yet
            assert await broker.publish("raw", b"to nobody") == 1
            await wait_numsub(url, "raw", 0)
            rows = broker.statistics().hub.subscriptions  # type: ignore[attr-defined]
            assert [row.name for row in rows] == []


@pytest.mark.parametrize("character", list(GLOB_CHARACTERS))
async def test_subscribe_refuses_every_glob_character_the_docs_list(
    system: ActorSystem, character: str
) -> None:
    async with open_pubsub(system) as pubsub:
        for name in (f"room{character}", f"a\\{character}" if character != "\\" else "a\\"):
            with pytest.raises(InvalidChannelNameError, match="glob characters"):
                await pubsub.subscribe(name, _ignore)
        assert pubsub.subscriptions() == []


def test_the_docs_list_exactly_the_refused_characters() -> None:
    text = (Path(__file__).parents[2] / "docs" / "pubsub.md").read_text()
    listed = text.split("refuses glob characters (", 1)[1].split(")", 1)[0]
    assert "".join(part.strip("` ") for part in listed.split(",")) == GLOB_CHARACTERS


async def test_subscribe_takes_names_without_glob_characters(system: ActorSystem) -> None:
    async with open_pubsub(system) as pubsub:
        for name in ("user:42", "chat.room-1", "a@b", "events_all", "x/y"):
            handle = await pubsub.subscribe(name, _ignore)
            await handle.close()
        pattern = await pubsub.psubscribe("events.*", _ignore)
        await pattern.close()
