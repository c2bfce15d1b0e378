"""Every exception the project raises, in one place.

Errors are named by the state they report: closed by you (``ActorStoppedError``),
timed out (``AskTimeoutError``), crashed (``ActorCrashedError``, with the original exception
as ``__cause__``).
Where a trio exception already carries the meaning, ours inherits from it too, so code written
against trio's channels keeps working.
"""

from __future__ import annotations

import errno

import trio

__all__ = [
    "ActorCrashedError",
    "ActorShutdown",
    "ActorStartError",
    "ActorStoppedError",
    "ActorsError",
    "AddressInUseError",
    "AskTimeoutError",
    "ChildAlreadyExistsError",
    "ChildNotFoundError",
    "InvalidChannelNameError",
    "InvalidIdentifierError",
    "InvalidSpecError",
    "LinkedActorCrashedError",
    "MailboxFullError",
    "MailboxOverflowError",
    "MessageDecodeError",
    "NameTakenError",
    "RedisAuthenticationError",
    "RedisConfigurationError",
    "RedisConnectionError",
    "RedisConnectionLostError",
    "RedisError",
    "RedisHandshakeError",
    "RedisPermissionError",
    "RedisProtocolError",
    "RedisRedirectError",
    "RedisReplyError",
    "RedisTimeoutError",
    "RedisTlsError",
    "RedisUrlError",
    "RestartIntensityError",
    "SelfAskError",
    "SupervisorError",
]


class ActorsError(Exception):
    """Base class of every error raised by ``actors``."""


class ActorStoppedError(ActorsError, trio.ClosedResourceError):
    """The actor has stopped for good: it takes no more messages and answers no more asks."""


class AskTimeoutError(ActorsError, trio.TooSlowError):
    """An ask got no reply before its deadline."""


class SelfAskError(ActorsError):
    """An actor asked itself, which could only ever time out: it is busy running the ask."""


class ActorCrashedError(ActorsError):
    """The actor crashed while it held an ask; the original exception is the ``__cause__``."""


class MailboxFullError(ActorsError):
    """The mailbox is full and its overflow policy is to fail the sender."""


class MailboxOverflowError(ActorsError):
    """The actor was stopped because its mailbox overflowed (the ``stop`` overflow policy)."""


class NameTakenError(ActorsError, ValueError):
    """Another live actor in the same system already holds this name."""


class LinkedActorCrashedError(ActorsError):
    """A linked actor terminated abnormally, so this actor was crashed too."""


class ActorShutdown(ActorsError):
    """Raise inside an actor to end it with the ``shutdown`` exit reason.

    A transient child that ends this way is not restarted, exactly like OTP's ``{shutdown, Term}``.
    """

    def __init__(self, detail: object = None) -> None:
        super().__init__(detail)
        self.detail = detail


class SupervisorError(ActorsError):
    """Base class of the errors a supervisor reports."""


class InvalidSpecError(SupervisorError, ValueError):
    """A child specification or supervisor setting is invalid."""


class RestartIntensityError(SupervisorError):
    """A supervisor gave up: more restarts than ``max_restarts`` within ``within`` seconds."""


class ActorStartError(ActorsError):
    """An actor failed while starting (in ``__init__`` or ``started``); see ``__cause__``."""


class ChildNotFoundError(SupervisorError, LookupError):
    """No child with that id or ref exists under this supervisor."""


class ChildAlreadyExistsError(SupervisorError):
    """A child with that id is already running, or its spec is already present."""


class RedisError(ActorsError):
    """Base class of the errors the Redis client raises."""


class RedisConfigurationError(RedisError):
    """The connection cannot work as configured, so retrying cannot help.

    Raised for refused credentials, a setup command the server refuses (an ACL user without
    ``HELLO`` or ``SELECT``, a database number out of range), a TLS certificate or host name
    that does not verify, and a malformed or unsupported URL. The connection actor does not
    retry these: it stops, and the error reaches whoever waits for the connection.
    """


class RedisConnectionError(RedisError, trio.BrokenResourceError):
    """The connection to Redis could not be made, or broke; a retry may succeed."""


class RedisConnectionLostError(RedisConnectionError):
    """The connection broke while a command was pending: it may or may not have run."""


class RedisTimeoutError(RedisError, trio.TooSlowError):
    """Connecting, or an acknowledgement, took longer than its timeout.

    Attributes:
        seconds: The timeout that ran out, when the error knows it.
    """

    def __init__(self, message: str, *, seconds: float | None = None) -> None:
        super().__init__(message)
        self.seconds = seconds


class RedisProtocolError(RedisError):
    """The server sent bytes that are not valid RESP; the connection cannot be trusted."""


class RedisReplyError(RedisError):
    """The server answered a command with an error reply.

    Attributes:
        code: The error's first word, such as ``ERR``, ``WRONGTYPE`` or ``NOPERM``.
        message: The server's whole message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = message.split(" ", 1)[0] if message else "ERR"


class RedisPermissionError(RedisReplyError):
    """The ACL user may not run this command or touch this key or channel (``NOPERM``)."""


class RedisRedirectError(RedisReplyError):
    """A cluster node does not serve the command's slot and names the node that does.

    ``MOVED`` (``moved`` is True): the slot belongs to that node now; update the slot map and
    send the command there. ``ASK``: the slot is being migrated and this key is already at that
    node; send ``ASKING`` and the command there, once, without changing the map.

    Attributes:
        moved: True for ``MOVED``, False for ``ASK``.
        slot: The hash slot.
        host: The node's host; empty when the server does not know its own endpoint (then it is
            the host the command was sent to).
        port: The node's port.
    """

    def __init__(self, message: str, *, moved: bool, slot: int, host: str, port: int) -> None:
        super().__init__(message)
        self.moved = moved
        self.slot = slot
        self.host = host
        self.port = port


class RedisAuthenticationError(RedisReplyError, RedisConfigurationError):
    """Authentication failed (``WRONGPASS``, ``NOAUTH``); the server's message is kept, and
    the password never appears in it."""


class RedisHandshakeError(RedisReplyError, RedisConfigurationError):
    """The server refused a command that sets a connection up (``HELLO``, ``AUTH``, ``SELECT``,
    ``CLIENT SETNAME``), for example ``NOPERM`` or ``ERR DB index is out of range``.

    Attributes:
        command: The refused command's name, such as ``SELECT``.
    """

    def __init__(self, message: str, *, command: str) -> None:
        super().__init__(message)
        self.command = command

    def __str__(self) -> str:
        return f"Redis refused {self.command} while setting the connection up: {self.message}"


class RedisTlsError(RedisConfigurationError):
    """The TLS handshake failed for a reason a retry cannot heal: the server's certificate or
    host name did not verify, the server refused ours, or the TLS files could not be loaded."""


class RedisUrlError(RedisConfigurationError, ValueError):
    """A Redis or broker URL is malformed, has an unknown or invalid option, or an unsupported
    scheme."""


class MessageDecodeError(ActorsError, ValueError):
    """A received payload is not a valid message of the expected type.

    Raised for every kind of bad input: oversize, invalid UTF-8 or JSON, not an object,
    nested too deeply, a missing, unknown or wrong ``"type"`` tag, missing fields or wrong
    field types. The payload itself is not kept, so logging the error is safe.

    Attributes:
        reason: What is wrong, in a few words, such as ``missing type tag 'type'``.
        expected: The name of the type that was expected, such as ``user-online | user-offline``.
        errors: For invalid fields, cattrs' ``transform_error`` lines, such as
            ``expected a string, got a number @ $.user_id``; otherwise empty.
    """

    def __init__(self, reason: str, *, expected: str, errors: tuple[str, ...] = ()) -> None:
        detail = f"cannot decode {expected}: {reason}"
        if errors:
            detail += " (" + "; ".join(errors[:5]) + (", ..." if len(errors) > 5 else "") + ")"
        super().__init__(detail)
        self.reason = reason
        self.expected = expected
        self.errors = errors


class InvalidIdentifierError(ActorsError, ValueError):
    """A user id, room name or presence scope breaks its rule (see ``actors.messages``).

    Attributes:
        kind: What the name was meant to be: ``user id``, ``room name``, ``presence scope``.
        value: The name as given (only its first 64 characters appear in the message).
    """

    def __init__(self, kind: str, value: object, rule: str) -> None:
        shown = value[:64] if isinstance(value, str) else value
        super().__init__(f"invalid {kind} {shown!r}: {rule}")
        self.kind = kind
        self.value = value


class InvalidChannelNameError(ActorsError, ValueError):
    """A channel name, or a part of one built from user input, is not allowed.

    Attributes:
        value: The offending text.
        reason: Why it is refused.
    """

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid channel name part {value[:64]!r}: {reason}")
        self.value = value
        self.reason = reason


class AddressInUseError(ActorsError, OSError):
    """A server cannot listen: another socket already holds the address and port.

    An ``OSError`` with ``errno.EADDRINUSE``, so code that catches ``OSError`` goes on working,
    whose message names the address; the bind's own error is its ``__cause__``.

    Attributes:
        host: The address that was to be bound, as given.
        port: The port that was to be bound.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, "address already in use")
        self.host = host
        self.port = port

    def __str__(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"cannot listen on {shown}:{self.port}: {self.strerror}"
