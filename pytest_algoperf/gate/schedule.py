"""The gate's step mode: AlgoPerf's time budget and eval period turned into steps.

With AlgoPerf's time-based schedule the evals of two runs of the same seed fall on different steps when the
machine's load differs, so steps to target move (the same seed gave 1489 to 1770 steps on criteo1tb_mini),
and a slower machine can turn the same trajectory into a miss. In step mode a run evaluates every
``eval_every_steps`` steps and stops after ``step_budget`` steps, whatever the clock says: a seed then gives
the same trajectory, the same evals and the same steps to target on any load, so the gate compares steps
exactly.

The rule, from the workload's calibrated step rate ``rate = steps_in_budget / max_allowed_runtime_sec`` under
the session's hardware profile (``steps_in_budget``: the steps the run's framework took in its own budget
where the profile gives one, else the calibration's fastest framework's in the shared budget; a workload
without that record uses ``step_hint``, AlgoPerf's "steps the baseline can do in the budget"):

    step_budget      = ceil(rate x max_allowed_runtime_sec x budget_factor)
    eval_every_steps = max(1, round(rate x eval_period_time_sec))

A session caps ``step_budget`` at its step cap (``--algoperf-max-global-steps``, ``max_global_steps`` here),
where a time-mode run completes too: a budget that holds step_hint steps at a step with dropout holds more at
the baseline's own.

A baseline file records the schedule of each entry, and a session compared with it uses that schedule, so a
recalibration cannot silently change what is compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytest_algoperf.spec import Workload

SCHEDULES = ("auto", "time", "steps")


@dataclass(frozen=True)
class StepSchedule:
    eval_every_steps: int
    step_budget: int


def calibrated_steps_in_budget(workload: Workload) -> int:
    return int(getattr(workload, "steps_in_budget", None) or workload.step_hint)


def step_schedule(
    workload: Workload, budget_factor: float = 1.0, max_global_steps: int | None = None
) -> StepSchedule:
    """The step schedule of ``workload`` by the rule above (``budget_factor``: 1.5 for self-tuning), its step
    budget at most ``max_global_steps`` where given."""
    rate = calibrated_steps_in_budget(workload) / workload.max_allowed_runtime_sec
    step_budget = max(1, math.ceil(rate * workload.max_allowed_runtime_sec * budget_factor - 1e-9))
    return StepSchedule(
        eval_every_steps=max(1, round(rate * workload.eval_period_time_sec)),
        step_budget=min(step_budget, max_global_steps) if max_global_steps else step_budget,
    )


def uses_step_mode(schedule: str, gating: bool) -> bool:
    """``--algoperf-schedule``: ``steps``, ``time``, or ``auto`` (steps when a baseline is saved, compared or
    updated)."""
    return schedule == "steps" or (schedule == "auto" and gating)
