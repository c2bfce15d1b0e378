"""Pub/Sub for actors: the supervised Redis connection actor and the sinks it feeds."""

from __future__ import annotations

from actors.pubsub._connection_actor import (
    DEFAULT_PROBE_INTERVAL,
    DEFAULT_PROBE_TIMEOUT,
    DEFAULT_RECONNECT_BACKOFF,
    ConnectionOptions,
)
from actors.pubsub._redis import RedisPubSub, RedisPubSubStatistics, Subscription, open_redis_pubsub
from actors.pubsub._sinks import ChannelSink, MailboxSink

__all__ = [
    "DEFAULT_PROBE_INTERVAL",
    "DEFAULT_PROBE_TIMEOUT",
    "DEFAULT_RECONNECT_BACKOFF",
    "ChannelSink",
    "ConnectionOptions",
    "MailboxSink",
    "RedisPubSub",
    "RedisPubSubStatistics",
    "Subscription",
    "open_redis_pubsub",
]
