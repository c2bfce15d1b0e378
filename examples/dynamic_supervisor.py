"""A simple_one_for_one supervisor: one template, children started on demand."""

from __future__ import annotations

import trio

from actors import (
    Actor,
    ActorCrashedError,
    ActorShutdown,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorSpec,
    open_actor_system,
    open_supervisor,
)
from actors.supervision import NO_BACKOFF


# docs: start session
class Session(Actor):
    def __init__(self, room: str, user: str) -> None:
        self.room = room
        self.user = user

    async def receive(self, message: object) -> object:
        match message:
            case "whoami":
                return f"{self.user} in {self.room}"
            case "logout":
                raise ActorShutdown("logged out")  # transient: not restarted
            case "crash":
                raise RuntimeError(f"session of {self.user} failed")
        return None


sessions = SupervisorSpec(
    strategy=Strategy.SIMPLE_ONE_FOR_ONE,
    children=[
        ChildSpec(
            id="session",
            start=Session,
            args=("lobby",),  # the template's args come first
            restart=Restart.TRANSIENT,
            backoff=NO_BACKOFF,
        )
    ],
)
# docs: end session


async def main() -> None:
    async with open_actor_system() as system:
        # docs: start use
        async with open_supervisor(system, sessions) as supervisor:
            alice = await supervisor.spawn("alice")
            bob = await supervisor.spawn("bob")
            carol = await supervisor.spawn("carol", name="carol")
            print(await alice.ask("whoami"), "/", await carol.ask("whoami"))

            try:
                await bob.ask("crash")
            except ActorCrashedError:
                print("bob crashed")
            print("bob again:", await bob.ask("whoami"), "restarts:", bob.statistics().restarts)

            alice.tell_nowait("logout")
            print("alice:", await alice.wait_stopped())

            await supervisor.terminate_child(carol)
            print("carol:", carol.exit_reason, "name free:", system.lookup("carol") is None)
            print(supervisor.count_children())
        # docs: end use
        print("bob after the supervisor stopped:", bob.exit_reason)


if __name__ == "__main__":
    trio.run(main)
