"""``open_broker``: the broker for a URL."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from actors.pubsub._redis import open_redis_pubsub

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from actors.pubsub._broker import Broker
    from actors.pubsub._connection_actor import ConnectionOptions
    from actors.runtime import ActorSystem


@asynccontextmanager
async def open_broker(
    system: ActorSystem, url: str, *, options: ConnectionOptions | None = None
) -> AsyncIterator[Broker]:
    """Open the broker a URL names: ``redis://``, ``rediss://`` or ``unix://``."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        async with open_redis_pubsub(system, url, options=options) as pubsub:
            yield pubsub
        return
    raise ValueError(f"unsupported broker URL: {url!r}")
