"""``run_server``: the chat server as a program (``python -m actors serve``)."""

from __future__ import annotations

import gc
import logging
import os
import secrets
import signal
from functools import partial
from typing import TYPE_CHECKING

import trio

from actors.gateway._gateway import GatewaySettings, open_gateway
from actors.gateway._web import serve_gateway
from actors.observability import PubSubMetrics
from actors.pubsub import open_pubsub
from actors.runtime import open_actor_system

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

SECRET_ENVIRONMENT_VARIABLE = "ACTORS_GATEWAY_SECRET"
DEFAULT_GC_THRESHOLD = 50_000


def tune_garbage_collector(young_threshold: int = DEFAULT_GC_THRESHOLD) -> None:
    """Freeze what startup built and collect the young generation less often.

    A gateway keeps a task per session, and each fan-out leaves a frame in flight in a thousand
    of them at once: with Python's default threshold (700 allocations) those short-lived objects
    survive young collections, are promoted, and set off full collections of the whole heap,
    which then dominate the server's time and its latency (see docs/performance.md). Reference
    counting still frees almost everything at once; only cycles wait for a collection.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)


def secret_from(value: str | None) -> bytes:
    """The token secret: ``value``, else ``$ACTORS_GATEWAY_SECRET``, else a random one.

    A random secret is fine for one process; processes sharing Redis must share a secret.
    """
    text = value or os.environ.get(SECRET_ENVIRONMENT_VARIABLE)
    if text:
        return text.encode()
    return secrets.token_bytes(32)


async def run_server(
    *,
    url: str = "memory://",
    host: str = "127.0.0.1",
    port: int = 8000,
    secret: bytes,
    settings: GatewaySettings | None = None,
    announce: Callable[[str], object] = print,
    gc_threshold: int | None = DEFAULT_GC_THRESHOLD,
) -> None:
    """Run the chat server until SIGINT or SIGTERM, then stop in order.

    On a signal, every session is closed with 1001 first (clients reconnect, possibly to
    another process), then the rooms, presence and the Redis connection stop.

    Args:
        gc_threshold: Once the server is up, ``tune_garbage_collector(gc_threshold)``;
            None leaves the garbage collector as it is.
    """
    try:
        await _serve_until_signalled(url, host, port, secret, settings, announce, gc_threshold)
    except BaseExceptionGroup as group:
        # One failure (a port in use, Redis refusing us) comes wrapped by the nurseries it
        # crossed: raise it as itself, for a plain error message.
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if error is group:
            raise
        raise error from None


async def _serve_until_signalled(
    url: str,
    host: str,
    port: int,
    secret: bytes,
    settings: GatewaySettings | None,
    announce: Callable[[str], object],
    gc_threshold: int | None,
) -> None:
    metrics = PubSubMetrics()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with (
            open_actor_system() as system,
            open_pubsub(system, url, metrics=metrics) as pubsub,
            open_gateway(system, pubsub, secret=secret, settings=settings) as gateway,
            trio.open_nursery() as nursery,
        ):
            bound = await nursery.start(partial(serve_gateway, gateway, port, host=host))
            if gc_threshold is not None:
                tune_garbage_collector(gc_threshold)
            shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
            announce(f"serving on http://{shown}:{bound} ({url.split('@')[-1]})")
            async for received in signals:
                logger.info("signal %d: stopping", received)
                break
            await gateway.close_sessions()
            nursery.cancel_scope.cancel()
