"""The Redis connection actor: one per process, supervised, restarted with backoff when it breaks.

Each incarnation opens a connection (two in RESP2 mode), attaches it to the ``PubSubHub`` (which
replays every subscription), proves it with a probe, then watches it: a closed socket, or a
liveness probe that does not come back, ends the incarnation with ``RedisConnectionLostError``.
Its supervisor restarts it after an exponential backoff with jitter, from the initial delay
again once a connection has proved healthy. A failure that cannot heal (refused credentials,
a refused ``SELECT``, a certificate that does not verify) is not retried: the hub fails every
waiter with it. The hub, and so the subscription table, outlives every incarnation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import (
    ActorShutdown,
    RedisConfigurationError,
    RedisConnectionLostError,
    RedisError,
)
from actors.redis import PubSubHub, RedisSettings, open_redis_connection, open_transport
from actors.supervision import Backoff

if TYPE_CHECKING:
    from actors.redis import Connector, RedisConnection
    from actors.runtime import ActorContext

logger = logging.getLogger(__name__)

DEFAULT_PROBE_INTERVAL: Final = 5.0  # seconds without any pushed message before a probe
DEFAULT_PROBE_TIMEOUT: Final = 3.0  # seconds a probe may take to come back
DEFAULT_RECONNECT_WAIT: Final = 5.0  # seconds a call waits for a lost connection to come back
DEFAULT_RECONNECT_BACKOFF: Final = Backoff(
    initial=0.1, multiplier=2.0, maximum=5.0, jitter=0.2, reset_after=30.0
)


@attrs.frozen(kw_only=True)
class ConnectionOptions:
    """How the connection actor reconnects and proves its connection alive.

    Attributes:
        reconnect: Backoff between reconnect attempts (the users' defaults: 100 ms, x2, at
            most 5 s, ±20 %). It starts from ``initial`` again as soon as a connection is
            healthy (replayed and probed), and keeps growing while attempts fail before that.
        max_restarts: Reconnects allowed within ``within`` seconds before the connection's
            supervisor gives up: a spin guard. Every attempt counts, failed ones included, so
            the window is short: at least 80 ms apart (the first delay, less its jitter) and
            further apart while attempts fail, outages of any length and restarts of the
            server a fraction of a second apart never come near 10 within 1 s; a server that
            accepts, answers a probe and drops the connection at once, over and over, does.
        within: The window for ``max_restarts``, in seconds.
        probe_interval: Seconds without any pushed message after which a probe is sent.
        probe_timeout: Seconds a probe may take before the connection counts as dead.
        ack_timeout: Seconds a subscribe or a replay waits for Redis's acknowledgements.
        reconnect_wait: Seconds a call that needs the connection waits for it to come back
            during an outage (``ready_connection``, a publish's retries) before it fails.
        probe_channel: The probe's own channel (see ``PubSubHub``); allow it in ACLs.
        connector: Opens the byte stream to the server (see ``actors.redis.Connector``):
            TCP, TLS or a Unix socket by default; an in-memory server in tests.
    """

    reconnect: Backoff = DEFAULT_RECONNECT_BACKOFF
    max_restarts: int = 10
    within: float = 1.0
    probe_interval: float = DEFAULT_PROBE_INTERVAL
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT
    ack_timeout: float = 30.0
    reconnect_wait: float = DEFAULT_RECONNECT_WAIT
    probe_channel: bytes | None = None
    connector: Connector = open_transport


async def run_connection(
    context: ActorContext, hub: PubSubHub, settings: RedisSettings, options: ConnectionOptions
) -> None:
    """One incarnation of the connection actor.

    It ends by raising a ``RedisError`` when the connection fails or breaks (its supervisor
    reconnects after the backoff), with ``ActorShutdown`` when the failure cannot heal (the hub
    fails every waiter with the ``RedisConfigurationError``, and the transient child is not
    restarted), or when it is stopped.
    """
    reason = "the connection actor stopped"
    failure: RedisError | None = None
    try:
        async with open_redis_connection(
            settings, push_batch_handler=hub.push_many, connector=options.connector
        ) as commands:
            if commands.protocol == 2:
                # A RESP2 connection that subscribes can run no other command: use a second one.
                subscriber_settings = attrs.evolve(settings, protocol=2)
                async with open_redis_connection(
                    subscriber_settings,
                    push_batch_handler=hub.push_many,
                    connector=options.connector,
                ) as subscriber:
                    reason = await _serve(context, hub, commands, subscriber, options)
            else:
                reason = await _serve(context, hub, commands, None, options)
    except RedisConfigurationError as error:
        # Not logged louder: the error reaches the owner of the block, which reports it.
        logger.debug(
            "the Redis connection to %s cannot work: %s (not retried)", settings.describe(), error
        )
        hub.fail(error)
        raise ActorShutdown(f"Redis connection failed for good: {error}") from None
    except RedisError as error:
        reason = str(error)
        failure = error
        raise
    finally:
        if hub.failure is None:
            hub.detach(reason, notify=not context.stopping, error=failure)
    raise RedisConnectionLostError(reason)


async def _serve(
    context: ActorContext,
    hub: PubSubHub,
    commands: RedisConnection,
    subscriber: RedisConnection | None,
    options: ConnectionOptions,
) -> str:
    """Attach the connection(s), prove them, then watch them; returns why they must be replaced.

    A connection that was replayed and answered a probe is healthy: the supervisor is told so,
    and the next loss reconnects after the initial delay. One that breaks before that (a
    flapping server) keeps the backoff growing.
    """
    await hub.attach(commands, subscriber)
    await hub.probe(options.probe_timeout)
    context.reset_backoff()
    failure: list[str] = []
    async with trio.open_nursery() as nursery:

        def fail(reason: str) -> None:
            if not failure:
                failure.append(reason)
            nursery.cancel_scope.cancel(reason=reason)

        async def watch(connection: RedisConnection) -> None:
            cause = await connection.wait_closed()
            fail(f"connection closed: {cause}" if cause else "connection closed")

        async def probe() -> None:
            while True:
                idle = hub.idle_for()
                if idle < options.probe_interval:
                    await trio.sleep(options.probe_interval - idle)
                    continue
                try:
                    await hub.probe(options.probe_timeout)
                except RedisError as error:
                    fail(f"liveness probe failed: {error}")
                    return

        nursery.start_soon(watch, commands)
        if subscriber is not None:
            nursery.start_soon(watch, subscriber)
        nursery.start_soon(probe)
    return failure[0]


DEFAULT_CONNECTION_OPTIONS: Final = ConnectionOptions()
