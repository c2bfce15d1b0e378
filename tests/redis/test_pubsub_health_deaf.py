"""A deaf connection (open socket, nothing comes back) is reported down, never up."""

from __future__ import annotations

import trio
from _proxy import BlackHoleProxy

from actors import open_actor_system
from actors.observability import HealthStatus
from actors.pubsub import ConnectionOptions, PubSubSettings, RedisPubSub, open_pubsub
from actors.supervision import Backoff

TIMEOUT = 10.0
OPTIONS = ConnectionOptions(
    probe_interval=0.2,
    probe_timeout=0.3,
    reconnect=Backoff(initial=0.05, maximum=0.1, jitter=0.0),
    max_restarts=1000,
)


async def test_a_black_holed_connection_is_down_until_a_new_one_is_up(
    black_hole_proxy: BlackHoleProxy,
) -> None:
    settings = PubSubSettings(connection=OPTIONS)

    async def handle(message: bytes) -> None:
        pass

    with trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(system, black_hole_proxy.url, settings=settings) as pubsub,
        ):
            broker = pubsub.broker
            assert isinstance(broker, RedisPubSub)
            await pubsub.subscribe("heartbeat", handle)
            await broker.wait_connected()
            assert (await pubsub.health()).status is HealthStatus.UP
            await black_hole_proxy.black_hole()
            # Nothing closes; only the missing probe can tell. Health must never say up
            # while the connection is deaf, and goes down once the probe is overdue.
            statuses = []
            while broker.statistics().connection_restarts == 0:
                report = await pubsub.health()
                statuses.append(report.status)
                await trio.sleep(0.05)
            assert HealthStatus.DOWN in statuses
            assert statuses[-1] is not HealthStatus.UP
            black_hole_proxy.restore()
            while not broker.statistics().hub.connected:  # noqa: ASYNC110 - a real socket
                await trio.sleep(0.05)
            assert (await pubsub.health()).status is HealthStatus.UP
