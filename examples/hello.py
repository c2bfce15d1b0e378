"""The smallest supervised actor: a greeter under a one_for_one supervisor."""

from __future__ import annotations

# docs: start hello
import trio

from actors import Actor, ChildSpec, SupervisorSpec, open_actor_system, open_supervisor


class Greeter(Actor):
    async def receive(self, message: object) -> object:
        match message:
            case str() as name:
                return f"hello, {name}"
        return None


async def main() -> None:
    async with open_actor_system() as system:
        spec = SupervisorSpec(children=[ChildSpec(id="greeter", start=Greeter)])
        async with open_supervisor(system, spec) as supervisor:
            print(await supervisor.child("greeter").ask("trio"))


if __name__ == "__main__":
    trio.run(main)
# docs: end hello
