"""The regression gate: save times and steps to target, and compare a later session with them.

A baseline file is JSON (never pickle). Entries are keyed ``submission/framework/workload``. When the file
holds a single submission, it is the reference for whichever submission runs against it, so a changed copy
of an optimizer (another file, another name) is gated against the numbers of the original.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_algoperf.results import RunResult

FORMAT = "pytest-algoperf-baseline"
VERSION = 1


@dataclass(frozen=True)
class BaselineEntry:
    submission: str
    framework: str
    workload: str
    reached: bool
    time_to_target: float | None
    steps_to_target: int | None
    eval_every_steps: int | None = None


@dataclass(frozen=True)
class Baseline:
    path: Path
    entries: Mapping[str, BaselineEntry]

    def find(self, result: RunResult) -> BaselineEntry | None:
        if result.key in self.entries:
            return self.entries[result.key]
        if len({entry.submission for entry in self.entries.values()}) == 1:
            for entry in self.entries.values():
                if (entry.framework, entry.workload) == (result.framework, result.workload):
                    return entry
        return None


@dataclass(frozen=True)
class Verdict:
    result: RunResult
    status: str  # "ok", "regressed" or "new"
    detail: str


def save_baseline(path: Path, results: Iterable[RunResult], machine: Mapping[str, Any]) -> None:
    entries = {
        r.key: {
            "submission": r.submission,
            "framework": r.framework,
            "workload": r.workload,
            "reached": r.reached,
            "time_to_target": r.time_to_target,
            "steps_to_target": r.steps_to_target,
            "eval_every_steps": r.eval_every_steps,
        }
        for r in results
        if r.stop_reason != "error"
    }
    document = {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": dict(machine),
        "entries": entries,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; ``ValueError`` names the file, the problem and how to fix it."""
    fix = "re-create it with --algoperf-save-baseline"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"--algoperf-baseline: {path} does not exist; {fix}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"--algoperf-baseline: {path} is not valid JSON ({error}); {fix}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"--algoperf-baseline: {path} is not a pytest-algoperf baseline file; {fix}")
    if document.get("version") != VERSION:
        raise ValueError(
            f"--algoperf-baseline: {path} has version {document.get('version')}, expected {VERSION}; {fix}"
        )
    try:
        entries = {key: _entry(value) for key, value in document["entries"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"--algoperf-baseline: {path} has a malformed entry ({error!r}); {fix}") from None
    return Baseline(path, entries)


def _entry(value: Mapping[str, Any]) -> BaselineEntry:
    time = value["time_to_target"]
    steps = value["steps_to_target"]
    return BaselineEntry(
        submission=str(value["submission"]),
        framework=str(value["framework"]),
        workload=str(value["workload"]),
        reached=bool(value["reached"]),
        time_to_target=None if time is None else float(time),
        steps_to_target=None if steps is None else int(steps),
        eval_every_steps=value.get("eval_every_steps"),
    )


def compare(result: RunResult, baseline: Baseline, tolerance: float, tolerance_sec: float = 0.0) -> Verdict:
    """Regressed when the baseline met the target and this run did not, or took too long.

    Time may exceed the baseline's by ``tolerance`` (a fraction) plus ``tolerance_sec``. Steps to target are
    compared as well when both sessions evaluated on the same step-based schedule: only then are they
    deterministic for a seed, and they may exceed the baseline's by ``tolerance``.
    """
    entry = baseline.find(result)
    if entry is None:
        return Verdict(result, "new", "no baseline entry; recorded with --algoperf-save-baseline")
    if not entry.reached or entry.time_to_target is None:
        return Verdict(result, "ok", "baseline never reached the target")
    if not result.reached or result.time_to_target is None:
        return Verdict(
            result, "regressed", f"missed the target the baseline met in {entry.time_to_target:.2f} s"
        )
    same_schedule = entry.eval_every_steps is not None and entry.eval_every_steps == result.eval_every_steps
    steps = result.steps_to_target or 0
    if same_schedule and entry.steps_to_target and steps > entry.steps_to_target * (1 + tolerance):
        detail = f"{steps} steps against the baseline's {entry.steps_to_target} (limit {1 + tolerance:.2f}x)"
        return Verdict(result, "regressed", detail)
    limit = entry.time_to_target * (1 + tolerance) + tolerance_sec
    ratio = result.time_to_target / entry.time_to_target if entry.time_to_target > 0 else math.inf
    summary = f"{ratio:.2f}x the baseline's {entry.time_to_target:.2f} s"
    if result.time_to_target > limit:
        return Verdict(result, "regressed", f"{summary} (limit {limit:.2f} s)")
    return Verdict(result, "ok", summary)
