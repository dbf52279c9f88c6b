"""The baseline file: what a session measured, kept as JSON (never pickle) for later sessions to compare with.

Entries are keyed ``submission/framework/workload``. Each holds the schedule its runs used (eval every N
steps and the step budget in step mode; nothing in AlgoPerf's time mode), the conditions that decide whether
steps are reproducible (threads, device), the hardware profile whose budgets the runs had, and one record
per run (study and trial): whether it met the target, its steps and time to target, its step time, and the
load the machine was under. Several runs per
entry (``--algoperf-studies``, ``--algoperf-trials``) give the spread of step times that stored-time
comparisons allow for. When the file holds a single submission, it is the reference for whichever submission
runs against it, so a changed copy of an optimizer (another file, another name) is gated against the original.

Version 1 files (one time and one step count per entry) are still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_algoperf.results import RunResult

FORMAT = "pytest-algoperf-baseline"
VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class BaselineRun:
    study: int
    trial: int
    seed: int | None
    reached: bool  # AlgoPerf's sense: within the time budget
    met_target: bool  # within the step budget too (step mode)
    steps_to_target: int | None
    time_to_target: float | None
    step_time: float | None  # submission seconds per step over the whole run
    contended: bool = False

    @classmethod
    def of(cls, result: RunResult) -> BaselineRun:
        step_time = result.submission_time / result.global_step if result.global_step else None
        return cls(
            result.study,
            result.trial,
            result.seed,
            result.reached,
            result.met_target,
            result.steps_to_target,
            result.time_to_target,
            step_time,
            result.contended,
        )


@dataclass(frozen=True)
class BaselineEntry:
    submission: str
    framework: str
    workload: str
    runs: tuple[BaselineRun, ...]
    eval_every_steps: int | None = None
    step_budget: int | None = None
    threads: int | None = None
    device: str | None = None
    calibration: Mapping[str, Any] | None = None  # pytest_algoperf.provenance.calibration_record
    submission_digest: str | None = None
    hardware_profile: str | None = None  # whose budgets the runs had; times compare only within one

    def run_for(self, study: int, trial: int) -> BaselineRun:
        """The run of the same study and trial (the same seed), or the entry's first."""
        return next((r for r in self.runs if (r.study, r.trial) == (study, trial)), self.runs[0])

    @property
    def step_time_spread(self) -> float | None:
        """max/min - 1 of the runs' step times: the machine noise the baseline saw; None with one run."""
        times = [r.step_time for r in self.runs if r.step_time]
        return max(times) / min(times) - 1 if len(times) > 1 else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["runs"] = [asdict(run) for run in self.runs]
        return data


@dataclass(frozen=True)
class Baseline:
    path: Path
    entries: Mapping[str, BaselineEntry]
    machine: Mapping[str, Any] = field(default_factory=dict)
    software: Mapping[str, Any] = field(default_factory=dict)

    def find(self, submission: str, framework: str, workload: str) -> BaselineEntry | None:
        key = f"{submission}/{framework}/{workload}"
        if key in self.entries:
            return self.entries[key]
        if len({entry.submission for entry in self.entries.values()}) == 1:
            for entry in self.entries.values():
                if (entry.framework, entry.workload) == (framework, workload):
                    return entry
        return None


def entries_of(results: Iterable[RunResult]) -> dict[str, BaselineEntry]:
    """One entry per submission/framework/workload, with a run record per study and trial; a run that ended
    in an error measured nothing and is left out."""
    grouped: dict[str, list[RunResult]] = {}
    for result in results:
        if result.stop_reason not in ("error", "crashed", "interrupted", "refused"):
            grouped.setdefault(result.key, []).append(result)
    entries = {}
    for key, runs in grouped.items():
        first = runs[0]
        entries[key] = BaselineEntry(
            first.submission,
            first.framework,
            first.workload,
            tuple(BaselineRun.of(r) for r in runs),
            first.eval_every_steps,
            first.step_budget,
            first.threads,
            first.device,
            first.calibration,
            first.submission_digest,
            first.hardware_profile or None,
        )
    return entries


def save_baseline(
    path: Path,
    results: Iterable[RunResult],
    environment: Mapping[str, Any],
    keep: Mapping[str, BaselineEntry] | None = None,
) -> None:
    """Write this session's entries; ``keep`` (``--algoperf-update-baseline``) are older entries that this
    session did not measure, kept as they were."""
    entries = {**(keep or {}), **entries_of(results)}
    document = {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": dict(environment.get("machine", {})),
        "software": dict(environment.get("software", {})),
        "entries": {key: entry.to_json() for key, entry in sorted(entries.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def load_baseline(path: Path, option: str = "--algoperf-baseline") -> Baseline:
    """Read a baseline file; ``ValueError`` names the file, the problem and how to fix it."""
    fix = "re-create it with --algoperf-save-baseline"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{option}: {path} does not exist; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{option}: {path} is not valid JSON ({error}); {fix}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{option}: {path} is not a pytest-algoperf baseline file; {fix}")
    version = document.get("version")
    if version not in READABLE_VERSIONS:
        raise ValueError(
            f"{option}: {path} has version {version!r}; this plugin reads versions 1 and 2; {fix}"
        )
    read = _entry if version == 2 else _version_1_entry
    try:
        entries = {key: read(value) for key, value in document["entries"].items()}
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise ValueError(f"{option}: {path} has a malformed entry ({error!r}); {fix}") from None
    return Baseline(path, entries, document.get("machine") or {}, document.get("software") or {})


def _entry(value: Mapping[str, Any]) -> BaselineEntry:
    runs = tuple(_run(run) for run in value["runs"])
    if not runs:
        raise ValueError(f"entry {value['submission']}/{value['framework']}/{value['workload']} has no runs")
    return BaselineEntry(
        submission=str(value["submission"]),
        framework=str(value["framework"]),
        workload=str(value["workload"]),
        runs=runs,
        eval_every_steps=_optional(int, value.get("eval_every_steps")),
        step_budget=_optional(int, value.get("step_budget")),
        threads=_optional(int, value.get("threads")),
        device=_optional(str, value.get("device")),
        calibration=_optional(dict, value.get("calibration")),
        submission_digest=_optional(str, value.get("submission_digest")),
        hardware_profile=_optional(str, value.get("hardware_profile")),
    )


def _run(value: Mapping[str, Any]) -> BaselineRun:
    return BaselineRun(
        study=int(value["study"]),
        trial=int(value["trial"]),
        seed=_optional(int, value.get("seed")),
        reached=bool(value["reached"]),
        met_target=bool(value.get("met_target", value["reached"])),
        steps_to_target=_optional(int, value["steps_to_target"]),
        time_to_target=_optional(float, value["time_to_target"]),
        step_time=_optional(float, value.get("step_time")),
        contended=bool(value.get("contended", False)),
    )


def _version_1_entry(value: Mapping[str, Any]) -> BaselineEntry:
    run = _run({**value, "study": 0, "trial": 0})
    return BaselineEntry(
        str(value["submission"]),
        str(value["framework"]),
        str(value["workload"]),
        (run,),
        eval_every_steps=_optional(int, value.get("eval_every_steps")),
    )


def _optional(kind: type, value: Any) -> Any:
    return None if value is None else kind(value)
