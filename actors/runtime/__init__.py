"""The actor runtime: actors, refs, mailboxes, monitors, links and the actor system.

Nothing here knows about Redis or Pub/Sub. Owners of actors (supervisors) build on
``actors.runtime.lowlevel``.
"""

from __future__ import annotations

from actors._errors import (
    ActorCrashedError,
    ActorsError,
    ActorShutdown,
    ActorStartError,
    ActorStoppedError,
    AskTimeoutError,
    LinkedActorCrashedError,
    MailboxFullError,
    MailboxOverflowError,
    NameTakenError,
    SelfAskError,
)
from actors.runtime._actor import Actor, ActorFunction
from actors.runtime._ask import Ask
from actors.runtime._cell import DEFAULT_SHUTDOWN_GRACE, ActorState, ActorStatistics
from actors.runtime._collector import DEFAULT_GC_THRESHOLD, tune_garbage_collector
from actors.runtime._context import ActorContext
from actors.runtime._exit import (
    Crashed,
    Down,
    ExitReason,
    Killed,
    Normal,
    Shutdown,
    describe_exit,
    is_abnormal,
)
from actors.runtime._instrument import Instrument
from actors.runtime._mailbox import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAILBOX_CAPACITY,
    MailboxConfig,
    MailboxStatistics,
    Overflow,
)
from actors.runtime._ref import DEFAULT_ASK_TIMEOUT, ActorRef
from actors.runtime._system import ActorSystem, SystemStatistics, open_actor_system

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_GC_THRESHOLD",
    "DEFAULT_MAILBOX_CAPACITY",
    "DEFAULT_SHUTDOWN_GRACE",
    "Actor",
    "ActorContext",
    "ActorCrashedError",
    "ActorFunction",
    "ActorRef",
    "ActorShutdown",
    "ActorStartError",
    "ActorState",
    "ActorStatistics",
    "ActorStoppedError",
    "ActorSystem",
    "ActorsError",
    "Ask",
    "AskTimeoutError",
    "Crashed",
    "Down",
    "ExitReason",
    "Instrument",
    "Killed",
    "LinkedActorCrashedError",
    "MailboxConfig",
    "MailboxFullError",
    "MailboxOverflowError",
    "MailboxStatistics",
    "NameTakenError",
    "Normal",
    "Overflow",
    "SelfAskError",
    "Shutdown",
    "SystemStatistics",
    "describe_exit",
    "is_abnormal",
    "open_actor_system",
    "tune_garbage_collector",
]
