"""A small trio-native Redis client: sans-IO RESP on hiredis, one pipelined connection.

Usable on its own; it imports nothing from the rest of ``actors`` but its errors.

    async with open_redis_connection("redis://localhost:6379/0") as redis:
        receivers = await redis.publish("news", b"hello")
"""

from __future__ import annotations

from actors._errors import (
    RedisAuthenticationError,
    RedisConfigurationError,
    RedisConnectionError,
    RedisConnectionLostError,
    RedisError,
    RedisHandshakeError,
    RedisPermissionError,
    RedisProtocolError,
    RedisRedirectError,
    RedisReplyError,
    RedisTimeoutError,
    RedisTlsError,
    RedisUrlError,
)
from actors.redis._cluster_config import (
    DEFAULT_REFRESH_INTERVAL,
    ClusterSettings,
    is_cluster_url,
)
from actors.redis._cluster_map import ClusterNode, NodeRole, Shard, SlotMap
from actors.redis._commands import RedisCommands, Script, parse_info
from actors.redis._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_PORT,
    RedisSettings,
    check_client_name,
    default_client_name,
    redact_url,
    with_client_name,
)
from actors.redis._connection import (
    PushHandler,
    RedisConnection,
    RedisConnectionState,
    RedisConnectionStatistics,
    open_redis_connection,
)
from actors.redis._failures import failure_cause, heals
from actors.redis._handshake import TRANSIENT_CODES
from actors.redis._pubsub import (
    DEFAULT_ACK_TIMEOUT,
    HandOver,
    HubObserver,
    PubSubHub,
    PubSubStatistics,
    unique_probe_channel,
)
from actors.redis._resp import (
    MAX_FEED_SIZE,
    Argument,
    Frame,
    RespParser,
    encode_command,
    is_push,
    reply_error,
)
from actors.redis._routing import command_key
from actors.redis._slots import HASH_SLOTS, hash_tag, key_slot
from actors.redis._subscriptions import (
    ConnectionLost,
    Kind,
    MessageSink,
    RedisMessage,
    Resubscribed,
    SubscriptionEvent,
    SubscriptionStatistics,
    SubscriptionTable,
)
from actors.redis._transport import Connector, Transport, open_transport

__all__ = [
    "DEFAULT_ACK_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_PORT",
    "DEFAULT_REFRESH_INTERVAL",
    "HASH_SLOTS",
    "MAX_FEED_SIZE",
    "TRANSIENT_CODES",
    "Argument",
    "ClusterNode",
    "ClusterSettings",
    "ConnectionLost",
    "Connector",
    "Frame",
    "HandOver",
    "HubObserver",
    "Kind",
    "MessageSink",
    "NodeRole",
    "PubSubHub",
    "PubSubStatistics",
    "PushHandler",
    "RedisAuthenticationError",
    "RedisCommands",
    "RedisConfigurationError",
    "RedisConnection",
    "RedisConnectionError",
    "RedisConnectionLostError",
    "RedisConnectionState",
    "RedisConnectionStatistics",
    "RedisError",
    "RedisHandshakeError",
    "RedisMessage",
    "RedisPermissionError",
    "RedisProtocolError",
    "RedisRedirectError",
    "RedisReplyError",
    "RedisSettings",
    "RedisTimeoutError",
    "RedisTlsError",
    "RedisUrlError",
    "RespParser",
    "Resubscribed",
    "Script",
    "Shard",
    "SlotMap",
    "SubscriptionEvent",
    "SubscriptionStatistics",
    "SubscriptionTable",
    "Transport",
    "check_client_name",
    "command_key",
    "default_client_name",
    "encode_command",
    "failure_cause",
    "hash_tag",
    "heals",
    "is_cluster_url",
    "is_push",
    "key_slot",
    "open_redis_connection",
    "open_transport",
    "parse_info",
    "redact_url",
    "reply_error",
    "unique_probe_channel",
    "with_client_name",
]
