"""Where one session stands in each of its rooms' histories, so its client gets each message once.

A room's messages reach a session two ways: live, from the room's hub, and read from the room's
history when it joins (everything after the client's position on a reconnect, else the newest).
Both carry positions, so ``RoomFeeds`` lets a frame through only if it is past what the client
has, and holds the live frames that come while a join reads the history: they follow the
``joined`` frame, minus those it already held. The client so sees every message once, in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from actors.pubsub import Position

Frame = TypeVar("Frame")


class JoinBacklogFullError(Exception):
    """More live frames came during a join than a session holds: the client is too slow."""


class RoomFeeds(Generic[Frame]):
    """A session's position in each room, and the live frames held while it joins one.

    Args:
        backlog: The most live frames held for one room while its join reads the history.
    """

    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self._positions: dict[str, Position | None] = {}
        self._joining: dict[str, list[tuple[Position | None, Frame]]] = {}

    def position(self, room: str) -> Position | None:
        """The position of the last message the client got from ``room``."""
        return self._positions.get(room)

    def start_join(self, room: str) -> None:
        """A join begins: live frames are held until ``joined``."""
        self._joining[room] = []

    def live(self, room: str, position: Position | None, frame: Frame) -> list[Frame]:
        """A live message's frame: the frames to send now (none while joining, or for a
        message the client has).

        Raises:
            JoinBacklogFullError: More than ``backlog`` frames are held for the room.
        """
        held = self._joining.get(room)
        if held is not None:
            if len(held) >= self.backlog:
                raise JoinBacklogFullError(room)
            held.append((position, frame))
            return []
        return [frame] if self._advance(room, position) else []

    def joined(self, room: str, position: Position | None) -> list[Frame]:
        """The ``joined`` frame is out, leaving the client at ``position``: the held frames it
        did not include, to send now."""
        held = self._joining.pop(room, [])
        self._positions[room] = position
        return [frame for at, frame in held if self._advance(room, at)]

    def reset(self, room: str, position: Position | None) -> None:
        """The client was sent the room's history again, up to ``position``."""
        self._positions[room] = position

    def forget(self, room: str) -> None:
        """The session left the room."""
        self._positions.pop(room, None)
        self._joining.pop(room, None)

    def _advance(self, room: str, position: Position | None) -> bool:
        """Whether a message at ``position`` is new to the client; if so, it is there now."""
        if position is None:
            return True  # a message without a position cannot be placed: let it through
        current = self._positions.get(room)
        same_epoch = current is not None and current.epoch == position.epoch
        if same_epoch and current is not None and position.offset <= current.offset:
            return False
        self._positions[room] = position
        return True
