"""Presence: a tracker actor for one scope, under a supervisor of our own.

Runs on ``memory://``; set REDIS_URL to run it on a Redis server instead.
"""

from __future__ import annotations

import os

import trio

from actors import open_actor_system
from actors.presence import PresenceChange, PresenceSettings, open_presence_tracker
from actors.pubsub import open_pubsub
from actors.supervision import SupervisorSpec, open_supervisor

SCOPE = "presence-example"


def show(change: PresenceChange) -> None:
    """A watcher: called from the tracker's task, so it only prints."""
    print(f"  change: joined {sorted(change.joined)}, left {sorted(change.left)}")


async def main() -> None:
    url = os.environ.get("REDIS_URL", "memory://")
    # docs: start open
    settings = PresenceSettings(ttl=60.0, heartbeat=25.0, sweep_interval=5.0, grace=5.0)
    async with (
        open_actor_system() as system,
        open_pubsub(system, url) as pubsub,
        open_supervisor(system, SupervisorSpec(), name="presence") as trackers,
        open_presence_tracker(pubsub, SCOPE, supervisor=trackers, settings=settings) as lobby,
    ):
        # docs: end open
        # docs: start use
        await lobby.watch(show)
        print("ada went online:", await lobby.join("ada", "phone", {"device": "phone"}))
        print("ada went online:", await lobby.join("ada", "laptop", {"device": "laptop"}))
        print("online:", sorted(await lobby.online_users()))
        print("ada's connections:", await lobby.connections("ada"))
        print("ada goes offline:", await lobby.leave("ada", "phone", grace=0))
        # docs: end use
        # docs: start restart
        lobby.ref.tell_nowait("not a request")  # a bug in the sender: the tracker crashes
        # Asked of the next incarnation, which reloaded the snapshot and announced ada's
        # laptop again; the watcher is still there.
        print("online after the restart:", sorted(await lobby.online_users()))
        print("restarts:", lobby.statistics().restarts)
        await lobby.leave("ada", "laptop", grace=0)
        # docs: end restart


if __name__ == "__main__":
    trio.run(main)
