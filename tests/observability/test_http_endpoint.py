"""The /metrics and /health endpoint over real sockets, spoken to in raw HTTP bytes.

Real sockets, so the real clock: waits are on events with deadlines, never on sleeps.
"""

from __future__ import annotations

import errno
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ParamSpec

import attrs
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from actors.observability import HealthCheck, HealthReport, PubSubMetrics, combine_checks
from actors.server.http import AddressInUseError, serve_observability

DEADLINE = 10.0
P = ParamSpec("P")
GET_METRICS = b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n"
GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"


@attrs.define
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """A raw HTTP/1.1 client on one TCP connection, reading responses one by one."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError(self.buffer)
        self.buffer += data

    async def response(self, *, head: bool = False) -> Response:
        while b"\r\n\r\n" not in self.buffer:
            await self._fill()
        raw_head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = raw_head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = 0 if head else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            await self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(int(status_line.split()[1]), headers, body)

    async def request(self, raw: bytes, *, head: bool = False) -> Response:
        await self.stream.send_all(raw)
        return await self.response(head=head)

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection with nothing more sent."""
        return await self.stream.receive_some(65536) == b""


@attrs.define
class Health:
    """A health source the tests switch between reports."""

    report: HealthReport = attrs.field(
        factory=lambda: combine_checks({"redis": HealthCheck.up(channels=2)})
    )

    def __call__(self) -> HealthReport:
        return self.report


HealthSource = Callable[[], HealthReport] | Callable[[], Awaitable[HealthReport]]


async def start(
    nursery: trio.Nursery,
    health: HealthSource | None = None,
    metrics: PubSubMetrics | CollectorRegistry | None = None,
    **options: Any,
) -> int:
    port: int = await nursery.start(
        lambda task_status: serve_observability(
            0,
            metrics=PubSubMetrics() if metrics is None else metrics,
            health=Health() if health is None else health,
            task_status=task_status,
            **options,
        )
    )
    return port


Connect = Callable[[int], Awaitable[Client]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Open raw clients to a port; every one is closed after the test."""
    clients: list[Client] = []

    async def open_client(port: int) -> Client:
        client = Client(await trio.open_tcp_stream("127.0.0.1", port))
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.stream.aclose()


def deadline(test: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
    """Fail the test if it takes more than ``DEADLINE`` seconds, rather than hang."""

    @functools.wraps(test)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        with trio.fail_after(DEADLINE):
            await test(*args, **kwargs)

    return guarded


@deadline
async def test_metrics_are_served_in_the_prometheus_text_format(
    nursery: trio.Nursery, connect: Connect
) -> None:
    metrics = PubSubMetrics()
    metrics.message_published("notifications", "NotificationMessage")
    port = await start(nursery, metrics=metrics)
    client = await connect(port)
    response = await client.request(GET_METRICS)
    assert response.status == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert (
        b'actors_pubsub_messages_published_total{channel_group="notifications",'
        b'type="NotificationMessage"} 1.0' in response.body
    )


@deadline
async def test_a_bare_registry_can_be_served(nursery: trio.Nursery, connect: Connect) -> None:
    registry = CollectorRegistry()
    PubSubMetrics(registry).redis_reconnected()
    client = await connect(await start(nursery, metrics=registry))
    assert b"actors_redis_reconnects_total 1.0" in (await client.request(GET_METRICS)).body


@deadline
async def test_health_answers_200_when_up_or_degraded_and_503_when_down(
    nursery: trio.Nursery,
    connect: Connect,
) -> None:
    health = Health()
    client = await connect(await start(nursery, health))
    response = await client.request(GET_HEALTH)
    assert (response.status, response.headers["content-type"]) == (200, "application/json")
    assert json.loads(response.body) == {
        "status": "up",
        "checks": {"redis": {"status": "up", "detail": {"channels": 2}}},
    }
    health.report = combine_checks({"mailboxes": HealthCheck.degraded(drops=4)})
    response = await client.request(GET_HEALTH)
    assert (response.status, json.loads(response.body)["status"]) == (200, "degraded")
    health.report = combine_checks({"redis": HealthCheck.down(probe_age=None)})
    response = await client.request(GET_HEALTH)
    assert (response.status, json.loads(response.body)["status"]) == (503, "down")


@deadline
async def test_an_async_health_source_is_awaited(nursery: trio.Nursery, connect: Connect) -> None:
    async def health() -> HealthReport:
        await trio.lowlevel.checkpoint()
        return combine_checks({"redis": HealthCheck.down()})

    client = await connect(await start(nursery, health))
    assert (await client.request(GET_HEALTH)).status == 503


@deadline
async def test_a_failing_or_hanging_health_source_reports_down(
    nursery: trio.Nursery, connect: Connect
) -> None:
    def broken() -> HealthReport:
        raise RuntimeError("no view of the server")

    async def hanging() -> HealthReport:
        await trio.Event().wait()
        raise AssertionError("unreachable")

    client = await connect(await start(nursery, broken))
    response = await client.request(GET_HEALTH)
    assert response.status == 503
    assert json.loads(response.body)["checks"]["health"]["detail"] == {
        "error": "RuntimeError: no view of the server"
    }
    client = await connect(await start(nursery, hanging, health_timeout=0.05))
    response = await client.request(GET_HEALTH)
    assert (response.status, json.loads(response.body)["status"]) == (503, "down")


@deadline
async def test_unknown_paths_get_404_and_other_methods_405(
    nursery: trio.Nursery, connect: Connect
) -> None:
    client = await connect(await start(nursery))
    assert (await client.request(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")).status == 404
    response = await client.request(
        b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert (response.status, response.headers["allow"]) == (405, "GET, HEAD")
    assert (
        await client.request(b"GET /health?verbose=1 HTTP/1.1\r\nHost: t\r\n\r\n")
    ).status == 200


@deadline
async def test_head_sends_the_headers_without_the_body(
    nursery: trio.Nursery, connect: Connect
) -> None:
    client = await connect(await start(nursery))
    response = await client.request(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n", head=True)
    assert response.status == 200
    assert int(response.headers["content-length"]) > 0
    assert (await client.request(GET_HEALTH)).status == 200


@deadline
@pytest.mark.parametrize(
    "garbage",
    [b"garbage\r\n\r\n", b"\x00\xff\xfe\r\n\r\n", b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n"],
)
async def test_a_malformed_request_gets_400_and_the_server_carries_on(
    nursery: trio.Nursery, connect: Connect, garbage: bytes
) -> None:
    port = await start(nursery)
    client = await connect(port)
    response = await client.request(garbage)
    assert (response.status, response.headers["connection"]) == (400, "close")
    assert await client.closed_by_server()
    assert (await (await connect(port)).request(GET_METRICS)).status == 200


@deadline
async def test_requests_over_the_size_limit_are_refused(
    nursery: trio.Nursery, connect: Connect
) -> None:
    port = await start(nursery, max_request_bytes=1024)
    client = await connect(port)
    huge_header = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n"
    assert (await client.request(huge_header)).status == 431
    client = await connect(port)
    unfinished_header = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 4096
    assert (await client.request(unfinished_header)).status == 431
    client = await connect(port)
    huge_body = b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n" + b"a" * 4096
    assert (await client.request(huge_body)).status == 413


@deadline
async def test_keep_alive_serves_two_requests_on_one_connection(
    nursery: trio.Nursery, connect: Connect
) -> None:
    client = await connect(await start(nursery))
    assert (await client.request(GET_METRICS)).status == 200
    assert (await client.request(GET_HEALTH)).status == 200


@deadline
async def test_pipelined_requests_are_answered_in_order(
    nursery: trio.Nursery, connect: Connect
) -> None:
    client = await connect(await start(nursery))
    await client.stream.send_all(GET_HEALTH + b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
    assert [(await client.response()).status for _ in range(2)] == [200, 404]


@deadline
async def test_connection_close_is_honoured(nursery: trio.Nursery, connect: Connect) -> None:
    client = await connect(await start(nursery))
    response = await client.request(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert response.status == 200
    assert await client.closed_by_server()


@deadline
async def test_a_slow_client_does_not_block_another(
    nursery: trio.Nursery, connect: Connect
) -> None:
    port = await start(nursery)
    slow = await connect(port)
    await slow.stream.send_all(GET_METRICS[:20])
    await trio.testing.wait_all_tasks_blocked()
    fast = await connect(port)
    assert (await fast.request(GET_HEALTH)).status == 200
    assert (await slow.request(GET_METRICS[20:])).status == 200


@deadline
async def test_a_half_sent_request_times_out_with_408(
    nursery: trio.Nursery, connect: Connect
) -> None:
    port = await start(nursery, connection_timeout=0.2)
    slow = await connect(port)
    await slow.stream.send_all(GET_METRICS[:20])
    response = await slow.response()
    assert (response.status, response.headers["connection"]) == (408, "close")
    assert await slow.closed_by_server()


@deadline
async def test_an_idle_keep_alive_connection_is_closed_quietly(
    nursery: trio.Nursery, connect: Connect
) -> None:
    client = await connect(await start(nursery, connection_timeout=0.2))
    assert (await client.request(GET_HEALTH)).status == 200
    assert await client.closed_by_server()


@deadline
async def test_the_bound_port_is_reported_and_the_server_stops_when_cancelled() -> None:
    async with trio.open_nursery() as nursery:
        port = await start(nursery)
        assert port > 0
        nursery.cancel_scope.cancel()
    with pytest.raises(OSError):  # noqa: PT011 - the errno varies by platform
        await trio.open_tcp_stream("127.0.0.1", port)


@deadline
async def test_a_port_in_use_is_an_address_in_use_error_naming_the_address() -> None:
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AddressInUseError) as raised:
            await serve_observability(port, metrics=PubSubMetrics(), health=Health())
    error = raised.value
    assert isinstance(error, OSError)
    assert error.errno == errno.EADDRINUSE
    assert (error.host, error.port) == ("127.0.0.1", port)
    assert str(error) == f"cannot listen on 127.0.0.1:{port}: address already in use"
    assert isinstance(error.__cause__, OSError)


def test_an_address_in_use_error_shows_an_ipv6_address_in_brackets() -> None:
    assert (
        str(AddressInUseError("::1", 8000)) == "cannot listen on [::1]:8000: address already in use"
    )


@deadline
async def test_the_probes_answer_from_their_own_sources_apart_from_health(
    nursery: trio.Nursery, connect: Connect
) -> None:
    """/livez and /readyz call their sources, not /health's, and change no metric."""
    health = Health(combine_checks({"redis": HealthCheck.down()}))
    alive, ready = Health(), Health(combine_checks({"broker": HealthCheck.down(connected=False)}))
    metrics = PubSubMetrics()
    port = await start(nursery, health, metrics, liveness=alive, readiness=ready)
    client = await connect(port)
    before = (await client.request(GET_METRICS)).body
    livez = await client.request(b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n")
    assert (livez.status, livez.headers["cache-control"]) == (200, "no-store")
    readyz = await client.request(b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n")
    assert readyz.status == 503
    assert json.loads(readyz.body) == {
        "status": "down",
        "checks": {"broker": {"status": "down", "detail": {"connected": False}}},
    }
    ready.report = combine_checks({"broker": HealthCheck.up(connected=True)})
    alive.report = combine_checks({"supervision": HealthCheck.down(failed_top_level_actors=1)})
    assert (await client.request(b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n")).status == 200
    assert (await client.request(b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n")).status == 503
    assert (await client.request(b"POST /livez HTTP/1.1\r\nHost: test\r\n\r\n")).status == 405
    assert (await client.request(GET_METRICS)).body == before


@deadline
async def test_without_sources_the_probes_are_up(nursery: trio.Nursery, connect: Connect) -> None:
    health = Health(combine_checks({"redis": HealthCheck.down()}))
    client = await connect(await start(nursery, health))
    for path in (b"/livez", b"/readyz"):
        response = await client.request(b"GET " + path + b" HTTP/1.1\r\nHost: test\r\n\r\n")
        assert (response.status, json.loads(response.body)) == (
            200,
            {"status": "up", "checks": {}},
        )
