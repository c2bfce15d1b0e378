"""Health reports: named checks, each up, degraded or down, combined into one status.

The content of the checks (connection state, the server's view, subscriptions, ...) is
assembled by the layers that know it; this module only gives them the shapes and the rules.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any

import attrs

__all__ = ["HealthCheck", "HealthReport", "HealthStatus", "combine_checks", "worst_status"]


class HealthStatus(enum.Enum):
    """How well a component works, in increasing order of trouble."""

    UP = "up"
    """Works as it should."""
    DEGRADED = "degraded"
    """Works, but something needs an operator's attention (still serves traffic)."""
    DOWN = "down"
    """Does not work: take the instance out of rotation."""

    @property
    def http_status(self) -> int:
        """The HTTP status a health endpoint answers: 200 for up and degraded, 503 for down."""
        return 503 if self is HealthStatus.DOWN else 200


_SEVERITY = {HealthStatus.UP: 0, HealthStatus.DEGRADED: 1, HealthStatus.DOWN: 2}


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class HealthCheck:
    """The outcome of one check.

    Args:
        status: The check's verdict.
        detail: What an operator needs to see: counts, ages, states; values that JSON cannot
            hold directly are rendered (enums by value, times in ISO 8601, others by ``str``).
    """

    status: HealthStatus
    detail: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    @classmethod
    def up(cls, **detail: Any) -> HealthCheck:
        """A passing check with ``detail``."""
        return cls(HealthStatus.UP, detail)

    @classmethod
    def degraded(cls, **detail: Any) -> HealthCheck:
        """A degraded check with ``detail``."""
        return cls(HealthStatus.DEGRADED, detail)

    @classmethod
    def down(cls, **detail: Any) -> HealthCheck:
        """A failing check with ``detail``."""
        return cls(HealthStatus.DOWN, detail)


@attrs.frozen
class HealthReport:
    """The overall status and the checks it came from.

    Build one with ``combine_checks`` so that the status follows the checks.
    """

    status: HealthStatus
    checks: Mapping[str, HealthCheck] = attrs.field(factory=dict, converter=_frozen_mapping)

    @property
    def http_status(self) -> int:
        """200 for up and degraded, 503 for down."""
        return self.status.http_status

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data.

        Returns:
            ``{"status": ..., "checks": {name: {"status": ..., "detail": {...}}}}``.
        """
        return {
            "status": self.status.value,
            "checks": {
                name: {"status": check.status.value, "detail": _plain(check.detail)}
                for name, check in self.checks.items()
            },
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON, keys sorted so that equal reports render identically.

        Args:
            indent: Pretty-print with this indent; compact by default.

        Returns:
            The JSON text.
        """
        separators = (",", ":") if indent is None else None
        return json.dumps(
            self.to_dict(), sort_keys=True, indent=indent, separators=separators, allow_nan=False
        )


def worst_status(statuses: Iterable[HealthStatus]) -> HealthStatus:
    """Combine statuses: any down gives down, else any degraded gives degraded, else up.

    Args:
        statuses: The statuses to combine; none at all gives up.

    Returns:
        The most severe status.
    """
    return max(statuses, key=_SEVERITY.__getitem__, default=HealthStatus.UP)


def combine_checks(checks: Mapping[str, HealthCheck]) -> HealthReport:
    """A report whose status is the worst of ``checks``.

    Args:
        checks: Every check by name.

    Returns:
        The report.
    """
    return HealthReport(worst_status(check.status for check in checks.values()), checks)


def _plain(value: Any) -> Any:
    """``value`` with everything JSON cannot hold turned into something it can."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(item) for item in value), key=repr)
    if attrs.has(type(value)):
        return _plain(attrs.asdict(value, recurse=False))
    return str(value)
