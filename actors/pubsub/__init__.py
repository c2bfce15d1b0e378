"""Pub/Sub for actors: the supervised Redis connection actor and the sinks it feeds."""

from __future__ import annotations

from actors.pubsub._broker import Broker, BrokerSubscription, LocalState
from actors.pubsub._client import (
    DEFAULT_BUFFER_SIZE,
    HandlerStatistics,
    PubSub,
    PubSubSettings,
    SubscriptionHandle,
    open_pubsub,
    subscription,
)
from actors.pubsub._cluster import (
    ClusterCommands,
    ClusterPubSub,
    ClusterPubSubStatistics,
    ClusterSubscription,
    open_cluster_pubsub,
)
from actors.pubsub._connection_actor import (
    DEFAULT_PROBE_INTERVAL,
    DEFAULT_PROBE_TIMEOUT,
    DEFAULT_RECONNECT_BACKOFF,
    ConnectionOptions,
)
from actors.pubsub._dead_letters import (
    dead_letter_record,
    dead_letters_to_channel,
    dead_letters_to_list,
)
from actors.pubsub._glob import compile_glob, glob_match
from actors.pubsub._history import History, HistoryPublished, HistoryWindow, Position
from actors.pubsub._history_store import (
    HistoryRules,
    HistoryStore,
    MemoryHistoryStore,
    RedisHistoryStore,
)
from actors.pubsub._memory import MemoryBroker, MemorySubscription, open_memory_broker
from actors.pubsub._open import memory_broker_name, open_broker
from actors.pubsub._policy import (
    DEFAULT_ERROR_POLICY,
    DEFAULT_RETRY_POLICY,
    DeadLetter,
    ErrorAction,
    ErrorPolicy,
    RetryPolicy,
)
from actors.pubsub._recovery import Recovered, RecoveryState, Unrecoverable
from actors.pubsub._redis import RedisPubSub, RedisPubSubStatistics, Subscription, open_redis_pubsub
from actors.pubsub._sinks import ChannelSink, MailboxSink
from actors.pubsub._subscription import RecoveryEvent, SubscriptionCounters, SubscriptionObserver

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_ERROR_POLICY",
    "DEFAULT_PROBE_INTERVAL",
    "DEFAULT_PROBE_TIMEOUT",
    "DEFAULT_RECONNECT_BACKOFF",
    "DEFAULT_RETRY_POLICY",
    "Broker",
    "BrokerSubscription",
    "ChannelSink",
    "ClusterCommands",
    "ClusterPubSub",
    "ClusterPubSubStatistics",
    "ClusterSubscription",
    "ConnectionOptions",
    "DeadLetter",
    "ErrorAction",
    "ErrorPolicy",
    "HandlerStatistics",
    "History",
    "HistoryPublished",
    "HistoryRules",
    "HistoryStore",
    "HistoryWindow",
    "LocalState",
    "MailboxSink",
    "MemoryBroker",
    "MemoryHistoryStore",
    "MemorySubscription",
    "Position",
    "PubSub",
    "PubSubSettings",
    "Recovered",
    "RecoveryEvent",
    "RecoveryState",
    "RedisHistoryStore",
    "RedisPubSub",
    "RedisPubSubStatistics",
    "RetryPolicy",
    "Subscription",
    "SubscriptionCounters",
    "SubscriptionHandle",
    "SubscriptionObserver",
    "Unrecoverable",
    "compile_glob",
    "dead_letter_record",
    "dead_letters_to_channel",
    "dead_letters_to_list",
    "glob_match",
    "memory_broker_name",
    "open_broker",
    "open_cluster_pubsub",
    "open_memory_broker",
    "open_pubsub",
    "open_redis_pubsub",
    "subscription",
]
