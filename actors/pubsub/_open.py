"""``open_broker``: the broker a URL names, ``memory://`` or a ``redis://``-family URL."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from actors._errors import RedisUrlError
from actors.pubsub._cluster import open_cluster_pubsub
from actors.pubsub._memory import open_memory_broker
from actors.pubsub._redis import open_redis_pubsub
from actors.redis import is_cluster_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from actors.pubsub._broker import Broker
    from actors.pubsub._connection_actor import ConnectionOptions
    from actors.redis import HubObserver
    from actors.runtime import ActorSystem

REDIS_SCHEMES: Final = ("redis", "rediss", "unix")
MEMORY_SCHEME: Final = "memory"


def memory_broker_name(url: str) -> str | None:
    """The shared broker's name in a ``memory://`` URL (None for a private broker).

    Args:
        url: ``memory://`` or ``memory://NAME``.

    Returns:
        ``NAME``, or None for ``memory://``.

    Raises:
        ValueError: The URL is not a ``memory://`` URL, or has a path, query or fragment.
    """
    parts = urlsplit(url)
    if parts.scheme != MEMORY_SCHEME:
        raise ValueError(f"not a memory:// URL: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a memory:// URL is memory:// or memory://NAME, not {url!r}")
    return parts.netloc or None


@asynccontextmanager
async def open_broker(
    system: ActorSystem,
    url: str,
    *,
    options: ConnectionOptions | None = None,
    name: str | None = None,
    observer: HubObserver | None = None,
) -> AsyncIterator[Broker]:
    """Open the broker a URL names, for the duration of a block.

    ``memory://`` is a private in-process broker; ``memory://NAME`` attaches to the in-process
    server of that name, shared by every ``open_broker`` with the same URL in this process (each
    call is its own client, as each Redis connection is). ``redis://``, ``rediss://`` and
    ``unix://`` run the supervised Redis connection actor (``open_redis_pubsub``);
    ``redis+cluster://`` and ``rediss+cluster://`` (seed nodes, comma separated) run the cluster's
    topology actor and one connection actor per master (``open_cluster_pubsub``).

    Args:
        system: The actor system (the Redis connection actor runs in it).
        url: ``memory://[NAME]``, ``redis://...``, ``rediss://...``, ``unix://...``,
            ``redis+cluster://host:port[,host:port...]`` or ``rediss+cluster://...``.
        options: Connection options for Redis (ignored by ``memory://``).
        name: A registered name for the Redis connection's supervisor (ignored by ``memory://``).
        observer: Told about the Redis connection's events (ignored by ``memory://``).

    Yields:
        A ``MemoryBroker``, a ``RedisPubSub`` or a ``ClusterPubSub``.

    Raises:
        RedisUrlError: The URL's scheme is none of these, or a Redis URL is malformed (a
            ``ValueError``).
        ValueError: A ``memory://`` URL is malformed.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == MEMORY_SCHEME:
        async with open_memory_broker(memory_broker_name(url)) as broker:
            yield broker
    elif is_cluster_url(url):
        async with open_cluster_pubsub(
            system, url, options=options, name=name, observer=observer
        ) as cluster:
            yield cluster
    elif scheme in REDIS_SCHEMES:
        async with open_redis_pubsub(
            system, url, options=options, name=name, observer=observer
        ) as pubsub:
            yield pubsub
    else:
        # Only the scheme is shown: the rest of the URL may hold a password.
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise RedisUrlError(
            f"unsupported broker URL ({shown}): use memory://, memory://NAME, redis://, "
            "rediss://, unix://, redis+cluster:// or rediss+cluster://"
        )
