"""The health checks of the Redis broker: its connection, and the server's view of it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import trio

from actors._errors import ActorsError
from actors.observability import HealthCheck
from actors.redis import Kind, failure_cause

if TYPE_CHECKING:
    from actors.pubsub._redis import RedisPubSub

__all__ = ["connection_check", "server_check"]

SERVER_CHECK_TIMEOUT: Final = 1.0  # seconds the server's view may take


def connection_check(broker: RedisPubSub) -> HealthCheck:
    statistics = broker.statistics()
    hub = statistics.hub
    options = broker.options
    detail = {
        "connected": hub.connected,
        "protocol": hub.protocol,
        "reconnects": hub.reconnects,
        "connection_restarts": statistics.connection_restarts,
        "last_message_age": hub.last_message_age,
        "last_probe_age": hub.last_probe_age,
        "gap_started": hub.gap_started,
        "gap_age": hub.gap_age,
        "last_error": hub.last_error,
    }
    failure = broker.hub.failure
    if failure is not None:
        return HealthCheck.down(
            **detail, reason=f"failed for good: {failure}", cause=failure_cause(failure)
        )
    if not hub.connected:
        error = broker.hub.last_exception
        return HealthCheck.down(
            **detail,
            reason=f"not connected: {hub.last_error or 'connecting'}",
            cause=failure_cause(error) if error is not None else "connecting",
        )
    # Activity proves the connection alive; without any, a probe must have come back lately.
    patience = options.probe_interval + options.probe_timeout + 1.0
    last_sign = min(
        hub.last_message_age if hub.last_message_age is not None else math.inf,
        hub.last_probe_age if hub.last_probe_age is not None else math.inf,
    )
    if last_sign > patience:
        return HealthCheck.down(**detail, reason="liveness probe overdue")
    return HealthCheck.up(**detail)


async def server_check(broker: RedisPubSub) -> HealthCheck:
    names = [
        row.name
        for row in broker.hub.table.rows()
        if row.kind is Kind.CHANNEL and row.name != broker.hub.probe_channel
    ]
    # A deaf connection would hold the report until the probe replaces it: answer sooner.
    with trio.move_on_after(SERVER_CHECK_TIMEOUT) as scope:
        try:
            connection = broker.connection()
            info = await connection.info("stats")
            numsub = await connection.pubsub_numsub(*names) if names else {}
        except ActorsError as error:
            return HealthCheck.down(error=str(error))
    if scope.cancelled_caught:
        return HealthCheck.down(error=f"no answer within {SERVER_CHECK_TIMEOUT} s")
    missing = sorted(name for name, count in numsub.items() if not count)
    detail = {
        "pubsub_channels": info.get("pubsub_channels"),
        "pubsub_patterns": info.get("pubsub_patterns"),
        "our_channels": len(names),
        "channels_without_subscriber": missing[:20],
    }
    if missing:
        return HealthCheck.degraded(**detail, reason="the server lacks some of our subscriptions")
    return HealthCheck.up(**detail)
