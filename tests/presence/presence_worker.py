"""A child process for the multi-process presence test: joins users, says ``ready``, sleeps.

Usage: ``python presence_worker.py REDIS_URL SCOPE``. The test SIGKILLs it, so nothing it
holds is cleaned up: its connections have to expire.
"""

from __future__ import annotations

import os
import sys

import trio

from actors import open_actor_system
from actors.presence import PresenceSettings, open_presence_tracker
from actors.pubsub import open_pubsub

# A TTL several heartbeats long: a loaded CI machine may delay a heartbeat, never by seconds.
SETTINGS = PresenceSettings(ttl=2.0, heartbeat=0.3, sweep_interval=0.2, grace=0.3)


async def main(url: str, scope: str) -> None:
    async with (
        open_actor_system() as system,
        open_pubsub(system, url) as pubsub,
        open_presence_tracker(pubsub, scope, settings=SETTINGS) as tracker,
    ):
        for user_id in ("u1", "u2"):
            for connection_id in ("c1", "c2"):
                await tracker.join(user_id, connection_id, {"pid": str(os.getpid())})
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
