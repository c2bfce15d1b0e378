"""What ``/livez`` and ``/readyz`` say about a server process: read from state it keeps anyway.

An orchestrator restarts a process whose liveness probe fails and takes it out of rotation while
its readiness probe fails. A process whose Redis is away must not be restarted (it reconnects by
itself, and a restart would only add its own startup to the outage), so liveness looks at the
supervision tree alone and readiness at the Redis connection. Both are plain reads, with no I/O
and no side effect: no metric moves when a probe is answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.observability import HealthCheck, HealthReport, combine_checks

if TYPE_CHECKING:
    from actors.pubsub import PubSub
    from actors.runtime import ActorSystem
    from actors.server.http import ProbeSource

__all__ = ["broker_readiness", "system_liveness"]


def system_liveness(system: ActorSystem) -> ProbeSource:
    """A ``/livez`` source: down once a top-level actor of ``system`` (a root supervisor) has
    crashed or been killed, or the system is shutting down; up otherwise, Redis or not.

    Args:
        system: The process's actor system.
    """

    def liveness() -> HealthReport:
        statistics = system.statistics()
        if statistics.failed_top_level_actors:
            check = HealthCheck.down(failed_top_level_actors=statistics.failed_top_level_actors)
        elif statistics.closing:
            check = HealthCheck.down(reason="shutting down")
        else:
            check = HealthCheck.up(top_level_actors=statistics.top_level_actors)
        return combine_checks({"supervision": check})

    return liveness


def broker_readiness(pubsub: PubSub) -> HealthCheck:
    """The ``broker`` check of a ``/readyz`` report: down while the Redis connection is down or
    its subscriptions are being restored (``Broker.connected`` is False), up otherwise
    (``memory://`` has no connection and is always up)."""
    connected = pubsub.broker.connected
    if connected is False:
        return HealthCheck.down(connected=False, reason="not connected, or restoring subscriptions")
    return HealthCheck.up(connected=connected)
