"""Targets, budgets and eval periods as data: one ``calibration.json`` per workload folder.

Each entry records the numbers and the command that produced them (ALGOPERF.md section 7), so a reader can
rerun it. ``CalibratedWorkload`` serves the workload properties from such an entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_algoperf.spec import Workload

REQUIRED_KEYS = (
    "validation_target",
    "test_target",
    "max_allowed_runtime_sec",
    "eval_period_time_sec",
    "step_hint",
)


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


def load_calibration(path: Path, entry: str) -> Calibration:
    """Read ``entry`` (a workload or data-source name) from a calibration file."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CalibrationError(f"{path}: cannot read calibration data ({error})") from error
    if entry not in data:
        raise CalibrationError(f"{path}: no entry {entry!r}; entries are {', '.join(sorted(data))}")
    values = data[entry]
    missing = [key for key in REQUIRED_KEYS if key not in values]
    if missing:
        raise CalibrationError(f"{path}: entry {entry!r} lacks {', '.join(missing)}")
    return Calibration(
        validation_target=float(values["validation_target"]),
        test_target=float(values["test_target"]),
        max_allowed_runtime_sec=float(values["max_allowed_runtime_sec"]),
        eval_period_time_sec=float(values["eval_period_time_sec"]),
        step_hint=int(values["step_hint"]),
        command=str(values.get("command", "")),
        source=str(values.get("source", "")),
    )


class CalibratedWorkload(Workload):
    """A workload whose targets and budget come from entry ``calibration_entry`` of ``calibration_file``."""

    calibration_file: Path

    @property
    def calibration_entry(self) -> str:
        return self.name

    @cached_property
    def calibration(self) -> Calibration:
        return load_calibration(self.calibration_file, self.calibration_entry)

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
