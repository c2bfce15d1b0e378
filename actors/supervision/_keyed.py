"""``KeyedChildren``: one child per key under a simple_one_for_one supervisor, started on demand.

For actors such as a room per room name: the first request for a key spawns its child (with the
key as the extra start argument), later requests go to the same child while it lives, and a
child that stopped by itself (idle, its last user gone) is forgotten so that the next request
spawns a fresh one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Generic, TypeVar

import trio

from actors._errors import ActorStoppedError

if TYPE_CHECKING:
    from actors.runtime import ActorRef
    from actors.supervision._handle import Supervisor

__all__ = ["KeyedChildren"]

K = TypeVar("K")
DEFAULT_ATTEMPTS: Final = 3


class KeyedChildren(Generic[K]):
    """The children of a simple_one_for_one supervisor, one per key.

    Args:
        supervisor: The supervisor; each child is ``spawn(key)``-ed, so its template's start
            function gets the key after the template's own arguments.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._children: dict[K, ActorRef] = {}
        self._lock = trio.Lock()

    def __contains__(self, key: object) -> bool:
        return key in self._children

    def keys(self) -> set[K]:
        """Keys whose child was started and not yet seen stopped."""
        return set(self._children)

    def get(self, key: K) -> ActorRef | None:
        """The key's child, if one was started (it may have stopped since)."""
        return self._children.get(key)

    def forget(self, key: K, ref: ActorRef) -> None:
        """Drop ``ref`` as the key's child (a child stopping calls this); a newer one stays."""
        if self._children.get(key) is ref:
            del self._children[key]

    async def child(self, key: K) -> ActorRef:
        """The key's live child, spawned if there is none."""
        ref = self._children.get(key)
        if ref is not None and ref.alive:
            return ref
        async with self._lock:  # two first requests for a key spawn one child
            ref = self._children.get(key)
            if ref is None or not ref.alive:
                ref = await self.supervisor.spawn(key)
                self._children[key] = ref
            return ref

    async def ask(self, key: K, message: object, *, attempts: int = DEFAULT_ATTEMPTS) -> object:
        """Ask the key's child, spawning it if needed.

        A child that stops just as the request arrives (idle, or its last user gone) is
        replaced and asked again, up to ``attempts`` times.

        Raises:
            ActorStoppedError: The key's child stopped ``attempts`` times in a row.
        """
        for _ in range(attempts):
            ref = await self.child(key)
            try:
                return await ref.ask(message)
            except ActorStoppedError:
                self.forget(key, ref)
        raise ActorStoppedError(f"the child for {key!r} kept stopping")
