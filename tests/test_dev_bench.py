"""``python3 scripts/dev.py bench all``: the table and the JSON lines, from sample last lines.

No benchmark runs here: the runs are ``dev.BenchRun`` values, or a fake ``run_benchmark``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dev
import pytest


def line(
    bench: str, ours: float | None, peer: float, ratio: float | None, unit: str, **extra: Any
) -> str:
    """A last line as the benchmarks print it: the required keys, then the benchmark's own."""
    return json.dumps(
        {"bench": bench, "ours": ours, "peer": peer, "ratio": ratio, "unit": unit, **extra}
    )


INVERTED = "peer / ours (inverted: a duration, lower is better)"
# The goal keys each benchmark really prints (see benchmarks/bench_*.py).
MAILBOX = line("mailbox", 4352001.7, 4312074.9, 1.0093, "msg/s", goal_ratio=0.6, repeats=5)
FANIN = line("redis_fanin", 378275.0, 149896.0, 2.5236, "msg/s", goal=3.0, goal_met=False)
HISTORY = line(
    "history",
    0.0921,
    0.046,
    0.4995,
    "s (recover 10,000 missed messages; lower is better)",
    ratio_definition=INVERTED,
    goal=0.5,
    goal_met=True,
    history_cost_goal=2.0,
    history_cost_goal_met=False,
    all_goals_met=False,
)
LATENCY = line(
    "redis_latency",
    0.329,
    0.348,
    1.0578,
    "ms (p99 at 5,000 msg/s; lower is better)",
    goals={"p99_5k_le_1.0ms": True, "p99_50k_le_2.0ms": True},
    goal_met=True,
)
SPAWN = line("spawn", 19554.2, 29676.0, 0.6589, "spawns/s", goal_spawns_per_s=50_000)
RECOVERY = line(
    "redis_recovery",
    None,
    0.222,
    None,
    "s (restarted server spawned -> every subscriber got a message; lower is better)",
    ratio_definition=INVERTED,
    goal_seconds=1.0,
    goal_met=False,
)


def cells(table_line: str) -> list[str]:
    return [cell.strip() for cell in table_line.strip("|").split("|")]


def rows(text: str) -> dict[str, list[str]]:
    """The table's rows by benchmark name (the header and the rule left out)."""
    table = text.split("\n\n")[0].splitlines()
    return {cells(row)[0]: cells(row)[1:] for row in table[2:]}


TABLE = """\
| bench   |      ours |      peer | ratio | unit  | goal         | met                 |
| ------- | --------: | --------: | ----: | ----- | ------------ | ------------------- |
| mailbox | 4,352,002 | 4,312,075 | 1.009 | msg/s | ratio >= 0.6 |                     |
| ask     |           |           |       |       |              | FAILED: exit code 1 |
"""


def test_report_is_a_markdown_table_then_the_json_lines() -> None:
    runs = [dev.BenchRun("mailbox", 0, MAILBOX), dev.BenchRun("ask", 1, "")]
    text, ok = dev.bench_report(runs)
    assert not ok
    assert text == f"{TABLE}\n{MAILBOX}"


def test_report_reads_each_benchmarks_goal_and_met() -> None:
    names = ["fanin", "history", "latency", "spawn", "recovery"]
    lines = [FANIN, HISTORY, LATENCY, SPAWN, RECOVERY]
    text, ok = dev.bench_report(
        [dev.BenchRun(name, 0, last) for name, last in zip(names, lines, strict=True)]
    )
    assert ok
    assert rows(text) == {
        "fanin": ["378,275", "149,896", "2.524", "msg/s", "ratio >= 3", "no"],
        # all_goals_met wins over goal_met; the unit's note stays in the JSON line.
        "history": ["0.0921", "0.046", "0.4995", "s", "ours <= 0.5, history_cost goal 2", "no"],
        "latency": [
            "0.329",
            "0.348",
            "1.058",
            "ms",
            "p99_5k_le_1.0ms, p99_50k_le_2.0ms",
            "yes",
        ],
        "spawn": ["19,554", "29,676", "0.6589", "spawns/s", ">= 50,000 spawns/s", ""],
        "recovery": ["n/a", "0.222", "n/a", "s", "<= 1 s", "no"],
    }
    assert text.split("\n\n")[1].splitlines() == lines


@pytest.mark.parametrize(
    ("exit_code", "last_line", "reason"),
    [
        (1, "ValueError: boom", "exit code 1"),
        (-9, MAILBOX, "exit code -9"),
        (0, "", "no output"),
        (0, "medians: ours 1, peer 2", "last line is not a JSON object: medians: ours 1, peer 2"),
        (0, "[1, 2]", "last line is not a JSON object: [1, 2]"),
        (0, '{"bench": "x", "ours": 1}', "last line lacks peer, ratio, unit"),
        (0, "x" * 80, f"last line is not a JSON object: {'x' * 57}..."),
    ],
)
def test_a_failed_run_keeps_its_row_with_the_reason(
    exit_code: int, last_line: str, reason: str
) -> None:
    runs = [dev.BenchRun("broken", exit_code, last_line), dev.BenchRun("mailbox", 0, MAILBOX)]
    text, ok = dev.bench_report(runs)
    assert not ok
    assert rows(text)["broken"] == ["", "", "", "", "", f"FAILED: {reason}"]
    assert rows(text)["mailbox"][0] == "4,352,002"
    assert text.split("\n\n")[1].splitlines() == [MAILBOX]  # no JSON line for the failed one


def test_only_picks_benchmarks_and_the_rest_is_passed_on() -> None:
    known = ["ask", "fanin", "mailbox"]
    args = ["--quick", "--only", "mailbox,ask", "--gc-threshold", "50000"]
    assert dev.select_benchmarks(args, known) == (
        ["mailbox", "ask"],
        ["--quick", "--gc-threshold", "50000"],
    )
    assert dev.select_benchmarks(["--only=fanin"], known) == (["fanin"], [])
    assert dev.select_benchmarks(["--quick"], known) == (known, ["--quick"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "mailbox,nope"], "no such benchmark: nope (there are: ask, mailbox)"),
        (["--only"], "--only needs benchmark names"),
        (["--only=,"], "--only needs benchmark names"),
    ],
)
def test_only_refuses_unknown_or_missing_names(args: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        dev.select_benchmarks(args, ["ask", "mailbox"])


def test_bench_all_runs_every_benchmark_with_the_arguments_and_fails_at_the_end(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One failed benchmark does not stop the others, but makes the exit code non-zero."""
    calls: list[tuple[str, list[str]]] = []

    def run_benchmark(python: Path, name: str, args: Sequence[str]) -> dev.BenchRun:
        calls.append((name, list(args)))
        return dev.BenchRun(name, 1 if name == "ask" else 0, MAILBOX)

    monkeypatch.setattr(dev, "run_benchmark", run_benchmark)
    code = dev.bench_all(Path("python"), ["--quick", "--gc-threshold", "7"])
    names = dev.benchmark_names()
    assert {"mailbox", "ask", "history"} <= set(names)
    assert calls == [(name, ["--quick", "--gc-threshold", "7"]) for name in names]
    assert code == 1
    report = rows(capsys.readouterr().out.strip())
    assert list(report) == names
    assert report["ask"][-1] == "FAILED: exit code 1"
    assert report["mailbox"][0] == "4,352,002"

    calls.clear()
    assert dev.bench_all(Path("python"), ["--only", "mailbox"]) == 0
    assert calls == [("mailbox", [])]
    assert dev.bench_all(Path("python"), ["--only", "nope"]) == 2
    assert "no such benchmark: nope" in capsys.readouterr().out
