"""Health reports: combining checks and rendering them as JSON."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta

import pytest

from actors.observability import (
    HealthCheck,
    HealthReport,
    HealthStatus,
    combine_checks,
    worst_status,
)

UP, DEGRADED, DOWN = HealthStatus.UP, HealthStatus.DEGRADED, HealthStatus.DOWN


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], UP),
        ([UP, UP], UP),
        ([UP, DEGRADED, UP], DEGRADED),
        ([DEGRADED, DOWN, UP], DOWN),
        ([DOWN], DOWN),
    ],
)
def test_any_down_is_down_and_any_degraded_is_degraded(
    statuses: list[HealthStatus], expected: HealthStatus
) -> None:
    assert worst_status(statuses) is expected
    checks = {f"check{index}": HealthCheck(status) for index, status in enumerate(statuses)}
    assert combine_checks(checks).status is expected


def test_down_answers_503_and_the_others_200() -> None:
    assert [status.http_status for status in (UP, DEGRADED, DOWN)] == [200, 200, 503]
    assert combine_checks({"redis": HealthCheck.down()}).http_status == 503


def test_json_is_deterministic_whatever_the_insertion_order() -> None:
    first = combine_checks(
        {"redis": HealthCheck.up(channels=3, patterns=1), "mailboxes": HealthCheck.degraded(b=1)}
    )
    second = combine_checks(
        {"mailboxes": HealthCheck.degraded(b=1), "redis": HealthCheck.up(patterns=1, channels=3)}
    )
    assert first.to_json() == second.to_json()
    assert first.to_json() == (
        '{"checks":{"mailboxes":{"detail":{"b":1},"status":"degraded"},'
        '"redis":{"detail":{"channels":3,"patterns":1},"status":"up"}},"status":"degraded"}'
    )


def test_details_json_cannot_hold_are_rendered() -> None:
    class State(enum.Enum):
        CONNECTED = "connected"

    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    check = HealthCheck.up(
        state=State.CONNECTED,
        since=when,
        age=timedelta(seconds=1.5),
        channel=b"user:\xff",
        names={"b", "a"},
        ratio=float("inf"),
        nested={"probe_age": None, "counts": (1, 2)},
        other=object,
    )
    detail = json.loads(HealthReport(UP, {"connection": check}).to_json())["checks"]["connection"][
        "detail"
    ]
    assert detail["state"] == "connected"
    assert detail["since"] == "2025-01-02T03:04:05+00:00"
    assert detail["age"] == 1.5
    assert detail["channel"] == "user:\\xff"
    assert detail["names"] == ["a", "b"]
    assert detail["ratio"] == "inf"
    assert detail["nested"] == {"probe_age": None, "counts": [1, 2]}
    assert detail["other"] == "<class 'object'>"


def test_a_report_cannot_be_changed_through_the_mappings_it_was_given() -> None:
    detail = {"drops": 1}
    checks = {"mailboxes": HealthCheck(DEGRADED, detail)}
    report = combine_checks(checks)
    detail["drops"] = 2
    checks["redis"] = HealthCheck.down()
    assert report.checks["mailboxes"].detail == {"drops": 1}
    assert list(report.checks) == ["mailboxes"]
    assert report.status is DEGRADED
