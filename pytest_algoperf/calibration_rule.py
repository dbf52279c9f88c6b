"""Step 3 of calibration: the targets and the budget from the measured reruns (the docstring of
``python -m pytest_algoperf.calibrate`` states the whole rule). Pure functions of what was measured, kept
apart from the runs that measure it, so that a recorded calibration can be replayed on its saved progress."""

from __future__ import annotations

import argparse
import math
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pytest_algoperf.calibration import CalibratedWorkload
from pytest_algoperf.calibration_progress import Trial
from pytest_algoperf.hardware.profiles import BY_FRAMEWORK, DROPOUT_STEP_COST
from pytest_algoperf.reporting.environment import machine_info


def budget_for_targets(
    args: argparse.Namespace,
    workload: CalibratedWorkload,
    reruns: list[Trial],
    target: float,
    dropout_costs: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A hardware profile's budget against the committed target: step 3's rule on the reruns that met it."""
    higher = workload.target_metric_higher_is_better
    met = [t for t in reruns if math.isfinite(t.time_to(target, higher))]
    short = sorted({t.framework for t in reruns} - {t.framework for t in met})
    if short:
        raise SystemExit(
            f"calibrate: no {', '.join(short)} rerun reached the committed validation target {target} on "
            f"{args.device}; give the runs more --max-steps (or --budget-sec)"
        )
    budget, by_framework = budget_by_rule(
        args, reruns, met, target, higher, workload.step_hint, dropout_costs
    )
    return {
        "max_allowed_runtime_sec": budget,
        **({BY_FRAMEWORK: by_framework} if by_framework else {}),
        "eval_period_time_sec": capped_eval_period(args.eval_period_sec, budget),
        "command": recorded_command(args),
        "measured": measured_here(int(max(t.steps_per_sec for t in met) * budget)),
        "reruns": [
            {
                "framework": t.framework,
                "seed": t.seed,
                "time_to_target": finite_or_none(t.time_to(target, higher)),
            }
            for t in reruns
        ],
    }


def budget_by_rule(
    args: argparse.Namespace,
    reruns: list[Trial],
    met: list[Trial],
    target: float,
    higher: bool,
    step_hint: int,
    dropout_costs: Mapping[str, float] | None = None,
) -> tuple[float, dict[str, dict[str, Any]]]:
    """The budget by AlgoPerf's rule, the baseline reaching ``target`` at about 3/4 of it: per framework, 4/3
    of its --budget-quantile time to ``target`` among its reruns that ``met`` it, floored by
    --min-budget-sec, and at least the time ``step_hint`` steps take (AlgoPerf's step_hint is the steps the
    baseline can take in the budget: a rerun that met the target early must not cut the schedules submissions
    size by it). Returns the slowest framework's budget, which every framework shares unless it has its own,
    and, with two frameworks or more (or a dropout cost to record), each one's own budget and steps in it
    (``by_framework``).

    A rerun's time counts at its framework's fastest rerun's step rate: a rerun that shared its CPU with
    another process took as many steps to the target as a quiet one, but more seconds, and the slowest rerun
    must not stretch the budget by someone else's load.

    ``dropout_costs`` (per framework, ``dropout_cost.step_cost``: how many times longer the baseline's step
    is with AlgoPerf's baseline dropout) stretch the ``step_hint`` floor, so that every point of AlgoPerf's
    baseline search space can take ``step_hint`` steps, as on AlgoPerf's hardware, where dropout is nearly
    free; each framework's cost is recorded with its budget when it is not 1."""
    costs = dict(dropout_costs or {})
    fastest = {
        f: max(t.steps_per_sec for t in reruns if t.framework == f) for f in {t.framework for t in met}
    }

    def quiet_time(t: Trial) -> float:
        return t.time_to(target, higher) * t.steps_per_sec / fastest[t.framework]

    def own_budget(framework: str) -> float:
        times = [quiet_time(t) for t in met if t.framework == framework]
        by_target = round(
            max(float(np.quantile(times, args.budget_quantile)) * 4 / 3, args.min_budget_sec), 2
        )
        step_hint_time = step_hint / fastest[framework] * costs.get(framework, 1.0)
        return max(by_target, math.ceil(step_hint_time * 100) / 100)

    own = {f: own_budget(f) for f in sorted(fastest)}
    shared_period = capped_eval_period(args.eval_period_sec, max(own.values()))
    by_framework = {}
    for framework, budget in own.items():
        by_framework[framework] = {
            "max_allowed_runtime_sec": budget,
            "steps_in_budget": int(fastest[framework] * budget),
        }
        if costs.get(framework, 1.0) != 1.0:
            by_framework[framework][DROPOUT_STEP_COST] = costs[framework]
        period = capped_eval_period(args.eval_period_sec, budget)
        if period != shared_period:
            by_framework[framework] |= {"eval_period_time_sec": period, "eval_period_note": EVAL_PERIOD_NOTE}
    stretched = any(DROPOUT_STEP_COST in values for values in by_framework.values())
    return max(own.values()), (by_framework if len(own) > 1 or stretched else {})


# VALIDITY.md, rule 3: evals coarser than this share of the budget cluster times to target at eval points.
MAX_EVAL_PERIOD_SHARE = 0.04
EVAL_PERIOD_GRID_SEC = 0.5
EVAL_PERIOD_NOTE = "at most 4% of this framework's budget on a 0.5 s grid (VALIDITY.md, rule 3)"


def capped_eval_period(requested: float, budget: float) -> float:
    """``requested`` (--eval-period-sec), or where it is over 4% of ``budget`` the largest period on a 0.5 s
    grid that is not (at least 0.5 s: an eval here costs up to 1.3 s of wall time). A cap: it never lengthens
    what was requested, so a sub-second period on a budget of a few seconds (mnist's) is kept."""
    if requested <= MAX_EVAL_PERIOD_SHARE * budget:
        return requested
    on_grid = math.floor(MAX_EVAL_PERIOD_SHARE * budget / EVAL_PERIOD_GRID_SEC) * EVAL_PERIOD_GRID_SEC
    return min(requested, max(EVAL_PERIOD_GRID_SEC, on_grid))


def targets_from_reruns(
    args: argparse.Namespace,
    workload: CalibratedWorkload,
    winner: Trial,
    sweep: list[Trial],
    reruns: list[Trial],
    dropout_costs: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Step 3 of the rule, from the reruns alone (a pure function of what was measured)."""
    higher = workload.target_metric_higher_is_better
    validation_target = target_quantile([t.best_validation for t in reruns], args.target_quantile, higher)
    met = [
        t
        for t in reruns
        if (t.best_validation >= validation_target if higher else t.best_validation <= validation_target)
    ]
    test_target = min(t.best_test for t in met) if higher else max(t.best_test for t in met)
    budget, by_framework = budget_by_rule(
        args, reruns, met, validation_target, higher, workload.step_hint, dropout_costs
    )
    return {
        "validation_target": round_leniently(validation_target, higher),
        "test_target": round_leniently(test_target, higher),
        "max_allowed_runtime_sec": budget,
        **({BY_FRAMEWORK: by_framework} if by_framework else {}),
        "eval_period_time_sec": capped_eval_period(args.eval_period_sec, budget),
        "step_hint": workload.step_hint,
        "command": recorded_command(args),
        "measured": {
            **measured_here(int(max(t.steps_per_sec for t in reruns) * budget)),
            "submission": winner.submission,
            "point": winner.point,
            "sweep_best_validation": [t.best_validation for t in sweep],
            "reruns": [
                {
                    "framework": t.framework,
                    "seed": t.seed,
                    "best_validation": t.best_validation,
                    "time_to_target": finite_or_none(t.time_to(validation_target, higher)),
                }
                for t in reruns
            ],
        },
    }


def recorded_command(args: argparse.Namespace) -> str:
    """The command line an entry records, so that it can be rerun."""
    return "python -m pytest_algoperf.calibrate " + shlex.join(args.argv)


def measured_here(steps_in_budget: int) -> dict[str, Any]:
    """What every entry's ``measured`` block starts with: the steps in its budget, today, this machine."""
    return {
        "steps_in_budget": steps_in_budget,
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine_info()["processor"],
    }


def finite_or_none(seconds: float) -> float | None:
    """A time for the JSON file: None where the run never met the target (JSON has no infinity)."""
    return seconds if math.isfinite(seconds) else None


def round_leniently(target: float, higher_is_better: bool) -> float:
    """``target`` to 6 decimals, rounded towards the easier side, so that the reruns that met the unrounded
    target still meet the written one (0.42361348, lower is better, becomes 0.423614, not 0.423613)."""
    scaled = target * 1e6
    return (math.floor(scaled) if higher_is_better else math.ceil(scaled)) / 1e6


def target_quantile(best_values: list[float], quantile: float, higher_is_better: bool) -> float:
    """The value that a share ``quantile`` of the reruns fall short of: 0.5 is AlgoPerf's median; 0 is the
    worst rerun's best value, which every rerun meets (our choice where the validation set is small)."""
    return float(np.quantile(best_values, quantile if higher_is_better else 1.0 - quantile))
