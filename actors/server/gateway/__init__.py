"""The WebSocket gateway: chat rooms, presence, notifications and live updates for browsers.

One session actor per connection, one room hub actor per room with local sessions, all on
typed Pub/Sub (``memory://`` or Redis). The protocol is docs/protocol.md; ``run_server`` is
``python -m actors serve``.
"""

from __future__ import annotations

from actors.server.gateway._gateway import (
    DEFAULT_ROOMS,
    GLOBAL_SCOPE,
    Gateway,
    GatewayMetrics,
    GatewaySettings,
    open_gateway,
)
from actors.server.gateway._probes import broker_readiness, system_liveness
from actors.server.gateway._protocol import ProtocolError, check_room, parse_client_frame
from actors.server.gateway._rooms import (
    TYPING_CHANNEL,
    TYPING_SHARDED,
    TypingNotice,
    typing_channel,
)
from actors.server.gateway._server import (
    SECRET_ENVIRONMENT_VARIABLE,
    SHUTDOWN_BOUND,
    random_secret,
    run_server,
    secret_from,
)
from actors.server.gateway._session import Session
from actors.server.gateway._token_keys import ALGORITHMS, KeyRing, TokenKeyError
from actors.server.gateway._tokens import (
    DEFAULT_LEEWAY,
    DEFAULT_ROOMS_CLAIM,
    DEFAULT_TOKEN_TTL,
    DemoLogin,
    Identity,
    InvalidTokenError,
    TokenRules,
    TokenVerifier,
)
from actors.server.gateway._web import GatewayWeb, serve_gateway

__all__ = [
    "ALGORITHMS",
    "DEFAULT_LEEWAY",
    "DEFAULT_ROOMS",
    "DEFAULT_ROOMS_CLAIM",
    "DEFAULT_TOKEN_TTL",
    "GLOBAL_SCOPE",
    "SECRET_ENVIRONMENT_VARIABLE",
    "SHUTDOWN_BOUND",
    "TYPING_CHANNEL",
    "TYPING_SHARDED",
    "DemoLogin",
    "Gateway",
    "GatewayMetrics",
    "GatewaySettings",
    "GatewayWeb",
    "Identity",
    "InvalidTokenError",
    "KeyRing",
    "ProtocolError",
    "Session",
    "TokenKeyError",
    "TokenRules",
    "TokenVerifier",
    "TypingNotice",
    "broker_readiness",
    "check_room",
    "open_gateway",
    "parse_client_frame",
    "random_secret",
    "run_server",
    "secret_from",
    "serve_gateway",
    "system_liveness",
    "typing_channel",
]
