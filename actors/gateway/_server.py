"""``run_server``: the chat server as a program (``python -m actors serve``)."""

from __future__ import annotations

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
from actors.runtime import DEFAULT_GC_THRESHOLD, open_actor_system, tune_garbage_collector

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

SECRET_ENVIRONMENT_VARIABLE = "ACTORS_GATEWAY_SECRET"


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
        gc_threshold: Once the server is up, ``tune_garbage_collector(gc_threshold)``: a
            session is a task, and a fan-out leaves a frame in flight in each of them, which
            Python's default collector setting turns into full collections (see
            docs/performance.md); None leaves the collector as it is.

    Raises:
        AddressInUseError: Another socket holds ``host`` and ``port``; nothing was served.
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
