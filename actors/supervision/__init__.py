"""Supervision trees with Erlang/OTP semantics, plus exponential backoff between restarts."""

from __future__ import annotations

from actors._errors import (
    ChildAlreadyExistsError,
    ChildNotFoundError,
    InvalidSpecError,
    RestartIntensityError,
    SupervisorError,
)
from actors.supervision._child import ChildStatus
from actors.supervision._handle import (
    ChildCounts,
    ChildInfo,
    Supervisor,
    SupervisorStatistics,
    open_supervisor,
    start_supervisor,
)
from actors.supervision._keyed import KeyedChildren
from actors.supervision._spec import (
    DEFAULT_BACKOFF,
    DEFAULT_MAX_RESTARTS,
    DEFAULT_RESTART_WINDOW,
    NO_BACKOFF,
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorSpec,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_RESTART_WINDOW",
    "NO_BACKOFF",
    "Backoff",
    "ChildAlreadyExistsError",
    "ChildCounts",
    "ChildInfo",
    "ChildNotFoundError",
    "ChildSpec",
    "ChildStatus",
    "InvalidSpecError",
    "KeyedChildren",
    "Restart",
    "RestartIntensityError",
    "Strategy",
    "Supervisor",
    "SupervisorError",
    "SupervisorSpec",
    "SupervisorStatistics",
    "open_supervisor",
    "start_supervisor",
]
