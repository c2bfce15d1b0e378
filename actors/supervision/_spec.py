"""What a supervisor is told: child specs, strategies, restart types, backoff and intensity."""

from __future__ import annotations

import enum
import logging
import math
from typing import TYPE_CHECKING, ClassVar, Final

import attrs

from actors._errors import InvalidSpecError
from actors.runtime import MailboxConfig
from actors.runtime.lowlevel import behavior_for

if TYPE_CHECKING:
    import random
    from collections.abc import Iterable

    from actors.runtime import ExitReason
    from actors.runtime.lowlevel import ActorCell

DEFAULT_MAX_RESTARTS: Final = 3
DEFAULT_RESTART_WINDOW: Final = 5.0  # seconds


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them has to be restarted."""

    ONE_FOR_ONE = "one_for_one"
    """Only the child that ended."""
    ONE_FOR_ALL = "one_for_all"
    """Every child: the others are stopped in reverse start order, then all start again in order."""
    REST_FOR_ONE = "rest_for_one"
    """The child that ended and every child started after it."""
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"
    """Dynamic children, all made from one template spec with ``Supervisor.spawn(*args)``."""


class Restart(enum.Enum):
    """When a child is restarted after it ends on its own."""

    PERMANENT = "permanent"
    """Always."""
    TRANSIENT = "transient"
    """Only after an abnormal exit (crashed or killed), not after normal or shutdown."""
    TEMPORARY = "temporary"
    """Never; its spec is forgotten when it ends."""


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential backoff with jitter between restarts of one child.

    The n-th consecutive restart (counting from 0) waits
    ``min(initial * multiplier ** n, maximum)``, multiplied by a random factor in
    ``[1 - jitter, 1 + jitter]`` and capped at ``maximum`` again. A child that ran for at least
    ``reset_after`` seconds before it ended starts again from n = 0.

    Attributes:
        initial: Seconds before the first restart.
        multiplier: Growth factor per consecutive restart.
        maximum: The longest delay, in seconds.
        jitter: Relative spread of the random factor, from 0 (none) to 1.
        reset_after: Seconds of running that count as stable.
    """

    initial: float = attrs.field(default=0.1)
    multiplier: float = attrs.field(default=2.0)
    maximum: float = attrs.field(default=30.0)
    jitter: float = attrs.field(default=0.2)
    reset_after: float = attrs.field(default=30.0)

    def __attrs_post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0 or self.reset_after < 0:
            raise InvalidSpecError(f"backoff delays must not be negative: {self!r}")
        if self.multiplier < 1:
            raise InvalidSpecError(f"backoff multiplier must be at least 1: {self!r}")
        if not 0 <= self.jitter <= 1:
            raise InvalidSpecError(f"backoff jitter must be between 0 and 1: {self!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before restart number ``attempt`` (0-based) in a row."""
        delay = self._base(attempt)
        if self.jitter and delay > 0:
            delay *= 1 + rng.uniform(-self.jitter, self.jitter)
        return min(delay, self.maximum)

    def longest_delay(self, attempt: int) -> float:
        """The most ``delay(attempt)`` can be, whatever the jitter draws: for bounds."""
        return min(self._base(attempt) * (1 + self.jitter), self.maximum)

    def _base(self, attempt: int) -> float:
        try:
            raw = self.initial * self.multiplier**attempt
        except OverflowError:
            raw = math.inf
        return min(raw, self.maximum)


DEFAULT_BACKOFF: Final = Backoff()
NO_BACKOFF: Final = Backoff(initial=0.0, jitter=0.0)
"""Restart at once, as plain Erlang/OTP does."""


def _check_shutdown(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not value >= 0:
        raise InvalidSpecError(
            f"{attribute.name} must be a non-negative number of seconds: {value}"
        )


@attrs.frozen(kw_only=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    Attributes:
        id: Unique among the supervisor's children.
        start: An ``Actor`` subclass, an async function ``fn(context, *args)``, or a
            ``SupervisorSpec`` for a nested supervisor.
        args: Arguments for the class's constructor or the function, used on every (re)start.
        restart: When the child is restarted after it ends on its own.
        shutdown: Seconds the child gets to stop before it is cancelled: 0 cancels at once
            (OTP's brutal_kill), ``math.inf`` waits for ever. Default: 5 s for workers,
            ``math.inf`` for supervisors.
        backoff: Delay before each restart; ``NO_BACKOFF`` restarts at once.
        mailbox: The child's mailbox settings.
        name: A name to register the child under in the actor system.
        crash_log_level: How loudly a crash that the supervisor restarts is logged: ERROR
            (the default) with the traceback; below that (``logging.WARNING`` for a child whose
            failures are expected and healed by the restart, such as a lost connection) one
            line with the error and the restart delay, the traceback at DEBUG.
    """

    id: str = attrs.field()
    start: object
    args: tuple[object, ...] = ()
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = attrs.field(default=None, validator=_check_shutdown)
    backoff: Backoff = DEFAULT_BACKOFF
    mailbox: MailboxConfig = attrs.field(factory=MailboxConfig)
    name: str | None = None
    crash_log_level: int = logging.ERROR

    @id.validator
    def _check_id(self, _: object, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise InvalidSpecError(f"a child id must be a non-empty string: {value!r}")

    def __attrs_post_init__(self) -> None:
        try:
            behavior_for(self.start, self.args)
        except TypeError as error:
            raise InvalidSpecError(f"child {self.id!r}: {error}") from None

    @property
    def is_supervisor(self) -> bool:
        """Whether this child is itself a supervisor."""
        return isinstance(self.start, SupervisorSpec)


def _child_specs(children: Iterable[ChildSpec]) -> tuple[ChildSpec, ...]:
    return tuple(children)


@attrs.frozen(kw_only=True)
class SupervisorSpec:
    """A supervisor: its strategy, its children and its restart intensity.

    Spawn it with ``start_supervisor`` or ``open_supervisor``, or nest it as a child's ``start``.

    Attributes:
        strategy: Which children restart together.
        children: Started in order, stopped in reverse order. For ``SIMPLE_ONE_FOR_ONE``, exactly
            one spec: the template of every dynamic child.
        max_restarts: More restarts than this within ``within`` seconds make the supervisor stop
            all its children and fail with ``RestartIntensityError``.
        within: The restart-intensity window in seconds.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    children: tuple[ChildSpec, ...] = attrs.field(default=(), converter=_child_specs)
    max_restarts: int = attrs.field(default=DEFAULT_MAX_RESTARTS)
    within: float = attrs.field(default=DEFAULT_RESTART_WINDOW)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.strategy, Strategy):
            raise InvalidSpecError(f"unknown strategy: {self.strategy!r}")
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int):
            raise InvalidSpecError(f"max_restarts must be a whole number: {self.max_restarts!r}")
        if self.max_restarts < 0:
            raise InvalidSpecError(f"max_restarts must not be negative: {self.max_restarts}")
        if not 0 < self.within < math.inf:
            raise InvalidSpecError(f"within must be a positive finite period: {self.within}")
        ids = [child.id for child in self.children]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise InvalidSpecError(f"duplicate child ids: {duplicates}")
        if self.strategy is Strategy.SIMPLE_ONE_FOR_ONE and len(self.children) != 1:
            raise InvalidSpecError("simple_one_for_one needs exactly one child spec: the template")

    # The runtime's Behavior protocol: a SupervisorSpec can be spawned like any actor.
    graceful: ClassVar[bool] = True
    is_supervisor: ClassVar[bool] = True

    def describe(self) -> str:
        """A short name for logs, such as ``supervisor(one_for_one)``."""
        return f"supervisor({self.strategy.value})"

    async def run_actor(self, cell: ActorCell, previous: ExitReason | None) -> ExitReason:
        """Run one supervisor incarnation (the runtime's Behavior protocol)."""
        from actors.supervision._core import run_supervisor

        return await run_supervisor(self, cell)
