"""Verdicts: one run against its baseline entry, measure by measure.

- **target and steps to target**, exact: in step mode a seed gives the same trajectory on any load, so a run
  that misses a target its baseline met, or needs more steps, regressed; no noise allowance. When the two
  sessions did not use the same schedule, threads and device, steps are not comparable and are not gated. A
  miss at the step cap (``--algoperf-max-global-steps``) of a target the baseline met after that step is
  inconclusive: the baseline ran under another cap.
- **time to target, paired** (the baseline's code was at hand): steps x the step time measured interleaved
  with the baseline's code (``pytest_algoperf.gate.paired``); regressed only when the whole confidence
  interval of the ratio lies above 1 + tolerance, inconclusive when it straddles it.
- **time to target, stored**: the ratio to the stored time, allowed ``(1 + tolerance) x (1 + spread)`` plus
  ``tolerance_sec`` (spread: of the baseline runs' step times; none with one run, and the verdict says so).
  A time measured under contention (``pytest_algoperf.load``), or on another machine, or a baseline measured
  under contention, cannot show a regression: such a verdict is inconclusive. Times of runs under different
  hardware profiles (``pytest_algoperf.hardware.profiles``) are not compared at all.

A run's verdict is ``regressed`` if any measure regressed, else ``inconclusive`` if any is, else ``ok``
(``new`` without a baseline entry). Only ``regressed`` fails a session.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from typing import Any

from pytest_algoperf.gate.baseline_file import Baseline, BaselineEntry, BaselineRun
from pytest_algoperf.gate.paired import PairedMeasurement
from pytest_algoperf.load import LoadReport
from pytest_algoperf.results import RunResult

DEFAULT_TOLERANCE = 0.1


@dataclass(frozen=True)
class Tolerances:
    """Allowed slowdowns as fractions: one default and per-workload values (``ogbg_mini:0.3``)."""

    default: float = DEFAULT_TOLERANCE
    per_workload: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 1.0  # on top of the fraction, for stored times: sub-second timings are noise

    def of(self, workload: str) -> float:
        return self.per_workload.get(workload, self.default)

    def describe(self) -> str:
        special = ", ".join(f"{w} {t:.0%}" for w, t in sorted(self.per_workload.items()))
        return f"{self.default:.0%}" + (f" ({special})" if special else "")


def parse_tolerances(text: str, seconds: float = 1.0) -> Tolerances:
    """``"0.1"``, ``"ogbg_mini:0.3 criteo1tb_mini:0.25"`` or both; commas or spaces between items."""
    default, per_workload = DEFAULT_TOLERANCE, {}
    for item in (part for part in re.split(r"[\s,]+", str(text)) if part):
        name, _, value = item.rpartition(":")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(
                f"{item!r} is not a fraction or WORKLOAD:FRACTION (e.g. 0.1 or ogbg_mini:0.3)"
            ) from None
        if number < 0:
            raise ValueError(f"{item!r}: a tolerance cannot be negative")
        if name:
            per_workload[name] = number
        else:
            default = number
    return Tolerances(default, per_workload, seconds)


@dataclass(frozen=True)
class Comparison:
    """One measure of one run against its baseline: a row of the gate's table."""

    measure: str
    baseline: str
    now: str
    ratio: float | None
    interval: str
    threshold: str
    status: str  # ok, regressed or inconclusive
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    result: RunResult
    status: str  # ok, regressed, inconclusive or new
    detail: str
    comparisons: tuple[Comparison, ...] = ()


def judge(
    result: RunResult, baseline: Baseline, tolerances: Tolerances, machine: Mapping[str, Any] | None = None
) -> Verdict:
    """``machine``: where this session runs (``reporting.environment.machine_info``), to tell stored times
    from another machine."""
    entry = baseline.find(result.submission, result.framework, result.workload)
    if entry is None:
        return Verdict(result, "new", "no baseline entry; recorded with --algoperf-save-baseline")
    if result.stop_reason == "refused":
        return Verdict(result, "refused", result.error or "the baseline was made under another calibration")
    base = entry.run_for(result.study, result.trial)
    if not base.met_target:
        return Verdict(result, "ok", "the baseline never met the target")
    tolerance = tolerances.of(result.workload)
    comparisons = [_steps(result, entry, base)]
    if result.met_target:
        paired = PairedMeasurement.from_json(result.paired)
        if paired is not None:
            comparisons.append(_paired_time(result, base, paired, tolerance))
        else:
            stored = _stored_time(result, entry, base, tolerances.seconds, tolerance)
            if other_hardware := profile_difference(result, entry):
                stored = Comparison(*astuple(stored)[:4], "not comparable", "-", "ok", other_hardware)
            elif stored.status == "regressed" and (
                excuse := _why_times_differ(result, base, baseline, machine)
            ):
                stored = Comparison(*astuple(stored)[:6], "inconclusive", f"{stored.note}, but {excuse}")
            comparisons.append(stored)
    for status in ("regressed", "inconclusive"):
        if any(c.status == status for c in comparisons):
            first = next(c for c in comparisons if c.status == status)
            return Verdict(result, status, f"{first.measure}: {first.note}", tuple(comparisons))
    return Verdict(result, "ok", "; ".join(c.note for c in comparisons if c.note), tuple(comparisons))


def schedule_difference(result: RunResult, entry: BaselineEntry) -> str | None:
    """Why the two sessions' evals fall on different steps, or None when they evaluate at the same steps."""
    if entry.eval_every_steps is None or result.eval_every_steps is None:
        return "time-based evals fall on different steps under different loads"
    if entry.eval_every_steps != result.eval_every_steps:
        return f"evals every {entry.eval_every_steps} vs {result.eval_every_steps} steps"
    return None


def profile_difference(result: RunResult, entry: BaselineEntry) -> str | None:
    """Why stored times cannot be compared: the two ran under different hardware profiles' budgets."""
    theirs, ours = entry.hardware_profile, result.hardware_profile
    if theirs and ours and theirs != ours:
        return f"hardware profile {theirs} vs {ours}: times from different hardware are not compared"
    return None


def numerics_difference(result: RunResult, entry: BaselineEntry) -> str | None:
    """Why the same seed may not give the same trajectory (PyTorch's results change with its thread count)."""
    differences = [
        f"{name} {theirs} vs {ours}"
        for name, theirs, ours in (
            ("threads", entry.threads, result.threads),
            ("device", entry.device, result.device),
        )
        if theirs is not None and theirs != ours
    ]
    return "different " + ", ".join(differences) if differences else None


def _steps(result: RunResult, entry: BaselineEntry, base: BaselineRun) -> Comparison:
    schedule = schedule_difference(result, entry)
    numerics = numerics_difference(result, entry)
    baseline_steps = str(base.steps_to_target)
    if not result.met_target:
        if result.step_budget and schedule is None:
            note = f"missed the target in {result.step_budget} steps; the baseline met it at {baseline_steps}"
            status = "regressed" if numerics is None else "inconclusive"
            note += "" if numerics is None else f", but with {numerics}"
            return Comparison("target", baseline_steps, "missed", None, "exact", "met", status, note)
        if (cap := result.max_global_steps) and base.steps_to_target and base.steps_to_target > cap:
            # A baseline saved without the step cap (before it was the default, or with
            # --algoperf-max-global-steps=none) met the target where this run was not allowed to go.
            note = (
                f"the baseline met the target at step {baseline_steps}, after this run's step cap of {cap} "
                "(--algoperf-max-global-steps): save it again with --algoperf-update-baseline, "
                "or run with the cap it had"
            )
            return Comparison("target", baseline_steps, "missed", None, "-", "met", "inconclusive", note)
        if result.contended:
            note = f"missed the target under contention ({_load(result)}): time ran out, not the steps"
            return Comparison("target", baseline_steps, "missed", None, "-", "met", "inconclusive", note)
        if result.missed_within_seed_noise:  # time-based evals: another trajectory, as another seed's
            note = "missed the target by the baseline's seed noise only: time-based evals are not exact"
            return Comparison("target", baseline_steps, "missed", None, "-", "met", "inconclusive", note)
        note = f"missed the target the baseline met in {_seconds(base.time_to_target)}"
        return Comparison("target", baseline_steps, "missed", None, "-", "met", "regressed", note)
    steps = result.steps_to_target or 0
    row = (
        "steps to target",
        baseline_steps,
        str(steps),
        steps / base.steps_to_target if base.steps_to_target else None,
    )
    if schedule is not None:
        return Comparison(*row, "not comparable", "-", "ok", schedule)
    if base.steps_to_target is not None and steps > base.steps_to_target:
        if numerics is not None:
            note = f"{steps} steps against the baseline's {baseline_steps}, but with {numerics}"
            return Comparison(*row, "not exact", "1.00", "inconclusive", note)
        note = f"{steps} steps against the baseline's {baseline_steps} (exact: same seed and schedule)"
        return Comparison(*row, "exact", "1.00", "regressed", note)
    note = "same steps" if steps == base.steps_to_target else f"{steps} steps, fewer than {baseline_steps}"
    return Comparison(*row, "exact", "1.00", "ok", note)


def _paired_time(
    result: RunResult, base: BaselineRun, paired: PairedMeasurement, tolerance: float
) -> Comparison:
    """Time to target as steps x paired step time, for both; the interval is the step-time ratio's, scaled."""
    base_steps, steps = base.steps_to_target or 0, result.steps_to_target or 0
    scale = steps / base_steps if base_steps else math.nan
    ratio, low, high = scale * paired.ratio, scale * paired.low, scale * paired.high
    threshold = 1 + tolerance
    baseline = _steps_times(base_steps, paired.baseline_step_sec)
    now = _steps_times(steps, paired.candidate_step_sec)
    interval = f"[{low:.3f}, {high:.3f}] ({paired.confidence:.0%}, {paired.pairs} pairs)"
    if low > threshold:
        status, note = "regressed", f"{ratio:.2f}x the baseline's time, interval above {threshold:.2f}"
    elif high <= threshold:
        status, note = "ok", f"{ratio:.2f}x the baseline's time (paired)"
    else:
        status, note = (
            "inconclusive",
            f"{ratio:.2f}x, interval [{low:.2f}, {high:.2f}] straddles {threshold:.2f}",
        )
    return Comparison(
        "time to target (paired)", baseline, now, ratio, interval, f"{threshold:.2f}", status, note
    )


def _stored_time(
    result: RunResult, entry: BaselineEntry, base: BaselineRun, tolerance_sec: float, tolerance: float
) -> Comparison:
    base_time, now_time = base.time_to_target or 0.0, result.time_to_target or 0.0
    ratio = now_time / base_time if base_time > 0 else math.inf
    spread = entry.step_time_spread
    factor = (1 + tolerance) * (1 + (spread or 0.0)) + (tolerance_sec / base_time if base_time > 0 else 0.0)
    interval = f"spread {spread:.1%} ({len(entry.runs)} runs)" if spread is not None else "no spread (1 run)"
    row = (
        "time to target (stored)",
        _seconds(base_time),
        _seconds(now_time),
        ratio,
        interval,
        f"{factor:.2f}",
    )
    if ratio <= factor:
        return Comparison(*row, "ok", f"{ratio:.2f}x the baseline's {_seconds(base_time)}")
    unknown_noise = " with no recorded spread (one baseline run)" if spread is None else ""
    note = f"{ratio:.2f}x the baseline's {_seconds(base_time)}, over {factor:.2f}x{unknown_noise}"
    return Comparison(*row, "regressed", note)


def _why_times_differ(
    result: RunResult, base: BaselineRun, baseline: Baseline, machine: Mapping[str, Any] | None
) -> str | None:
    """A reason other than the code for a time difference, or None."""
    if result.contended:
        return f"measured under contention ({_load(result)})"
    if base.contended:
        return "the baseline was measured under contention"
    here = machine or {}
    for key in ("processor", "cpu_count"):
        theirs, ours = baseline.machine.get(key), here.get(key)
        if theirs is not None and ours is not None and theirs != ours:
            return f"the baseline comes from another machine ({key} {theirs} vs {ours})"
    return None


def _steps_times(steps: int, step_sec: float) -> str:
    return f"{steps} x {step_sec * 1e3:.2f} ms = {steps * step_sec:.2f}s"


def _load(result: RunResult) -> str:
    report = LoadReport.from_json(result.load)
    return report.describe() if report else "load unknown"


def _seconds(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}s"
