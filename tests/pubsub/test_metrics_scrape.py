"""What operators see on ``/metrics`` is fed where events happen (issue 9, requirement 5).

Each test reads the figures by scraping ``/metrics`` over a real socket, and nothing else: no
health report is asked for (a last test shows that asking for one changes nothing). Drops per
overflow policy, subscription restarts, reconnects, losses and gaps move when they happen;
subscribers, mailbox depths and ``actors_redis_connected`` are read at the scrape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
from _servers import cluster_node_args, own_every_slot
from prometheus_client.parser import text_string_to_metric_families

from actors import ActorSystem, MailboxConfig, Message, Overflow, message_type
from actors.observability import HealthReport, MetricsInstrument, PubSubMetrics
from actors.pubsub import (
    ErrorAction,
    ErrorPolicy,
    History,
    Position,
    PubSub,
    PubSubSettings,
    RetryPolicy,
    open_pubsub,
)
from actors.redis import key_slot, open_redis_connection
from actors.runtime import open_actor_system
from actors.server.http import serve_observability
from actors.testing import RedisServer, RedisServerFactory

TIMEOUT = 20.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@message_type("scrape-test.tick")
@attrs.frozen(kw_only=True)
class Tick(Message):
    number: int


async def scrape(port: int) -> Samples:
    """``GET /metrics`` on a fresh connection: every sample, by name and labels."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        response = bytearray()
        while chunk := await stream.receive_some(65536):
            response += chunk
    head, _, body = bytes(response).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@attrs.define
class Scraped:
    pubsub: PubSub
    port: int

    async def samples(self) -> Samples:
        return await scrape(self.port)

    async def wait_for(self, condition: Callable[[Samples], bool]) -> Samples:
        """Scrape until ``condition`` holds (under the caller's deadline)."""
        while True:
            samples = await self.samples()
            if condition(samples):
                return samples
            await trio.sleep(0.02)


@asynccontextmanager
async def scraped(url: str, settings: PubSubSettings | None = None) -> AsyncIterator[Scraped]:
    """A PubSub with metrics (and the runtime's instrument, as ``actors serve`` has), served on
    ``/metrics``; the health source is never called by these tests."""
    metrics = PubSubMetrics()

    def no_health() -> HealthReport:
        raise AssertionError("these tests read /metrics only")

    async with (
        open_actor_system(instruments=[MetricsInstrument(metrics)]) as system,
        open_pubsub(system, url, metrics=metrics, settings=settings) as pubsub,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(
            lambda task_status: serve_observability(
                0, metrics=metrics, health=no_health, task_status=task_status
            )
        )
        yield Scraped(pubsub, port)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("overflow", "reason"),
    [
        (Overflow.DROP_OLDEST, "overflow_drop_oldest"),
        (Overflow.DROP_NEWEST, "overflow_drop_newest"),
        (Overflow.FAIL, "overflow_fail"),
    ],
)
async def test_mailbox_overflow_drops_are_counted_by_policy_as_they_happen(
    redis_server: RedisServer, overflow: Overflow, reason: str
) -> None:
    release = trio.Event()

    async def stuck(message: Tick) -> None:
        await release.wait()

    mailbox = MailboxConfig(capacity=2, overflow=overflow, batch_size=1)
    with trio.fail_after(TIMEOUT):
        async with scraped(redis_server.url) as site:
            handle = await site.pubsub.subscribe("slow", stuck, mailbox=mailbox)
            for number in range(20):
                await site.pubsub.publish("slow", Tick(number=number))

            def all_in(samples: Samples) -> bool:
                received = (
                    value(
                        samples,
                        "actors_pubsub_messages_received_total",
                        channel_group="slow",
                        type="scrape-test.tick",
                    )
                    or 0
                )
                dropped = (
                    value(
                        samples,
                        "actors_pubsub_messages_dropped_total",
                        channel_group="slow",
                        reason=reason,
                    )
                    or 0
                )
                depth = value(samples, "actors_pubsub_mailbox_depth", channel_group="slow")
                return received + dropped + (depth or 0) == 20  # fmt: skip

            samples = await site.wait_for(all_in)
            dropped = handle.statistics().mailbox.dropped
            assert dropped > 0
            assert value(
                samples, "actors_pubsub_messages_dropped_total", channel_group="slow", reason=reason
            ) == float(dropped)
            assert value(samples, "actors_pubsub_mailbox_depth", channel_group="slow") == 2.0
            assert value(samples, "actors_pubsub_subscribers", channel_group="slow") == 1.0
            # The runtime's instrument counts the same drops per actor and policy.
            actor_drops = sum(
                count
                for (name, labels), count in samples.items()
                if name == "actors_actor_mailbox_dropped_total"
                and dict(labels).get("policy") == overflow.value
            )
            assert actor_drops == float(dropped)
            release.set()
            samples = await site.wait_for(
                lambda samples: (
                    value(samples, "actors_pubsub_mailbox_depth", channel_group="slow") == 0.0
                )
            )


async def test_subscription_restarts_are_counted_when_they_happen(
    redis_server: RedisServer,
) -> None:
    escalate = ErrorPolicy(retry=RetryPolicy(max_attempts=1), exhausted=ErrorAction.ESCALATE)

    async def crash(message: Tick) -> None:
        raise RuntimeError(f"cannot take tick {message.number}")

    with trio.fail_after(TIMEOUT):
        async with scraped(redis_server.url) as site:
            handle = await site.pubsub.subscribe("crashy", crash, error_policy=escalate)
            for number in range(3):
                await site.pubsub.publish("crashy", Tick(number=number))
            samples = await site.wait_for(
                lambda samples: (
                    (
                        value(
                            samples,
                            "actors_pubsub_subscription_restarts_total",
                            channel_group="crashy",
                        )
                        or 0
                    )
                    >= 3
                )
            )
            assert value(
                samples, "actors_pubsub_subscription_restarts_total", channel_group="crashy"
            ) == float(handle.statistics().restarts)


async def test_a_lost_connection_moves_connected_losses_gaps_and_reconnects(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with scraped(redis_server.url) as site:
            await site.pubsub.subscribe("news", _ignore)
            samples = await site.samples()
            assert value(samples, "actors_redis_connected") == 1.0
            assert value(samples, "actors_redis_reconnects_total") == 0.0
            assert value(samples, "actors_redis_gap_seconds_count") == 0.0
            redis_server.kill()
            samples = await site.wait_for(
                lambda samples: value(samples, "actors_redis_connected") == 0.0
            )
            assert value(samples, "actors_redis_connection_losses_total") == 1.0
            assert value(samples, "actors_redis_gap_seconds_count") == 0.0  # not closed yet
            await redis_server.restart_async()
            samples = await site.wait_for(
                lambda samples: value(samples, "actors_redis_connected") == 1.0
            )
            assert value(samples, "actors_redis_reconnects_total") == 1.0
            assert value(samples, "actors_redis_gap_seconds_count") == 1.0
            gap = value(samples, "actors_redis_gap_seconds_sum")
            assert gap is not None
            assert gap > 0.0


async def test_a_subscription_the_server_ends_is_counted_by_kind(
    redis_server_factory: RedisServerFactory,
) -> None:
    """A shard channel's slot leaves the node and comes back: one subscription ended unasked."""
    server = redis_server_factory(cluster_node_args())
    slot = key_slot("news")
    with trio.fail_after(TIMEOUT):
        await own_every_slot(server)
        async with scraped(server.url) as site, open_redis_connection(server.url) as admin:
            await site.pubsub.subscribe("news", _ignore, sharded=True)
            name = "actors_redis_subscriptions_ended_by_server_total"
            assert value(await site.samples(), name, kind="shard") is None  # none yet
            await admin.execute("MULTI")
            await admin.execute("CLUSTER", "DELSLOTS", slot)
            await admin.execute("CLUSTER", "ADDSLOTS", slot)
            assert await admin.execute("EXEC") == [b"OK", b"OK"]
            samples = await site.wait_for(
                lambda samples: value(samples, name, kind="shard") is not None
            )
            assert value(samples, name, kind="shard") == 1.0
            assert value(samples, "actors_redis_connection_losses_total") == 0.0


async def test_a_health_report_changes_no_figure(
    system: ActorSystem, redis_server: RedisServer
) -> None:
    metrics = PubSubMetrics()
    with trio.fail_after(TIMEOUT):
        async with (
            open_pubsub(system, redis_server.url, metrics=metrics) as pubsub,
            trio.open_nursery() as nursery,
        ):
            port = await nursery.start(
                lambda task_status: serve_observability(
                    0, metrics=metrics, health=pubsub.health, task_status=task_status
                )
            )
            await pubsub.subscribe("news", _ignore)
            before = await scrape(port)
            report = await pubsub.health()
            assert report.http_status == 200
            assert await scrape(port) == before
            nursery.cancel_scope.cancel()


async def _ignore(message: bytes) -> None:
    pass


async def test_recovered_messages_and_unrecoverable_gaps_are_counted_when_they_happen(
    redis_server: RedisServer,
) -> None:
    settings = PubSubSettings(histories={"feed:{*}": History(size=100, ttl=60.0)})

    async def ignore(message: Tick) -> None:
        pass

    with trio.fail_after(TIMEOUT):
        async with scraped(redis_server.url, settings) as site:
            for number in range(1, 11):
                await site.pubsub.publish("feed:{a}", Tick(number=number))
            found = await site.pubsub.history_store.read("feed:{a}", after=0, up_to=None, limit=0)
            assert found is not None
            epoch = found.window.epoch
            await site.pubsub.subscribe("feed:{a}", ignore, recover=True, since=Position(epoch, 4))
            await site.pubsub.subscribe(
                "feed:{a}", ignore, recover=True, since=Position("another", 4)
            )

            def both(samples: Samples) -> bool:
                recovered = value(
                    samples, "actors_pubsub_messages_recovered_total", channel_group="feed:{a}"
                )
                lost = value(
                    samples,
                    "actors_pubsub_unrecoverable_gaps_total",
                    channel_group="feed:{a}",
                    cause="new_epoch",
                )
                return recovered == 6.0 and lost == 1.0

            await site.wait_for(both)
