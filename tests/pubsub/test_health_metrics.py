"""Health reports and Prometheus metrics of typed Pub/Sub, against a real redis-server."""

from __future__ import annotations

import json

import attrs
import pytest
import trio
import trio.testing
from prometheus_client import generate_latest

from actors import MailboxConfig, Message, message_type, open_actor_system
from actors.observability import HealthStatus, PubSubMetrics
from actors.pubsub import ConnectionOptions, PubSubSettings, RedisPubSub, open_pubsub
from actors.server.http import serve_observability
from actors.testing import RedisServer

TIMEOUT = 10.0


@message_type("health-test.ping")
@attrs.frozen(kw_only=True)
class Ping(Message):
    number: int


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:
    return redis_server


async def test_health_is_up_with_connection_server_and_subscription_details(
    server: RedisServer,
) -> None:
    async def handle(message: Ping) -> None:
        pass

    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system, open_pubsub(system, server.url) as pubsub:
            await pubsub.subscribe("pings", handle)
            await pubsub.broker.wait_connected()
            report = await pubsub.health()
    assert report.status is HealthStatus.UP, report.to_json()
    assert set(report.checks) == {"connection", "server", "subscriptions"}
    assert report.checks["connection"].detail["connected"] is True
    assert report.checks["server"].detail["our_channels"] == 1
    rows = report.checks["subscriptions"].detail["subscriptions"]
    assert [row["name"] for row in rows] == ["pings"]
    assert report.http_status == 200


async def test_health_is_down_while_the_server_is_gone(server: RedisServer) -> None:
    settings = PubSubSettings(connection=ConnectionOptions(probe_interval=0.2, probe_timeout=0.3))
    with trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(system, server.url, settings=settings) as pubsub,
        ):
            broker = pubsub.broker
            assert isinstance(broker, RedisPubSub)
            await broker.wait_connected()
            server.kill()
            while broker.statistics().hub.connected:  # noqa: ASYNC110 - a real process
                await trio.sleep(0.01)
            report = await pubsub.health()
            assert report.status is HealthStatus.DOWN
            assert report.http_status == 503
            await trio.to_thread.run_sync(server.restart)
            await pubsub.broker.wait_connected()
            assert (await pubsub.health()).status is HealthStatus.UP


async def test_a_nearly_full_subscription_mailbox_degrades_health(server: RedisServer) -> None:
    release = trio.Event()

    async def stuck(message: Ping) -> None:
        await release.wait()

    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system, open_pubsub(system, server.url) as pubsub:
            handle = await pubsub.subscribe("slow", stuck, mailbox=MailboxConfig(capacity=10))
            for number in range(11):
                await pubsub.publish("slow", Ping(number=number))
            while handle.statistics().mailbox.size < 10:  # noqa: ASYNC110 - through Redis
                await trio.sleep(0.01)
            report = await pubsub.health()
            release.set()
    assert report.status is HealthStatus.DEGRADED
    assert report.checks["subscriptions"].status is HealthStatus.DEGRADED


async def test_metrics_count_messages_decode_errors_processing_and_lag(
    server: RedisServer,
) -> None:
    metrics = PubSubMetrics()
    seen = trio.Event()
    count = 0

    async def handle(message: Ping) -> None:
        nonlocal count
        count += 1
        if count == 3:
            seen.set()

    with trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(system, server.url, metrics=metrics) as pubsub,
        ):
            await pubsub.subscribe("pings", handle)
            for number in range(3):
                await pubsub.publish("pings", Ping(number=number))
            await pubsub.broker.publish("pings", b"garbage")
            await seen.wait()
            # Gauges are read at scrape time, while the subscriptions run; no health report
            # is needed for any figure to move.
            text = generate_latest(metrics.registry).decode()
    assert (
        'actors_pubsub_messages_published_total{channel_group="pings",type="health-test.ping"} 3.0'
        in text
    )
    assert (
        'actors_pubsub_messages_received_total{channel_group="pings",type="health-test.ping"} 3.0'
        in text
    )
    assert 'actors_pubsub_decode_errors_total{channel_group="pings"} 1.0' in text
    assert 'actors_pubsub_processing_seconds_count{channel_group="pings"' in text
    assert 'actors_pubsub_lag_seconds_count{channel_group="pings"} 3.0' in text
    assert 'actors_pubsub_subscribers{channel_group="pings"} 1.0' in text


async def test_http_endpoint_serves_health_and_metrics_of_pubsub(server: RedisServer) -> None:
    metrics = PubSubMetrics()
    with trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(system, server.url, metrics=metrics) as pubsub,
            trio.open_nursery() as nursery,
        ):
            await pubsub.broker.wait_connected()
            port = await nursery.start(
                lambda task_status=trio.TASK_STATUS_IGNORED: serve_observability(
                    0, metrics=metrics, health=pubsub.health, task_status=task_status
                )
            )
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                await stream.send_all(
                    b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                response = b""
                while chunk := await stream.receive_some():
                    response += chunk
            head, _, body = response.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert json.loads(body)["status"] == "up"
            nursery.cancel_scope.cancel()
