"""What a person sees in the terminal: one progress line per eval, and the session's summary table."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_algoperf.reporting.tables import Table, as_text, seconds
from pytest_algoperf.results import EvalRecord, RunResult


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


def write_table(terminal: Any, title: str, table: Table) -> None:
    terminal.write_sep("=", title)
    for line in as_text(table):
        terminal.write_line(line)
