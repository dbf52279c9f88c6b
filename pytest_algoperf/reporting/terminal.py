"""What a person sees in the terminal: one progress line per eval, and the session's summary table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from pytest_algoperf.baseline import Verdict
from pytest_algoperf.results import EvalRecord, RunResult


def seconds(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}s"


class ProgressReporter:
    """Prints a line after each eval, past pytest's output capturing, like live logging does."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @property
    def terminal(self) -> Any:
        # Looked up late: the terminal reporter registers itself after this plugin is configured.
        return self.config.pluginmanager.get_plugin("terminalreporter")

    @property
    def capture(self) -> Any:
        return self.config.pluginmanager.get_plugin("capturemanager")

    @pytest.hookimpl
    def pytest_algoperf_eval(self, result: RunResult, record: EvalRecord) -> None:
        if self.terminal is None:
            return
        value = record.metrics.get(f"validation/{result.target_metric}", math.nan)
        mark = "  reached" if result.reached and result.steps_to_target == record.global_step else ""
        line = (
            f"  {result.test_id}: step {record.global_step:>6}  time {seconds(record.score):>8} / "
            f"{result.budget_sec:g}s  validation/{result.target_metric} {value:.4f} "
            f"(target {result.validation_target:g}){mark}"
        )
        if self.capture is None:
            self._write(line)
            return
        with self.capture.global_and_fixture_disabled():
            self._write(line)

    def _write(self, line: str) -> None:
        self.terminal.ensure_newline()
        self.terminal.write_line(line)


SUMMARY_COLUMNS = (
    "submission",
    "framework",
    "workload",
    "reached",
    "time to target",
    "steps to target",
    "evals",
    "eval time",
)


def summary_rows(results: Sequence[RunResult], verdicts: Mapping[str, Verdict]) -> list[list[str]]:
    rows = []
    for r in results:
        row = [
            r.submission,
            r.framework,
            r.workload,
            _reached(r),
            seconds(r.time_to_target),
            "-" if r.steps_to_target is None else str(r.steps_to_target),
            str(r.num_evals),
            seconds(r.eval_time),
        ]
        if verdicts:
            verdict = verdicts.get(r.test_id)
            row.append("-" if verdict is None else f"{verdict.status}: {verdict.detail}")
        rows.append(row)
    return rows


def _reached(result: RunResult) -> str:
    if result.stop_reason == "error":
        return "error"
    return "yes" if result.reached else ("diverged" if result.stop_reason == "diverged" else "no")


def write_summary(terminal: Any, results: Sequence[RunResult], verdicts: Mapping[str, Verdict]) -> None:
    header = [*SUMMARY_COLUMNS, *(["vs baseline"] if verdicts else [])]
    rows = [header, *summary_rows(results, verdicts)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    terminal.write_sep("=", "algoperf summary")
    for index, row in enumerate(rows):
        terminal.write_line(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if index == 0:
            terminal.write_line("  ".join("-" * width for width in widths))
