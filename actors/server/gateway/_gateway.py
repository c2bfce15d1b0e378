"""``Gateway``: the sessions, room hubs and shared subscriptions of one server process.

The tree, under ``open_gateway``::

    gateway supervisor (one_for_one)
    ├── stats        publishes this process's ``ServerStats`` live update every few seconds
    ├── presence     sends presence changes to sessions, gathered per scope every 0.1 s
    ├── hubs         simple_one_for_one: a ``RoomHub`` actor per room with local sessions
    └── sessions     simple_one_for_one: a session actor per WebSocket connection

Sessions start last and stop first, so a stopping server closes its connections (1001) while
the rooms, presence and Pub/Sub they use are still there.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import time
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import TYPE_CHECKING, Final

import attrs
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge

from actors._errors import ActorsError, ActorStoppedError
from actors.presence import PresenceSettings, open_presence_tracker
from actors.server.chat import RateLimit, open_chat_service
from actors.server.gateway import _protocol as protocol
from actors.server.gateway._presence_batch import (
    DEFAULT_PRESENCE_INTERVAL,
    PresenceBatcher,
    run_presence_batcher,
)
from actors.server.gateway._rooms import (
    TYPING_SHARDED,
    Attach,
    Attached,
    Detach,
    ResyncPresence,
    TypingNotice,
    run_room_hub,
    typing_channel,
)
from actors.server.gateway._session import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    Session,
    run_session,
)
from actors.server.notifications import Notifier, ServerStats, UpdateDispatcher, publish_update
from actors.supervision import (
    ChildSpec,
    KeyedChildren,
    Restart,
    Strategy,
    Supervisor,
    SupervisorSpec,
    open_supervisor,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import trio_websocket

    from actors.presence import PresenceChange, PresenceTracker
    from actors.pubsub import Position, PubSub
    from actors.runtime import ActorContext, ActorSystem
    from actors.server.chat import ChatService
    from actors.server.gateway._tokens import DemoLogin, TokenVerifier
    from actors.server.notifications import LiveUpdate, Notification

logger = logging.getLogger(__name__)

GLOBAL_SCOPE: Final = "global"
MIN_FRAME_BYTES: Final = 256  # the smallest frame limit: a hello with a demo token must fit
DEFAULT_ROOMS: Final = ("lobby", "random", "help")


def _default_server_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@attrs.frozen(kw_only=True)
class GatewaySettings:
    """Limits and timings of one gateway; the defaults are those of docs/protocol.md."""

    rooms: tuple[str, ...] = DEFAULT_ROOMS
    """Rooms suggested to clients in ``welcome``."""
    allowed_origins: tuple[str, ...] | None = None
    """Origins allowed to open a WebSocket; None: the server's own (scheme plus ``Host``)."""
    max_frame_bytes: int = 16 * 1024
    max_text_length: int = 2000
    send_queue_size: int = 256
    hello_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    close_timeout: float = 5.0
    max_rooms_per_session: int = 20
    max_frames_per_second: int = 50
    max_refused_in_a_row: int = 20
    chat_rate: RateLimit = attrs.field(factory=RateLimit)
    """Each user's message rate (5 a second, bursts of 10, by default)."""
    typing_interval: float = 1.0
    """Seconds between two typing notices of one session in one room; extras are dropped."""
    presence_interval: float = DEFAULT_PRESENCE_INTERVAL
    """Seconds over which presence changes are gathered into one frame per scope."""
    stats_interval: float = 5.0
    server_name: str = attrs.field(factory=_default_server_name)
    presence: PresenceSettings = attrs.field(factory=PresenceSettings)

    def __attrs_post_init__(self) -> None:
        for room in self.rooms:
            protocol.check_room(room)
        if self.send_queue_size < 1 or self.max_frame_bytes < MIN_FRAME_BYTES:
            raise ValueError(f"send_queue_size or max_frame_bytes too small: {self!r}")


class GatewayMetrics:
    """The gateway's Prometheus metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sessions = Gauge(
            "actors_gateway_sessions",
            "Open WebSocket sessions (welcomed, not yet ended).",
            registry=registry,
        )
        self.sessions_closed = Counter(
            "actors_gateway_sessions_closed",
            "Sessions ended, by close code.",
            ["code"],
            registry=registry,
        )
        self.frames_received = Counter(
            "actors_gateway_frames_received",
            "Client frames accepted, by type.",
            ["type"],
            registry=registry,
        )
        self.frames_refused = Counter(
            "actors_gateway_frames_refused",
            "Client frames refused with an error frame, by error code.",
            ["code"],
            registry=registry,
        )
        self.slow_sessions = Counter(
            "actors_gateway_slow_sessions",
            "Sessions closed because their send queue was full.",
            registry=registry,
        )
        self.handshakes_refused = Counter(
            "actors_gateway_handshakes_refused",
            "Connections refused before a session: bad origin, path, hello or token.",
            ["reason"],
            registry=registry,
        )


class Gateway:
    """One server process's sessions and rooms. Open it with ``open_gateway``."""

    def __init__(
        self,
        system: ActorSystem,
        pubsub: PubSub,
        chat: ChatService,
        presence: PresenceTracker,
        settings: GatewaySettings,
        tokens: TokenVerifier,
        demo_login: DemoLogin | None,
        registry: CollectorRegistry,
    ) -> None:
        self.system = system
        self.pubsub = pubsub
        self.chat = chat
        self.presence = presence
        self.settings = settings
        self.tokens = tokens
        """Verifies the token of each ``hello``."""
        self.demo_login = demo_login
        """Issues tokens at ``POST /token`` for any name; None: no ``/token`` (404)."""
        self.notifier = Notifier(pubsub)
        self.metrics = GatewayMetrics(registry)
        self.registry = registry
        self.sessions: set[Session] = set()
        self.metrics.sessions.set_function(lambda: len(self.sessions))
        self._hubs: KeyedChildren[str] | None = None
        self.presence_batcher = PresenceBatcher(settings.presence_interval)
        self.sessions_supervisor: Supervisor | None = None
        self._session_numbers = itertools.count(1)
        self._session_prefix = secrets.token_hex(4)

    @property
    def hubs(self) -> KeyedChildren[str]:
        """The room hubs of this process, by room."""
        assert self._hubs is not None, "the gateway is not open"
        return self._hubs

    def new_session_id(self) -> str:
        """A session id unique across processes (a random prefix per process)."""
        return f"s-{self._session_prefix}-{next(self._session_numbers)}"

    # --- fan-out to every session ---------------------------------------------------------

    def broadcast(self, frame: str) -> None:
        """Push one frame to every session of this process."""
        for session in list(self.sessions):
            session.push(frame)

    def _on_global_presence(self, change: PresenceChange) -> None:
        self.presence_batcher.add(change, self.broadcast)

    async def _on_broadcast(self, notification: Notification) -> None:
        self.broadcast(protocol.notification_frame(notification))
        await trio.lowlevel.checkpoint()  # as in RoomHub.on_message

    async def _on_update(self, update: LiveUpdate) -> None:
        self.broadcast(protocol.update_frame(self.pubsub.settings.codec.encode(update)))
        await trio.lowlevel.checkpoint()

    # --- sessions ------------------------------------------------------------------------

    async def serve_connection(
        self,
        connection: trio_websocket.WebSocketConnection,
        user_id: str,
        agent: str = "",
        notifications_since: Position | None = None,
        allowed_rooms: frozenset[str] | None = None,
    ) -> int:
        """Run a session for an authenticated connection until it ends; returns the close code.

        ``agent`` (the client's ``User-Agent``) goes into the connection's presence metadata;
        ``notifications_since`` is the position of the last notification a reconnecting client
        got (its ``hello`` says): what was sent since comes first. ``allowed_rooms`` are the
        rooms the user's token lets them join (None: any).
        """
        assert self.sessions_supervisor is not None
        session = Session(self, connection, user_id, agent, allowed_rooms)
        session.notifications_since = notifications_since
        ref = await self.sessions_supervisor.spawn(session)
        await ref.wait_stopped()
        return session.close_code or CLOSE_INTERNAL_ERROR

    async def session_started(self, session: Session) -> None:
        """Welcome a session: its user goes online, and gets their notifications from now on."""
        settings = self.settings
        session.push(
            protocol.encode(
                {
                    "type": "welcome",
                    "user_id": session.user_id,
                    "session_id": session.session_id,
                    "rooms": _suggested_rooms(settings.rooms, session.allowed_rooms),
                    "max_text_length": settings.max_text_length,
                    "max_frame_bytes": settings.max_frame_bytes,
                }
            )
        )
        try:
            session.notifications = await self.notifier.subscribe_user(
                session.user_id,
                session.on_notification,
                recover=True,
                since=session.notifications_since,
            )
            await self.presence.join(session.user_id, session.session_id, session.metadata)
            online = await self.presence.online_users()
        except ActorsError as error:
            logger.warning("%r could not start: %s", session, error)
            session.close(CLOSE_INTERNAL_ERROR, "the server could not start the session")
            return
        session.push(protocol.presence_state_frame(GLOBAL_SCOPE, online))
        # Only now: broadcasts (presence diffs included) follow the state, never precede it.
        self.sessions.add(session)

    async def session_ended(self, session: Session) -> None:
        """Leave the session's rooms and presence; close its notification subscription."""
        for room in list(session.rooms):
            try:
                await session.leave(room)
            except ActorsError as error:
                logger.warning("%r: leaving %r failed: %s", session, room, error)
        if session.notifications is not None:
            await session.notifications.close()
        try:
            await self.presence.leave(session.user_id, session.session_id)
        except ActorsError as error:
            logger.warning("%r: presence leave failed: %s", session, error)

    async def close_sessions(
        self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """Close every session (the first step of an orderly stop) and wait for them to end."""
        for session in list(self.sessions):
            session.close(code, reason)
        with trio.move_on_after(self.settings.close_timeout + 1):
            for session in list(self.sessions):
                await session.stopped.wait()

    # --- rooms ---------------------------------------------------------------------------

    async def attach(self, room: str, session: Session) -> Attached:
        """Put a session in a room's hub, starting the hub if needed; who is online there."""
        attached = await self.hubs.ask(room, Attach(session))
        assert isinstance(attached, Attached)
        return attached

    async def detach(self, room: str, session: Session, *, asked: bool = False) -> None:
        """Take a session out of a room's hub; ``asked``: the user left (no grace window)."""
        ref = self.hubs.get(room)
        if ref is not None:
            with suppress(ActorStoppedError):
                await ref.ask(Detach(session, asked))

    async def resync_room_presence(self, room: str) -> None:
        """Load a room's presence snapshot again, if the room has a hub here; its sessions get
        the whole state (what a gap does, on demand)."""
        ref = self.hubs.get(room)
        if ref is not None:
            await ref.ask(ResyncPresence())

    async def publish_typing(self, room: str, user_id: str) -> None:
        """Tell every server that ``user_id`` is typing in ``room`` (best effort, not stored)."""
        await self.pubsub.publish(
            typing_channel(room),
            TypingNotice(room=room, user_id=user_id),
            group="typing:*",
            sharded=TYPING_SHARDED,
        )

    # --- live updates --------------------------------------------------------------------

    async def stats(self) -> ServerStats:
        """This process's figures as a live update."""
        return ServerStats(
            server=self.settings.server_name,
            sessions=len(self.sessions),
            rooms=0 if self._hubs is None else len(self._hubs.keys()),
            users=len(await self.presence.online_users()),
            sent_at=time.time(),
        )


def _suggested_rooms(rooms: tuple[str, ...], allowed: frozenset[str] | None) -> list[str]:
    """The rooms a ``welcome`` suggests: the server's, or those of them the user's token
    allows, then the token's others (sorted)."""
    if allowed is None:
        return list(rooms)
    return [room for room in rooms if room in allowed] + sorted(allowed.difference(rooms))


async def _publish_stats(context: ActorContext, gateway: Gateway) -> None:
    """The stats actor: a ``ServerStats`` update every ``settings.stats_interval`` seconds."""
    while True:
        try:
            await publish_update(gateway.pubsub, await gateway.stats())
        except ActorsError as error:
            logger.warning("server stats not published: %s", error)
        await trio.sleep(gateway.settings.stats_interval)


@asynccontextmanager
async def open_gateway(
    system: ActorSystem,
    pubsub: PubSub,
    *,
    tokens: TokenVerifier,
    demo_login: DemoLogin | None = None,
    settings: GatewaySettings | None = None,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[Gateway]:
    """Run a gateway's rooms, presence and sessions for the duration of a block.

    Serve it with ``serve_gateway``. Leaving the block closes every session (1001) first.

    Args:
        system: The actor system everything runs in.
        pubsub: Where rooms, presence, notifications and updates travel (``memory://`` or Redis).
        tokens: Verifies the token each connection's ``hello`` carries.
        demo_login: Issues tokens for any name at ``POST /token`` (the demo's sign-in);
            None (the default): ``/token`` answers 404.
        settings: Limits and timings; the defaults are those of docs/protocol.md.
        registry: Where the gateway's metrics go; default: the PubSub's metrics' registry if it
            has metrics, else a new one.
    """
    settings = settings or GatewaySettings()
    if registry is None:
        registry = pubsub.metrics.registry if pubsub.metrics is not None else CollectorRegistry()
    async with AsyncExitStack() as stack:
        chat = await stack.enter_async_context(
            open_chat_service(
                system, pubsub, max_text_length=settings.max_text_length, rate=settings.chat_rate
            )
        )
        presence = await stack.enter_async_context(
            open_presence_tracker(pubsub, GLOBAL_SCOPE, settings=settings.presence)
        )
        gateway = Gateway(system, pubsub, chat, presence, settings, tokens, demo_login, registry)
        await presence.watch(gateway._on_global_presence)
        broadcasts = await gateway.notifier.subscribe_broadcast(gateway._on_broadcast)
        stack.push_async_callback(broadcasts.close)
        updates = UpdateDispatcher(pubsub)
        updates.on_any(gateway._on_update)
        await stack.enter_async_context(updates.open())
        spec = SupervisorSpec(
            children=[
                ChildSpec(id="stats", start=_publish_stats, args=(gateway,), shutdown=0),
                ChildSpec(
                    id="presence",
                    start=run_presence_batcher,
                    args=(gateway.presence_batcher,),
                    shutdown=0,
                ),
                ChildSpec(
                    id="hubs",
                    start=SupervisorSpec(
                        strategy=Strategy.SIMPLE_ONE_FOR_ONE,
                        children=[
                            ChildSpec(
                                id="hub",
                                start=run_room_hub,
                                args=(gateway,),
                                restart=Restart.TEMPORARY,
                            )
                        ],
                    ),
                ),
                ChildSpec(
                    id="sessions",
                    start=SupervisorSpec(
                        strategy=Strategy.SIMPLE_ONE_FOR_ONE,
                        children=[
                            ChildSpec(
                                id="session",
                                start=run_session,
                                restart=Restart.TEMPORARY,
                                shutdown=settings.close_timeout + 2,
                            )
                        ],
                    ),
                ),
            ]
        )
        async with open_supervisor(system, spec) as supervisor:
            gateway._hubs = KeyedChildren(Supervisor(supervisor.child("hubs")))
            gateway.sessions_supervisor = Supervisor(supervisor.child("sessions"))
            try:
                yield gateway
            finally:
                with trio.CancelScope(shield=True):
                    await gateway.close_sessions()
