"""One connection to Redis: a writer that pipelines, a reader that batches, replies matched FIFO."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias

import hiredis
import trio

from actors._errors import (
    RedisConnectionError,
    RedisConnectionLostError,
    RedisError,
    RedisProtocolError,
    RedisReplyError,
    RedisTimeoutError,
)
from actors.redis._commands import RedisCommands
from actors.redis._config import RedisSettings
from actors.redis._handshake import handshake
from actors.redis._replies import DeadlineWatch, ReplySlot
from actors.redis._resp import MAX_FEED_SIZE, Argument, Frame, RespParser, encode_command
from actors.redis._statistics import RedisConnectionState, RedisConnectionStatistics
from actors.redis._transport import Connector, Transport, open_transport, tls_failure

__all__ = [
    "PushBatchHandler",
    "PushHandler",
    "RedisConnection",
    "RedisConnectionState",
    "RedisConnectionStatistics",
    "open_redis_connection",
]

logger = logging.getLogger(__name__)

# Bytes read per wake-up before the reader yields, at most. The reader reads what is waiting:
# it yields after the first read that does not fill its buffer, so at ordinary rates it routes
# one read's messages and lets their actors run, and only a backlog (reads that keep coming
# back full) is read on, up to this budget. Under a flood, a bigger budget means each
# subscriber actor wakes once for more messages: 4 MiB measured well above 1 MiB on the fan-in
# benchmark, 8 MiB well above 4 (docs/performance.md); the price is that under a flood other
# tasks wait for one budget's routing (tens of milliseconds).
READ_BUDGET: Final = 8 * 1024 * 1024
RECEIVE_SIZE: Final = MAX_FEED_SIZE  # bytes asked for per read

PushHandler: TypeAlias = Callable[[list[Any]], object]
PushBatchHandler: TypeAlias = Callable[[list[list[Any]]], object]
"""Called synchronously by the reader with each push frame; it must not block."""

ErrorHandler: TypeAlias = Callable[[RedisReplyError], object]
"""Called synchronously by the reader when Redis refuses a subscription command."""

_PushNotification: Final = hiredis.PushNotification
_ONLY_PUSHES: Final = {_PushNotification}


# ECHO, not PING: a server loading its data set (after a restart with persistence) answers PING
# with -LOADING but runs ECHO, as it runs SUBSCRIBE; a fence refused for its own sake would be
# taken for the subscription command's refusal and leave every later reply one command behind.
_FENCE: Final = encode_command(b"ECHO", b"fence")
_ASKING: Final = encode_command(b"ASKING")


class RedisConnection(RedisCommands):
    """A connection to one Redis server, shared by any number of tasks.

    Get one from ``open_redis_connection``. ``execute`` may be called concurrently: commands queued
    while the writer is busy go out together in one socket write (automatic pipelining) and replies
    are matched to callers in order. Push frames (RESP3 ``>`` frames, such as pub/sub messages and
    subscription acknowledgements) go to the push handler, called synchronously by the reader.

    Nothing is ever retried: when the connection breaks, every pending command fails with
    ``RedisConnectionLostError``, the connection closes, and ``wait_closed`` returns the cause.
    """

    def __init__(
        self,
        transport: Transport,
        settings: RedisSettings,
        push_handler: PushHandler | None,
        nursery: trio.Nursery,
        push_batch_handler: PushBatchHandler | None = None,
    ) -> None:
        self._transport = transport
        self._settings = settings
        self._push_handler = push_handler
        self._push_batch_handler = push_batch_handler
        # The tasks get a scope of their own: the nursery's scope also covers the caller's
        # ``async with`` body, which a broken connection must not cancel.
        self._cancel_scope = trio.CancelScope()
        self._parser = RespParser()
        self._state = RedisConnectionState.CONNECTING
        self._protocol: int = settings.protocol
        self._subscriber_mode = False
        self._server_info: dict[str, Any] = {}
        self._pending: deque[ReplySlot] = deque()
        self._deadlines = DeadlineWatch(settings.describe())
        self._outgoing: list[bytes] = []
        self._outgoing_commands = 0
        self._write_wanted = trio.Event()
        self._closed_event = trio.Event()
        self._close_cause: BaseException | None = None
        self._commands_sent = 0
        self._writes = 0
        self._writes_coalesced = 0
        self._bytes_written = 0
        self._bytes_read = 0
        self._frames_read = 0
        self._pushes_received = 0
        self._replies_discarded = 0
        nursery.start_soon(self._run, name=f"redis connection {settings.describe()}")

    # -- public ---------------------------------------------------------------------------------

    @property
    def settings(self) -> RedisSettings:
        """The settings this connection was opened with."""
        return self._settings

    @property
    def protocol(self) -> int:
        """The RESP version in use: 3, or 2 when asked for or when the server needs it."""
        return self._protocol

    @property
    def server_info(self) -> dict[str, Any]:
        """What the server said about itself in its HELLO reply (empty in RESP2 mode)."""
        return dict(self._server_info)

    @property
    def closed(self) -> bool:
        """Whether the connection is closed, by its owner or by a failure."""
        return self._state is RedisConnectionState.CLOSED

    @property
    def close_cause(self) -> BaseException | None:
        """Why the connection broke, or ``None`` while open or when closed by its owner."""
        return self._close_cause

    async def wait_closed(self) -> BaseException | None:
        """Wait until the connection is closed.

        Returns:
            The cause of a failure, or ``None`` when the owner closed it.
        """
        await self._closed_event.wait()
        return self._close_cause

    async def execute(self, *args: Argument, deadline: float = math.inf) -> Any:
        """Send one command and return its reply.

        Safe to call from many tasks at once; see the class docstring for pipelining. If the
        caller is cancelled while waiting, the command may still run: its reply is read and
        discarded, so later replies stay matched to their commands.

        Subscription commands (SUBSCRIBE and friends) get no ordinary reply in RESP3: their
        acknowledgements are push frames. Send them with ``send_subscription_command``.

        Args:
            *args: The command name and its arguments.
            deadline: When (trio's clock) to stop waiting for the reply, as ``move_on_at``
                would, but without a cancel scope per command: the connection's deadline watch
                fails the command at that time. ``math.inf`` (the default) waits as long as the
                connection lives.

        Returns:
            The reply, as parsed by ``RespParser`` (bytes, int, list, dict, ...).

        Raises:
            RedisReplyError: The server answered with an error; a subclass for some codes
                (``RedisPermissionError``, ``RedisAuthenticationError``).
            RedisConnectionLostError: The connection broke before the reply came; the command
                may or may not have run.
            RedisConnectionError: The connection was already closed.
            RedisTimeoutError: No reply by ``deadline``: the command may or may not have run,
                and its reply is discarded when it comes. A deadline that has passed already
                fails the command at once, in the same way.
            RedisError: The connection is a RESP2 subscriber connection, which takes only
                subscription commands.
        """
        # A caller cancelled on entry sends nothing.
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._state is RedisConnectionState.CLOSED:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        if self._subscriber_mode:
            await trio.lowlevel.checkpoint()
            raise RedisError(
                "this RESP2 connection is in subscriber mode: it takes only subscription commands"
            )
        self._deadlines.watch(deadline)  # a comparison, unless it is the earliest deadline
        waiter = ReplySlot(deadline=deadline)
        self._queue(encode_command(*args))
        self._pending.append(waiter)
        # ``waiter.wait()`` written out: one coroutine fewer per command.
        waiter.task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(waiter.aborted)
        reply = waiter.reply
        if isinstance(reply, RedisError):
            raise reply
        return reply

    # ``execute`` is the hot path of every publish and command: its body stays inline rather
    # than shared with ``execute_asking`` through a helper coroutine, whose extra frame costs
    # about 4 % of publish throughput (bench_publish, measured 2026-12-05).
    async def execute_asking(self, *args: Argument) -> Any:
        """Send ``ASKING`` and one command in the same write, and return the command's reply.

        What a cluster node's ``ASK`` redirection asks for: the node importing a slot serves a
        command of that slot only right after ``ASKING`` on the same connection. Both go out
        together, so no other task's command can come between them.

        Raises:
            As ``execute``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._state is RedisConnectionState.CLOSED:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        if self._subscriber_mode:
            await trio.lowlevel.checkpoint()
            raise RedisError("this RESP2 connection is in subscriber mode")
        asking = ReplySlot()
        asking.abandoned = True  # its OK is not wanted; a refusal shows in the command's reply
        waiter = ReplySlot()
        self._queue(_ASKING + encode_command(*args))
        self._pending.append(asking)
        self._pending.append(waiter)
        reply = await waiter.wait()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def send_subscription_command(
        self, *args: Argument, on_error: ErrorHandler | None = None
    ) -> None:
        """Queue a command whose answers come back as push frames, without waiting for a reply.

        Use it for SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBE counterparts: their
        acknowledgements arrive at the push handler. In RESP2 mode the connection becomes a
        subscriber connection for the rest of its life: from then on every frame that no earlier
        command is waiting for goes to the push handler, and ``execute`` is refused.

        Args:
            *args: The command name and its arguments.
            on_error: Called by the reader if Redis refuses the command (for example
                ``RedisPermissionError`` for a channel the ACL user may not use). Without it,
                a refusal is logged. RESP3 only: in RESP2 a refusal reaches the push handler.

        Raises:
            RedisConnectionError: The connection is closed.
        """
        if self._state is RedisConnectionState.CLOSED:
            raise self._closed_error()
        data = encode_command(*args)
        if self._protocol == 2:
            self._subscriber_mode = True
            self._queue(data)
            return
        # In RESP3 a subscription command that succeeds gets only push frames, but one that is
        # refused (NOPERM) gets an ordinary error reply, which must not be taken for the reply
        # of the next command. An ECHO right behind it fences the reply stream: error replies
        # that arrive before its echo belong to the subscription command.
        self._queue(data + _FENCE)
        self._pending.append(ReplySlot(on_error or _log_refusal))

    def statistics(self) -> RedisConnectionStatistics:
        """Return a snapshot of the connection's counters."""
        return RedisConnectionStatistics(
            state=self._state,
            protocol=self._protocol,
            pending_commands=len(self._pending),
            commands_sent=self._commands_sent,
            writes=self._writes,
            writes_coalesced=self._writes_coalesced,
            bytes_written=self._bytes_written,
            bytes_read=self._bytes_read,
            frames_read=self._frames_read,
            pushes_received=self._pushes_received,
            replies_discarded=self._replies_discarded,
        )

    async def aclose(self) -> None:
        """Close the connection; pending commands fail with ``RedisConnectionLostError``.

        Idempotent, and a checkpoint.
        """
        self._close(None)
        await trio.aclose_forcefully(self._transport.stream)

    # -- internals ------------------------------------------------------------------------------

    def _opened(self, protocol: int, server_info: dict[str, Any]) -> None:
        self._protocol = protocol
        self._server_info = server_info
        if self._state is RedisConnectionState.CONNECTING:
            self._state = RedisConnectionState.OPEN

    def _closed_error(self) -> RedisConnectionError:
        cause = self._close_cause
        if cause is None:
            error = RedisConnectionError(f"the connection to {self._settings.describe()} is closed")
        else:
            error = RedisConnectionError(
                f"the connection to {self._settings.describe()} was lost: {cause}"
            )
        error.__cause__ = cause
        return error

    def _queue(self, data: bytes) -> None:
        self._outgoing.append(data)
        self._outgoing_commands += 1
        self._commands_sent += 1
        self._write_wanted.set()

    def _close(self, cause: BaseException | None) -> None:
        """Close at once: fail pending commands, stop both tasks, close the socket."""
        if self._state is RedisConnectionState.CLOSED:
            return
        self._state = RedisConnectionState.CLOSED
        self._close_cause = cause
        if cause is not None:
            logger.warning("Redis connection to %s lost: %s", self._settings.describe(), cause)
        else:
            logger.debug("Redis connection to %s closed", self._settings.describe())
        reason = "was closed" if cause is None else f"was lost ({cause})"
        pending = list(self._pending)
        self._pending.clear()  # the same deque: the deadline watch holds it
        for waiter in pending:
            if waiter.abandoned:
                continue
            error = RedisConnectionLostError(
                f"the connection to {self._settings.describe()} {reason} while the command "
                "was pending; it may or may not have run"
            )
            error.__cause__ = cause
            waiter.fill(error)
        self._outgoing.clear()
        self._outgoing_commands = 0
        self._cancel_scope.cancel()
        stream = self._transport.stream
        if isinstance(stream, trio.SocketStream):
            # Close through trio, at once, so that a task blocked on this socket is woken.
            stream.socket.close()
        self._closed_event.set()

    async def _run(self) -> None:
        with self._cancel_scope:
            async with trio.open_nursery() as nursery:
                description = self._settings.describe()
                nursery.start_soon(self._write_loop, name=f"redis writer {description}")
                nursery.start_soon(self._read_loop, name=f"redis reader {description}")
                nursery.start_soon(
                    self._deadlines.run, self._pending, name=f"redis deadlines {description}"
                )

    async def _write_loop(self) -> None:
        stream = self._transport.stream
        try:
            while True:
                await self._write_wanted.wait()
                self._write_wanted = trio.Event()
                chunks = self._outgoing
                commands = self._outgoing_commands
                if not chunks:
                    continue
                self._outgoing = []
                self._outgoing_commands = 0
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                await stream.send_all(data)
                self._writes += 1
                if commands > 1:
                    self._writes_coalesced += 1
                self._bytes_written += len(data)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._close(_lost(f"writing to the server failed: {exc!r}", exc))

    async def _read_loop(self) -> None:
        try:
            if self._transport.raw_socket is not None:
                await self._read_socket()
            else:
                await self._read_stream()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._close(_lost(f"reading from the server failed: {exc!r}", exc))
        except RedisProtocolError as exc:
            self._close(exc)
        except Exception as exc:
            # A bug in the push handler: the frames after it can no longer be trusted.
            logger.exception("Redis reader for %s crashed", self._settings.describe())
            self._close(exc)

    async def _read_socket(self) -> None:
        raw = self._transport.raw_socket
        assert raw is not None
        buffer = bytearray(RECEIVE_SIZE)
        view = memoryview(buffer)
        while self._state is not RedisConnectionState.CLOSED:
            await trio.lowlevel.wait_readable(raw)
            budget = READ_BUDGET
            backlog = False
            while budget > 0:
                try:
                    count = raw.recv_into(buffer)
                except BlockingIOError:
                    break
                if count == 0:
                    self._close(RedisConnectionLostError("the server closed the connection"))
                    return
                self._bytes_read += count
                self._dispatch(self._parser.feed(view[:count]))
                if count < RECEIVE_SIZE and not backlog:
                    # A short first read took all that was waiting: yield now, so that the
                    # actors it fed run before the reader goes after what arrived meanwhile
                    # (the latency of a steady stream).
                    break
                # A full read: more was waiting than one buffer holds, a backlog. Read on
                # while the server keeps sending, up to the budget, so that each actor wakes
                # once for many messages (the throughput of a flood).
                backlog = True
                budget -= count

    async def _read_stream(self) -> None:
        stream = self._transport.stream
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                self._close(RedisConnectionLostError("the server closed the connection"))
                return
            self._bytes_read += len(data)
            self._dispatch(self._parser.feed(data))

    def _dispatch(self, frames: list[Frame]) -> None:
        self._frames_read += len(frames)
        batch = self._push_batch_handler
        if (
            batch is not None
            and not self._pending
            and frames
            and set(map(type, frames)) == _ONLY_PUSHES
        ):
            # A flood of pushes with no command waiting: the whole read goes on as it is.
            self._pushes_received += len(frames)
            batch(frames)  # type: ignore[arg-type]
            return
        # Looked up once per read, not once per frame: under a flood this loop is the reader.
        push = self._push_handler or _ignore_push
        pushes: list[list[Any]] = []
        subscriber_mode = self._subscriber_mode
        for frame in frames:
            if type(frame) is _PushNotification or (subscriber_mode and not self._pending):
                if isinstance(frame, RedisReplyError):
                    # RESP2 subscriber mode: a refused subscription command answers with an
                    # error reply, which no waiter owns and which is no push frame.
                    _log_refusal(frame)
                    continue
                if batch is not None:
                    pushes.append(frame)  # type: ignore[arg-type]
                    continue
                self._pushes_received += 1
                push(frame)  # type: ignore[arg-type]
                continue
            if pushes:  # a reply after pushes: the pushes are handled first, in order
                self._pushes_received += len(pushes)
                assert batch is not None
                batch(pushes)
                pushes = []
            if (
                self._pending
                and self._pending[0].on_error is not None
                and isinstance(frame, RedisReplyError)
            ):
                self._pending[0].on_error(frame)  # a refused subscription command
                continue
            try:
                waiter = self._pending.popleft()
            except IndexError:
                raise RedisProtocolError(
                    f"the server sent a reply no command was waiting for: {frame!r:.200}"
                ) from None
            if waiter.abandoned:
                self._replies_discarded += 1
                continue
            waiter.fill(frame)
        if pushes:
            self._pushes_received += len(pushes)
            assert batch is not None
            batch(pushes)


def _lost(reason: str, cause: BaseException) -> RedisConnectionLostError:
    error = RedisConnectionLostError(reason)
    error.__cause__ = cause  # kept for tls_failure, which looks for an ssl.SSLError in it
    return error


def _ignore_push(frame: list[Any]) -> None:
    """Push frames with no handler are counted and dropped."""


def _log_refusal(error: RedisReplyError) -> None:
    logger.error("Redis refused a subscription command: %s", error)


async def _handshake(
    connection: RedisConnection, settings: RedisSettings
) -> tuple[int, dict[str, Any]]:
    try:
        return await handshake(connection, settings)
    except RedisConnectionError as error:
        # With TLS 1.3 the server checks our certificate after the handshake has completed on
        # our side, so its refusal arrives as the connection breaking during HELLO.
        fatal = tls_failure(error, settings) if settings.tls else None
        if fatal is not None:
            raise fatal from error
        raise


@asynccontextmanager
async def open_redis_connection(
    settings_or_url: RedisSettings | str,
    *,
    push_handler: PushHandler | None = None,
    push_batch_handler: PushBatchHandler | None = None,
    connector: Connector = open_transport,
) -> AsyncIterator[RedisConnection]:
    """Connect to Redis, handshake, and close the connection on exit.

    Connecting, the TLS handshake, HELLO/AUTH/SETNAME and SELECT must all finish within
    ``settings.connect_timeout``. A connection failure later on does not raise out of the
    ``async with`` body: it closes the connection, fails the pending commands, and is reported by
    ``closed``, ``close_cause`` and ``wait_closed()``.

    Args:
        settings_or_url: Settings, or a URL for ``RedisSettings.from_url``.
        push_handler: Called synchronously by the reader with each push frame (a list such as
            ``[b"message", channel, payload]``). It must never block or await; hand work to other
            tasks with ``send_nowait``. Without one, push frames are counted and dropped.
        push_batch_handler: Instead of ``push_handler``: called with the push frames of one
            read together, in order (a reply that follows pushes is handled after them). For
            routers under a flood: one call per read instead of one per frame.
        connector: Opens the byte stream; ``open_transport`` (TCP, TLS or a Unix socket) by
            default. Tests pass an in-memory server's ``connect``.

    Yields:
        The open connection.

    Raises:
        ValueError: The URL is invalid.
        RedisTimeoutError: The connection was not ready within ``connect_timeout``.
        RedisConnectionError: The server could not be reached, or the connection broke during
            the handshake: a retry may succeed.
        RedisAuthenticationError: The server refused the credentials.
        RedisHandshakeError: The server refused another setup command (``SELECT``, ...).
        RedisTlsError: A certificate did not verify, or the TLS files could not be loaded.
        RedisReplyError: The server refused a setup command for now (``LOADING``, ...).

    ``RedisAuthenticationError``, ``RedisHandshakeError`` and ``RedisTlsError`` are
    ``RedisConfigurationError``: retrying cannot help.
    """
    if isinstance(settings_or_url, str):
        settings = RedisSettings.from_url(settings_or_url)
    else:
        settings = settings_or_url
    deadline = trio.current_time() + settings.connect_timeout
    with trio.move_on_at(deadline) as connect_scope:
        transport = await connector(settings)
    if connect_scope.cancelled_caught:
        raise RedisTimeoutError(
            f"connecting to {settings.describe()} timed out after {settings.connect_timeout} s",
            seconds=settings.connect_timeout,
        )
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            connection = RedisConnection(
                transport, settings, push_handler, nursery, push_batch_handler
            )
            try:
                with trio.move_on_at(deadline) as handshake_scope:
                    protocol, server_info = await _handshake(connection, settings)
                if handshake_scope.cancelled_caught:
                    raise RedisTimeoutError(
                        f"the handshake with {settings.describe()} timed out after "
                        f"{settings.connect_timeout} s",
                        seconds=settings.connect_timeout,
                    )
                connection._opened(protocol, server_info)
                logger.debug("connected to %s (RESP%d)", settings.describe(), connection.protocol)
                yield connection
            finally:
                await connection.aclose()
    except BaseExceptionGroup as group:
        # The reader and writer never raise, so apart from Cancelled the group holds at most the
        # exception of the ``async with`` body or of the handshake: re-raise that one as it is.
        _, rest = group.split(trio.Cancelled)
        if rest is None or len(rest.exceptions) != 1:
            raise
        error = rest.exceptions[0]
    if error is not None:
        raise error
