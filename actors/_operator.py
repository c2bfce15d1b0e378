"""Operator commands of the ``actors`` command line: publish, subscribe, health."""

from __future__ import annotations

import datetime
import json
import signal
import sys
from typing import TYPE_CHECKING, Final, TextIO

import orjson
import trio

from actors._errors import ActorsError, RedisError, RedisTimeoutError
from actors.messages import is_pattern
from actors.pubsub import ChannelSink, ConnectionOptions, open_redis_pubsub
from actors.redis import (
    ConnectionLost,
    RedisMessage,
    Resubscribed,
    SubscriptionEvent,
    failure_cause,
    redact_url,
)
from actors.runtime import open_actor_system

if TYPE_CHECKING:
    from actors.pubsub import RedisPubSub

CONNECT_TIMEOUT: Final = 5.0  # seconds an operator command waits for Redis
PROBE_TIMEOUT: Final = 3.0  # seconds the health command gives the liveness probe


async def publish(url: str, channel: str, payload: str, out: TextIO) -> int:
    """Publish a JSON document as it is; print how many subscribers received it."""
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        print(f"not valid JSON: {error}", file=sys.stderr)
        return 2
    async with open_actor_system() as system, open_redis_pubsub(system, url) as pubsub:
        with trio.fail_after(CONNECT_TIMEOUT):
            await pubsub.wait_connected()
        receivers = await pubsub.publish(channel, payload.encode())
    print(f"{receivers} receiver(s)", file=out)
    return 0


def describe(event: SubscriptionEvent) -> str:
    """One line for one event: time, channel, message type and payload (or the gap)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S.%f")[:-3]
    match event:
        case RedisMessage(channel=channel, payload=payload):
            try:
                document = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return f"{now} {channel.decode(errors='replace')} (not JSON) {payload!r:.300}"
            kind = document.get("type", "-") if isinstance(document, dict) else "-"
            text = json.dumps(document, ensure_ascii=False)
            return f"{now} {channel.decode(errors='replace')} {kind} {text:.1000}"
        case ConnectionLost(reason=reason):
            return f"{now} -- connection lost ({reason}); messages may be missed until resubscribed"
        case Resubscribed(gap_start=start, gap_end=end):
            return f"{now} -- resubscribed after a gap of {end - start:.3f} s"
    raise TypeError(f"not a subscription event: {event!r}")


async def subscribe(url: str, name: str, out: TextIO, *, limit: int | None = None) -> int:
    """Print what arrives on a channel or pattern until Ctrl-C (or ``limit`` messages)."""
    send, receive = trio.open_memory_channel[SubscriptionEvent](10_000)
    async with open_actor_system() as system, open_redis_pubsub(system, url) as pubsub:
        with trio.fail_after(CONNECT_TIMEOUT):
            if is_pattern(name):
                await pubsub.psubscribe(name, ChannelSink(send))
            else:
                await pubsub.subscribe(name, ChannelSink(send))
        kind = "pattern" if is_pattern(name) else "channel"
        print(f"subscribed to {kind} {name}; Ctrl-C stops", file=out, flush=True)
        count = 0
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(stop_on_signal)
                async for event in receive:
                    print(describe(event), file=out, flush=True)
                    if isinstance(event, RedisMessage):
                        count += 1
                        if limit is not None and count >= limit:
                            nursery.cancel_scope.cancel()
                            break
    print(f"stopped after {count} message(s)", file=out)
    return 0


async def health(url: str, out: TextIO) -> int:
    """Print a JSON health report of a Redis connection; exit code 0 if up, 1 if not."""
    report: dict[str, object] = {"url": redact_url(url)}
    status = "down"
    options = ConnectionOptions(probe_timeout=PROBE_TIMEOUT)
    try:
        async with (
            open_actor_system() as system,
            open_redis_pubsub(system, url, options=options) as pubsub,
        ):
            with trio.move_on_after(CONNECT_TIMEOUT):
                await pubsub.wait_connected()
            if pubsub.hub.connected:
                status = await _check(pubsub, report)
            else:
                # Still trying: say why the last attempt failed, or that none has ended yet.
                error = pubsub.hub.last_exception or RedisTimeoutError(
                    f"no connection within {CONNECT_TIMEOUT} s", seconds=CONNECT_TIMEOUT
                )
                report["error"] = pubsub.hub.last_error or str(error)
                report["cause"] = failure_cause(error)
    except (ActorsError, trio.TooSlowError, OSError) as error:
        report["error"] = f"{type(error).__name__}: {error}"
        report["cause"] = failure_cause(error)
    report["status"] = status
    print(json.dumps(report, indent=2, sort_keys=True), file=out)
    return 0 if status == "up" else 1


async def _check(pubsub: RedisPubSub, report: dict[str, object]) -> str:
    connection = pubsub.connection()
    info = await connection.info("stats")
    report["server"] = {
        "pubsub_channels": info.get("pubsub_channels"),
        "pubsub_patterns": info.get("pubsub_patterns"),
        "redis_version": connection.server_info.get("version"),
        "protocol": connection.protocol,
    }
    try:
        report["probe_seconds"] = round(await pubsub.hub.probe(PROBE_TIMEOUT), 6)
    except RedisError as error:
        report["probe"] = str(error)
        return "down"
    return "up"
