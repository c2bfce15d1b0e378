"""Instrument: hooks the runtime calls on life-cycle events, for metrics and tracing.

The runtime defines the hooks and calls them; observability (``MetricsInstrument``) and
applications implement them, so the runtime imports nothing above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.runtime._exit import ExitReason
    from actors.runtime._mailbox import Overflow
    from actors.runtime._ref import ActorRef


class Instrument:
    """Subclass and override the hooks you need; every hook defaults to doing nothing.

    Hooks run synchronously inside the runtime, so they must be quick and must not raise.
    Pass instruments to ``open_actor_system(instruments=[...])``.
    """

    def actor_started(self, ref: ActorRef) -> None:
        """An incarnation of ``ref`` finished starting (its ``started`` hook returned)."""

    def actor_crashed(self, ref: ActorRef, error: BaseException) -> None:
        """An incarnation of ``ref`` raised ``error``."""

    def actor_restarted(self, ref: ActorRef, reason: ExitReason, delay: float) -> None:
        """A supervisor will restart ``ref`` after ``delay`` seconds, because of ``reason``."""

    def actor_stopped(self, ref: ActorRef, reason: ExitReason) -> None:
        """``ref`` stopped for good."""

    def message_dropped(self, ref: ActorRef, message: object, policy: Overflow) -> None:
        """The overflow policy of ``ref``'s mailbox discarded or refused ``message``."""
