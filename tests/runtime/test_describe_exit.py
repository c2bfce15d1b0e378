"""One line per exit reason, as the demo's view and the observer page show it."""

from __future__ import annotations

import pytest

from actors.runtime import Crashed, ExitReason, Killed, Normal, Shutdown, describe_exit


@pytest.mark.parametrize(
    ("reason", "line"),
    [
        (Crashed(ValueError("x")), "crashed: ValueError('x')"),
        (Shutdown(), "shutdown"),
        (Shutdown("cancelled"), "shutdown: cancelled"),
        (Normal(), "normal"),
        (Killed(), "killed after its grace period"),
    ],
)
def test_each_reason_has_one_line(reason: ExitReason, line: str) -> None:
    assert describe_exit(reason) == line


def test_a_crash_is_written_as_the_caller_says() -> None:
    assert describe_exit(Crashed(KeyError("k")), lambda error: type(error).__name__) == (
        "crashed: KeyError"
    )
