"""Targets, budgets and eval periods as data: one ``calibration.json`` per workload folder.

Each entry records the numbers and the command that produced them (ALGOPERF.md section 7), so a reader can
rerun it. ``CalibratedWorkload`` serves the workload properties from such an entry.

A variant (ALGOPERF.md section 6) has an entry of its own in its base workload's file with its own validation
and test targets only: its budget, eval period and step_hint are its base workload's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_algoperf.spec import Workload

TARGET_KEYS = ("validation_target", "test_target")
BUDGET_KEYS = ("max_allowed_runtime_sec", "eval_period_time_sec", "step_hint")
REQUIRED_KEYS = TARGET_KEYS + BUDGET_KEYS


class CalibrationError(ValueError):
    """A calibration file that is missing or malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Calibration:
    validation_target: float
    test_target: float
    max_allowed_runtime_sec: float
    eval_period_time_sec: float
    step_hint: int
    command: str = ""
    source: str = ""
    steps_in_budget: int | None = None  # measured: the fastest framework's steps in the budget


def _read_entry(path: Path, entry: str, required: tuple[str, ...]) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CalibrationError(f"{path}: cannot read calibration data ({error})") from error
    if entry not in data:
        raise CalibrationError(f"{path}: no entry {entry!r}; entries are {', '.join(sorted(data))}")
    values = data[entry]
    missing = [key for key in required if key not in values]
    if missing:
        raise CalibrationError(f"{path}: entry {entry!r} lacks {', '.join(missing)}")
    return values


def load_calibration(path: Path, entry: str, base_entry: str | None = None) -> Calibration:
    """Read ``entry`` (a workload or data-source name) from a calibration file. With ``base_entry`` (a
    variant's base workload), only the targets come from ``entry`` and the budget from ``base_entry``."""
    values = _read_entry(path, entry, TARGET_KEYS if base_entry else REQUIRED_KEYS)
    budget = _read_entry(path, base_entry, BUDGET_KEYS) if base_entry else values
    return Calibration(
        validation_target=float(values["validation_target"]),
        test_target=float(values["test_target"]),
        max_allowed_runtime_sec=float(budget["max_allowed_runtime_sec"]),
        eval_period_time_sec=float(budget["eval_period_time_sec"]),
        step_hint=int(budget["step_hint"]),
        command=str(values.get("command", "")),
        source=str(values.get("source", "")),
        steps_in_budget=budget.get("measured", {}).get("steps_in_budget"),
    )


class CalibratedWorkload(Workload):
    """A workload whose targets and budget come from entry ``calibration_entry`` of ``calibration_file``."""

    calibration_file: Path

    @property
    def calibration_entry(self) -> str:
        return self.name

    @property
    def is_variant(self) -> bool:
        return bool(self.base_name) and self.base_name != self.name

    @cached_property
    def calibration(self) -> Calibration:
        entry = self.calibration_entry
        # A variant under its own name keeps its base's budget; an entry named otherwise (mnist's data
        # sources) is whole.
        base_entry = self.base_name if self.is_variant and entry == self.name else None
        return load_calibration(self.calibration_file, entry, base_entry)

    @property
    def validation_target_value(self) -> float:
        return self.calibration.validation_target

    @property
    def test_target_value(self) -> float:
        return self.calibration.test_target

    @property
    def max_allowed_runtime_sec(self) -> float:
        return self.calibration.max_allowed_runtime_sec

    @property
    def eval_period_time_sec(self) -> float:
        return self.calibration.eval_period_time_sec

    @property
    def step_hint(self) -> int:
        return self.calibration.step_hint

    @property
    def steps_in_budget(self) -> int | None:
        """Steps the calibration's fastest framework took in the budget (its base workload's, for a variant):
        the calibrated step rate from which the regression gate's step schedule is derived."""
        return self.calibration.steps_in_budget
