"""The WebSocket protocol's frames (docs/protocol.md): client frames parsed and checked, server
frames built as JSON text.

Client frames are checked field by field against ``_SHAPES`` before anything acts on them: an
unknown type, a missing, extra or mistyped field is a ``ProtocolError`` with the code the
client gets in its ``error`` frame. Server frames are built once per event and the same text is
sent to every session that gets it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs
import orjson

from actors._errors import ActorsError, InvalidIdentifierError
from actors.messages import IDENTIFIER_RULE, check_room_name

if TYPE_CHECKING:
    from collections.abc import Iterable

    from actors.pubsub import Position
    from actors.server.chat import ChatMessage, RoomHistory
    from actors.server.notifications import Notification

__all__ = [
    "MAX_REF_LENGTH",
    "ClientFrame",
    "Hello",
    "HistoryRequest",
    "Join",
    "Leave",
    "Ping",
    "ProtocolError",
    "Say",
    "Typing",
    "check_room",
    "parse_client_frame",
]

MAX_REF_LENGTH: Final = 64
MAX_EPOCH_LENGTH: Final = 64
MAX_OFFSET: Final = 2**63 - 1


class ProtocolError(ActorsError):
    """A client frame the server refuses; ``code`` is the ``error`` frame's code."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


@attrs.frozen
class Hello:
    token: str
    notifications_epoch: str | None = None
    """With ``notifications_offset``: the position of the last notification the client got
    (a reconnect): what was sent since comes first."""
    notifications_offset: int | None = None


@attrs.frozen
class Join:
    room: str
    ref: str | None = None
    epoch: str | None = None
    """With ``offset``: the position of the last message the client has of the room (a
    reconnect): ``joined`` then brings exactly what came after it."""
    offset: int | None = None


@attrs.frozen
class Leave:
    room: str
    ref: str | None = None


@attrs.frozen
class Say:
    room: str
    text: str
    ref: str | None = None


@attrs.frozen
class Typing:
    room: str


@attrs.frozen
class HistoryRequest:
    room: str
    limit: int | None = None
    ref: str | None = None


@attrs.frozen
class Ping:
    ref: str | None = None


ClientFrame = Hello | Join | Leave | Say | Typing | HistoryRequest | Ping

# type -> (frame class, {field: (JSON type, required)})
_SHAPES: Final[dict[str, tuple[type[ClientFrame], dict[str, tuple[type, bool]]]]] = {
    "hello": (
        Hello,
        {
            "token": (str, True),
            "notifications_epoch": (str, False),
            "notifications_offset": (int, False),
        },
    ),
    "join": (
        Join,
        {"room": (str, True), "ref": (str, False), "epoch": (str, False), "offset": (int, False)},
    ),
    "leave": (Leave, {"room": (str, True), "ref": (str, False)}),
    "say": (Say, {"room": (str, True), "text": (str, True), "ref": (str, False)}),
    "typing": (Typing, {"room": (str, True)}),
    "history": (HistoryRequest, {"room": (str, True), "limit": (int, False), "ref": (str, False)}),
    "ping": (Ping, {"ref": (str, False)}),
}


RESERVED_ROOMS: Final = frozenset({"global"})
"""Names that are presence scopes of their own, so no room may take them."""


def check_room(room: str, ref: str | None = None) -> str:
    """Return ``room`` if it may name a room: 1 to 64 ASCII letters, digits, ``-_.``.

    Raises:
        ProtocolError: ``invalid_room`` otherwise, or for a reserved name (``global``).
    """
    if room in RESERVED_ROOMS:
        raise ProtocolError("invalid_room", f"{room!r} is reserved", ref)
    try:
        return check_room_name(room)
    except InvalidIdentifierError:
        raise ProtocolError("invalid_room", f"a room name is {IDENTIFIER_RULE}", ref) from None


def parse_client_frame(data: str | bytes) -> ClientFrame:
    """Parse and check one frame from a client.

    Raises:
        ProtocolError: ``bad_frame`` (binary, not JSON, not an object, fields missing, extra or
            of the wrong type), ``unknown_type`` or ``invalid_room``.
    """
    if not isinstance(data, str):
        raise ProtocolError("bad_frame", "frames are JSON text, not binary")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProtocolError("bad_frame", "the frame is not JSON") from None
    if not isinstance(document, dict):
        raise ProtocolError("bad_frame", "a frame is a JSON object")
    ref = document.get("ref")
    ref = ref if isinstance(ref, str) and len(ref) <= MAX_REF_LENGTH else None
    kind = document.pop("type", None)
    if not isinstance(kind, str):
        raise ProtocolError("bad_frame", "a frame needs a string field 'type'", ref)
    shape = _SHAPES.get(kind)
    if shape is None:
        raise ProtocolError("unknown_type", f"unknown frame type {kind[:32]!r}", ref)
    frame_class, fields = shape
    extra = sorted(set(document) - set(fields))
    if extra:
        raise ProtocolError("bad_frame", f"unknown fields in {kind!r}: {', '.join(extra)}", ref)
    for name, (expected, required) in fields.items():
        value = document.get(name)
        if value is None:
            if required:
                raise ProtocolError("bad_frame", f"{kind!r} needs the field {name!r}", ref)
            continue
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ProtocolError("bad_frame", f"{kind}.{name} must be a {_json_type(expected)}", ref)
    if "ref" in document and document["ref"] is not None and ref is None:
        raise ProtocolError("bad_frame", f"ref is longer than {MAX_REF_LENGTH} characters")
    if "room" in fields:
        check_room(document["room"], ref)
    for epoch, offset in (("epoch", "offset"), ("notifications_epoch", "notifications_offset")):
        if epoch in fields:
            _check_position(document.get(epoch), document.get(offset), kind, ref)
    return frame_class(**document)


def _check_position(epoch: str | None, offset: int | None, kind: str, ref: str | None) -> None:
    """A position in a history comes whole (epoch and offset) and well formed, or not at all."""
    if (epoch is None) != (offset is None):
        raise ProtocolError(
            "bad_frame", f"{kind!r} gives a position as an epoch and an offset", ref
        )
    if epoch is None or offset is None:
        return
    if not (0 < len(epoch) <= MAX_EPOCH_LENGTH and epoch.isascii() and epoch.isalnum()):
        raise ProtocolError(
            "bad_frame", f"an epoch is 1 to {MAX_EPOCH_LENGTH} letters or digits", ref
        )
    if not 0 <= offset <= MAX_OFFSET:
        raise ProtocolError("bad_frame", "an offset is a whole number from 0", ref)


def _json_type(expected: type) -> str:
    return {str: "string", int: "integer"}.get(expected, expected.__name__)


# --- server frames ---------------------------------------------------------------------------


def encode(frame: dict[str, object]) -> str:
    """One server frame as JSON text."""
    return orjson.dumps(frame).decode()


def chat_message(message: ChatMessage, position: Position | None) -> dict[str, object]:
    """A chat message as it appears in ``message``, ``joined`` and ``history`` frames: with
    its position in the room's history (``epoch`` and ``offset``) when it has one."""
    fields: dict[str, object] = {
        "room": message.room,
        "user_id": message.user_id,
        "text": message.text,
        "sent_at": message.sent_at,
    }
    return _placed(fields, position)


def _placed(fields: dict[str, object], position: Position | None) -> dict[str, object]:
    """``fields`` with the position (``epoch`` and ``offset``) of what they describe, if any."""
    if position is not None:
        fields["epoch"] = position.epoch
        fields["offset"] = position.offset
    return fields


def message_frame(message: ChatMessage, position: Position | None = None) -> str:
    return encode({"type": "message", **chat_message(message, position)})


def joined_frame(room: str, history: RoomHistory) -> str:
    """``joined``: the room's messages, and where they leave the client (``epoch`` and
    ``offset``: send them back on a reconnect). ``resumed``: they are exactly what came after
    the position the client gave (append them); otherwise they replace what it holds."""
    position = history.position
    return encode(
        {
            "type": "joined",
            "room": room,
            "history": [chat_message(m, p) for p, m in history.messages],
            "epoch": None if position is None else position.epoch,
            "offset": 0 if position is None else position.offset,
            "resumed": history.resumed,
        }
    )


def history_frame(room: str, messages: Iterable[tuple[Position, ChatMessage]]) -> str:
    """``history``: a room's newest messages, oldest first, with their positions."""
    return encode(
        {"type": "history", "room": room, "messages": [chat_message(m, p) for p, m in messages]}
    )


def presence_state_frame(scope: str, users: Iterable[str]) -> str:
    return encode({"type": "presence_state", "scope": scope, "users": sorted(users)})


def presence_diff_frame(scope: str, joined: Iterable[str], left: Iterable[str]) -> str:
    return encode(
        {"type": "presence_diff", "scope": scope, "joined": sorted(joined), "left": sorted(left)}
    )


def typing_frame(room: str, user_id: str) -> str:
    return encode({"type": "typing", "room": room, "user_id": user_id})


def error_frame(code: str, message: str, ref: str | None = None) -> str:
    return encode({"type": "error", "code": code, "message": message, "ref": ref})


def update_frame(event: bytes) -> str:
    """A live update, given as the codec's JSON of the update (with its own ``type``)."""
    return '{"type":"update","event":' + event.decode() + "}"


def notification_frame(notification: Notification, position: Position | None = None) -> str:
    """A notification, with its position in the user's history when it has one (send it back
    in ``hello`` on a reconnect to get what was sent meanwhile)."""
    fields: dict[str, object] = {
        "type": "notification",
        "id": notification.id,
        "user_id": notification.user_id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "sent_at": notification.sent_at,
    }
    return encode(_placed(fields, position))
