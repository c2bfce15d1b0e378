"""What ``/livez`` and ``/readyz`` read, at the moments that tell them apart, in virtual time.

Liveness falls with the supervision tree and never with Redis; readiness falls with the Redis
connection and stays down while the subscriptions are being replayed on a new one, which is
connected by then. (tests/server/test_serve_edges.py shows both over HTTP on a real serve.)
"""

from __future__ import annotations

import trio
import trio.testing
from in_memory_redis import connection_options, serving

from actors import ActorContext, ActorSystem, Crashed, RestartIntensityError
from actors.observability import HealthStatus
from actors.pubsub import PubSubSettings, open_pubsub
from actors.server.gateway import broker_readiness, system_liveness
from actors.supervision import ChildSpec, SupervisorSpec, start_supervisor
from actors.testing import MemoryRedisConnection


async def test_liveness_falls_when_a_top_level_supervisor_gives_up(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    liveness = system_liveness(system)

    async def fails(context: ActorContext) -> None:
        raise RuntimeError("always")

    spec = SupervisorSpec(children=[ChildSpec(id="doomed", start=fails)], max_restarts=0)
    assert liveness().status is HealthStatus.UP
    supervisor = await start_supervisor(system, spec)
    reason = await supervisor.ref.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, RestartIntensityError)
    report = liveness()
    assert report.status is HealthStatus.DOWN
    assert report.checks["supervision"].detail == {"failed_top_level_actors": 1}


async def test_readiness_stays_down_while_the_subscriptions_are_replayed(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving() as server:
        settings = PubSubSettings(connection=connection_options(server))
        async with open_pubsub(system, "redis://memory", settings=settings) as pubsub:
            await pubsub.broker.wait_connected()

            async def handle(message: object) -> None:
                pass

            await pubsub.subscribe("news", handle)
            liveness = system_liveness(system)
            assert broker_readiness(pubsub).status is HealthStatus.UP
            held: list[MemoryRedisConnection] = []

            def hold_the_replay(
                connection: MemoryRedisConnection, command: tuple[bytes, ...]
            ) -> str | None:
                if command[0].upper() == b"SUBSCRIBE" and not held:
                    held.append(connection)
                    connection.stall()
                return None

            server.set_command_hook(hold_the_replay)
            server.restart()
            await server.wait_until(lambda: bool(held))
            # Connected and handshaken again, its SUBSCRIBE sent but not acknowledged.
            assert held[0] in server.connections
            readiness = broker_readiness(pubsub)
            assert readiness.status is HealthStatus.DOWN
            assert readiness.detail["connected"] is False
            assert liveness().status is HealthStatus.UP
            server.set_command_hook(None)
            server.resume()
            with trio.fail_after(5):
                await pubsub.broker.wait_connected()
            assert broker_readiness(pubsub).status is HealthStatus.UP
            assert liveness().status is HealthStatus.UP
