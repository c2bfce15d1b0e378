"""actors: supervised, message-driven components on trio, and typed Pub/Sub over Redis.

This module holds the framework's core vocabulary: actors and refs, supervision, messages,
Pub/Sub and the errors users catch. Each subpackage holds the rest of its layer
(``actors.runtime``, ``actors.supervision``, ``actors.messages``, ``actors.redis``,
``actors.pubsub``, ``actors.presence``, ``actors.observability``; ``actors.testing`` for tests).
The real-time server built on the framework lives in ``actors.server``.
"""

from __future__ import annotations

import logging

from actors._errors import (
    ActorCrashedError,
    ActorsError,
    ActorShutdown,
    ActorStartError,
    ActorStoppedError,
    AskTimeoutError,
    InvalidChannelNameError,
    InvalidIdentifierError,
    MailboxFullError,
    MessageDecodeError,
    RedisAuthenticationError,
    RedisConfigurationError,
    RedisConnectionError,
    RedisError,
    RedisTimeoutError,
    RestartIntensityError,
    SupervisorError,
)
from actors.messages import Codec, Message, channel_name, message_type, tagged_union, untagged
from actors.pubsub import (
    ConnectionOptions,
    ErrorPolicy,
    PubSub,
    PubSubSettings,
    RetryPolicy,
    SubscriptionHandle,
    open_pubsub,
)
from actors.runtime import (
    Actor,
    ActorContext,
    ActorRef,
    ActorSystem,
    Ask,
    Crashed,
    Down,
    ExitReason,
    Killed,
    MailboxConfig,
    Normal,
    Overflow,
    Shutdown,
    open_actor_system,
)
from actors.supervision import (
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    SupervisorSpec,
    open_supervisor,
    start_supervisor,
)

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorContext",
    "ActorCrashedError",
    "ActorRef",
    "ActorShutdown",
    "ActorStartError",
    "ActorStoppedError",
    "ActorSystem",
    "ActorsError",
    "Ask",
    "AskTimeoutError",
    "Backoff",
    "ChildSpec",
    "Codec",
    "ConnectionOptions",
    "Crashed",
    "Down",
    "ErrorPolicy",
    "ExitReason",
    "InvalidChannelNameError",
    "InvalidIdentifierError",
    "Killed",
    "MailboxConfig",
    "MailboxFullError",
    "Message",
    "MessageDecodeError",
    "Normal",
    "Overflow",
    "PubSub",
    "PubSubSettings",
    "RedisAuthenticationError",
    "RedisConfigurationError",
    "RedisConnectionError",
    "RedisError",
    "RedisTimeoutError",
    "Restart",
    "RestartIntensityError",
    "RetryPolicy",
    "Shutdown",
    "Strategy",
    "SubscriptionHandle",
    "Supervisor",
    "SupervisorError",
    "SupervisorSpec",
    "channel_name",
    "message_type",
    "open_actor_system",
    "open_pubsub",
    "open_supervisor",
    "start_supervisor",
    "tagged_union",
    "untagged",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
