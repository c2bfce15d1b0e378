"""``/admin``: the observer page, its files, and ``/admin/state`` behind a bearer token.

The page and its files carry no data and are served to anyone who asks (the page is a form
for the token); ``/admin/state`` answers only a request whose ``Authorization: Bearer`` header
holds the admin token, compared in constant time. Every answer under ``/admin`` is
``Cache-Control: no-store`` and carries a strict Content-Security-Policy: no inline script or
style, nothing from another origin.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import orjson
from prometheus_client import CollectorRegistry, Counter

from actors.server.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.server.admin._state import Document

logger = logging.getLogger(__name__)

ADMIN_TOKEN_ENVIRONMENT_VARIABLE: Final = "ACTORS_ADMIN_TOKEN"
MIN_ADMIN_TOKEN_BYTES: Final = 16
ADMIN_PATH: Final = "/admin"
STATE_PATH: Final = "/admin/state"
STATIC: Final = Path(__file__).parent / "static"
CHAT_STYLES: Final = Path(__file__).parents[1] / "gateway" / "static" / "app.css"
"""The chat page's style sheet: the observer uses its variables and classes, for one look."""

_FILES: Final = {
    ADMIN_PATH: (STATIC / "admin.html", "text/html; charset=utf-8"),
    "/admin/admin.js": (STATIC / "admin.js", "text/javascript; charset=utf-8"),
    "/admin/admin.css": (STATIC / "admin.css", "text/css; charset=utf-8"),
    "/admin/app.css": (CHAT_STYLES, "text/css; charset=utf-8"),
}
_HEADERS: Final = (
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
)
_JSON: Final = "application/json"


def admin_token_from(value: str | None) -> bytes | None:
    """The admin token: ``value``, else ``$ACTORS_ADMIN_TOKEN``; None (no ``/admin``) if neither.

    Raises:
        ValueError: The token is shorter than 16 bytes (an empty ``value`` included): a token
            anyone could guess would open the page to anyone; or it has characters other than
            printable ASCII, which a browser cannot send in a header.
    """
    text = value if value is not None else os.environ.get(ADMIN_TOKEN_ENVIRONMENT_VARIABLE)
    if text is None or (value is None and not text):
        return None
    if not all("!" <= character <= "~" for character in text):
        raise ValueError("the admin token must be printable ASCII without spaces")
    if len(text) < MIN_ADMIN_TOKEN_BYTES:
        raise ValueError(
            f"the admin token must be at least {MIN_ADMIN_TOKEN_BYTES} bytes long, not {len(text)}"
        )
    return text.encode()


def is_admin_path(path: str) -> bool:
    """Whether ``path`` is ``/admin`` or under it: answered 404 when the observer is off."""
    return path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/")


class AdminRoutes:
    """Answers ``/admin`` and the paths under it.

    Args:
        token: The admin token, at least 16 bytes (``admin_token_from``).
        state: Builds the document ``/admin/state`` answers (``observer_state``); called once
            per request, synchronously.
        registry: Where the count of refused requests goes
            (``actors_admin_requests_refused_total``, by reason).
    """

    def __init__(
        self,
        token: bytes,
        state: Callable[[], Document],
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if len(token) < MIN_ADMIN_TOKEN_BYTES:
            raise ValueError(f"the admin token must be at least {MIN_ADMIN_TOKEN_BYTES} bytes")
        self._token = token
        self.state = state
        self.files = {path: (file.read_bytes(), kind) for path, (file, kind) in _FILES.items()}
        self.refused = Counter(
            "actors_admin_requests_refused",
            "Requests for /admin/state refused: no token, or a wrong one.",
            ["reason"],
            registry=registry if registry is not None else CollectorRegistry(),
        )

    async def respond(self, request: HttpRequest) -> HttpResponse:
        """The page, one of its files or the state; 404 for any other path under ``/admin``."""
        if request.path != STATE_PATH and request.path not in self.files:
            return _answer(404, b"not found\n", "text/plain; charset=utf-8")
        if request.method not in {"GET", "HEAD"}:
            return HttpResponse(
                405, b"method not allowed\n", headers=(*_HEADERS, ("allow", "GET, HEAD"))
            )
        if request.path != STATE_PATH:
            body, content_type = self.files[request.path]
            return _answer(200, body, content_type)
        refusal = self._refusal(request)
        if refusal is not None:
            self.refused.labels(refusal).inc()
            logger.info("/admin/state refused: %s token", refusal)
            return HttpResponse(
                401,
                orjson.dumps({"error": f"{refusal} admin token"}) + b"\n",
                _JSON,
                (*_HEADERS, ("www-authenticate", 'Bearer realm="actors admin"')),
            )
        return _answer(200, orjson.dumps(self.state()) + b"\n", _JSON)

    def _refusal(self, request: HttpRequest) -> str | None:
        """Why the request may not read the state ("no", "wrong"), or None if it may."""
        given = request.headers.get("authorization")
        if given is None:
            return "no"
        scheme, _, credentials = given.partition(" ")
        # Compared whole, in constant time: how long a prefix matched must not show. The
        # headers were read as latin-1, so encoding them back gives the bytes sent.
        matches = hmac.compare_digest(credentials.strip().encode("latin-1"), self._token)
        if scheme.lower() != "bearer" or not matches:
            return "wrong"
        return None


def _answer(status: int, body: bytes, content_type: str) -> HttpResponse:
    return HttpResponse(status, body, content_type, _HEADERS)
