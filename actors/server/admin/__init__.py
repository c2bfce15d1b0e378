"""The observer: ``/admin`` on the server's port, a live look at one server process.

The supervision tree (state, restarts, last exit, mailboxes), the typed subscriptions, the
broker's connections and channels, and the gateway's sessions and rooms, polled by the page
once a second from ``/admin/state`` with the admin token. Off unless a token is configured
(``serve --admin-token`` or ``$ACTORS_ADMIN_TOKEN``). See docs/observer.md.
"""

from __future__ import annotations

from actors.server.admin._routes import (
    ADMIN_TOKEN_ENVIRONMENT_VARIABLE,
    MIN_ADMIN_TOKEN_BYTES,
    AdminRoutes,
    admin_token_from,
    is_admin_path,
)
from actors.server.admin._state import (
    DEFAULT_LIMITS,
    GatewayFacts,
    Limits,
    SessionFacts,
    observer_state,
)

__all__ = [
    "ADMIN_TOKEN_ENVIRONMENT_VARIABLE",
    "DEFAULT_LIMITS",
    "MIN_ADMIN_TOKEN_BYTES",
    "AdminRoutes",
    "GatewayFacts",
    "Limits",
    "SessionFacts",
    "admin_token_from",
    "is_admin_path",
    "observer_state",
]
