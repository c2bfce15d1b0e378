"""``KeyedChildren``: a child per key, spawned on demand, replaced once it stopped."""

from __future__ import annotations

import pytest

from actors import ActorContext, ActorStoppedError, ActorSystem, Ask
from actors.supervision import (
    ChildSpec,
    KeyedChildren,
    Restart,
    Strategy,
    Supervisor,
    SupervisorSpec,
    open_supervisor,
)

STARTS: list[str] = []


async def keyed_echo(context: ActorContext, key: str) -> None:
    """Answers asks with its key; "stop" makes it stop instead, failing the ask as the runtime
    fails the asks left in a stopped actor's mailbox (the ask came just as it went idle)."""
    STARTS.append(key)
    async for request in context:
        assert isinstance(request, Ask)
        if request.message == "stop":
            request.fail(ActorStoppedError(f"{key} stopped"))
            return
        request.reply(f"{key}:{request.message}")


def _spec() -> SupervisorSpec:
    return SupervisorSpec(
        strategy=Strategy.SIMPLE_ONE_FOR_ONE,
        children=[ChildSpec(id="echo", start=keyed_echo, restart=Restart.TEMPORARY)],
    )


async def test_one_child_per_key_spawned_on_demand(system: ActorSystem) -> None:
    STARTS.clear()
    async with open_supervisor(system, _spec()) as supervisor:
        children: KeyedChildren[str] = KeyedChildren(Supervisor(supervisor.ref))
        assert await children.ask("a", 1) == "a:1"
        assert await children.ask("a", 2) == "a:2"
        assert await children.ask("b", 1) == "b:1"
        assert STARTS == ["a", "b"]
        assert children.keys() == {"a", "b"}
        assert "a" in children
        ref = children.get("a")
        assert ref is not None
        children.forget("a", await children.child("b"))  # not a's child: no effect
        assert children.get("a") is ref


async def test_a_stopped_child_is_replaced_and_asked_again(system: ActorSystem) -> None:
    STARTS.clear()
    async with open_supervisor(system, _spec()) as supervisor:
        children: KeyedChildren[str] = KeyedChildren(Supervisor(supervisor.ref))
        first = await children.child("a")
        with pytest.raises(ActorStoppedError, match="kept stopping"):
            await children.ask("a", "stop", attempts=2)
        assert STARTS == ["a", "a"]
        assert not first.alive
        assert await children.ask("a", "again") == "a:again"
        assert STARTS == ["a", "a", "a"]
