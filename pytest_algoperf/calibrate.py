"""Set a workload's targets and budget from baseline runs (ALGOPERF.md section 7, at our scale).

    python -m pytest_algoperf.calibrate --workload mnist --submission adamw --framework pytorch,jax

1. Sweep: ``--trials`` points of the submission's search space (a list: its first points, the tuned default
   first; ranges: Halton points) train for ``--budget-sec`` with seed 0, without stopping at a target; the
   point with the best validation value wins.
2. Reruns: the winning point trains again with ``--seeds`` seeds in every framework.
3. Validation target = median of the reruns' best validation values (``--target-quantile`` changes the
   share of reruns allowed to fall short: a documented deviation for tiny validation sets); test target =
   the worst of the best test values among the reruns that met it; budget = 4/3 of the slowest
   framework's median time to that target (so the baseline meets it at about 3/4 of the budget);
   step_hint stays the one the runs used (the schedules were sized by it, so the targets hold only with it);
   the steps the fastest framework takes in the budget are recorded beside it, to revise it by hand.
4. The entry is written to the workload's ``calibration.json`` with this command, the machine and the date.

Evaluations are step-based here (``--eval-every-steps``) so the sweep itself is reproducible.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pytest_algoperf.calibration import CalibratedWorkload
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.loop import RunSettings, run_benchmark
from pytest_algoperf.registry import builtin_entries
from pytest_algoperf.reporting.environment import machine_info
from pytest_algoperf.results import RunResult
from pytest_algoperf.search_space import load_search_space
from pytest_algoperf.submission import load_submission, resolve_submission
from pytest_algoperf.tuning import as_hyperparameters


@dataclass(frozen=True)
class Trial:
    framework: str
    seed: int
    best_validation: float
    best_test: float
    steps_per_sec: float
    result: RunResult

    def time_to(self, target: float, higher_is_better: bool) -> float:
        for record in self.result.evals:
            value = record.metrics[f"validation/{self.result.target_metric}"]
            if value >= target if higher_is_better else value <= target:
                return record.score
        return math.inf


def train_without_target(
    workload: CalibratedWorkload,
    spec: str,
    framework: str,
    point: dict[str, Any],
    seed: int,
    args: argparse.Namespace,
) -> Trial:
    """One run over the whole budget: the targets are set out of reach so nothing stops it early."""
    unreachable = math.inf if workload.target_metric_higher_is_better else -math.inf
    workload.calibration = replace(
        workload.calibration, validation_target=unreachable, test_target=unreachable
    )
    submission = load_submission(resolve_submission(spec, framework, Path.cwd()))
    hyperparameters = as_hyperparameters(point)
    result = RunResult("calibration", submission.name, framework, workload.name, seed)
    settings = RunSettings(
        seed,
        hyperparameters,
        budget_sec=args.budget_sec,
        eval_every_steps=args.eval_every_steps,
        threads=args.threads,
    )
    run_benchmark(workload, submission, get_adapter(framework), settings, result)
    better = max if workload.target_metric_higher_is_better else min
    metric = workload.target_metric_name
    return Trial(
        framework,
        seed,
        better(e.metrics[f"validation/{metric}"] for e in result.evals),
        better(e.metrics[f"test/{metric}"] for e in result.evals),
        result.global_step / result.submission_time,
        result,
    )


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    frameworks = args.framework.split(",")
    entry = next(e for e in builtin_entries() if e.name == args.workload)
    workloads = {f: entry.create(f, args.data_dir, "cpu") for f in frameworks}
    first = workloads[frameworks[0]]
    higher = first.target_metric_higher_is_better
    space = load_search_space(
        resolve_submission(args.submission, frameworks[0], Path.cwd()).search_space_path
    )
    points = (
        list(space.fixed_points[: args.trials]) if space.fixed_points else space.points(args.trials, seed=0)
    )
    sweep = []
    for index, point in enumerate(points):
        trial = train_without_target(first, args.submission, frameworks[0], point, 0, args)
        sweep.append((trial.best_validation, index))
        _progress(
            f"sweep point {index + 1}/{len(points)}: best validation {trial.best_validation:.4f} {point}"
        )
    best_index = max(
        range(len(sweep)), key=lambda i: sweep[i][0] if higher else -sweep[i][0]
    )  # first on ties
    point = points[best_index]
    reruns = []
    for framework in frameworks:
        for seed in range(args.seeds):
            trial = train_without_target(workloads[framework], args.submission, framework, point, seed, args)
            reruns.append(trial)
            _progress(
                f"rerun {framework} seed {seed}: best validation {trial.best_validation:.4f}, "
                f"best test {trial.best_test:.4f}, {trial.steps_per_sec:.0f} steps/s"
            )
    validation_target = target_quantile([t.best_validation for t in reruns], args.target_quantile, higher)
    met = [
        t
        for t in reruns
        if (t.best_validation >= validation_target if higher else t.best_validation <= validation_target)
    ]
    test_target = min(t.best_test for t in met) if higher else max(t.best_test for t in met)
    slowest = max(
        statistics.median(t.time_to(validation_target, higher) for t in met if t.framework == f)
        for f in frameworks
        if any(t.framework == f for t in met)
    )
    budget = round(slowest * 4 / 3, 2)
    steps_in_budget = int(max(t.steps_per_sec for t in reruns) * budget)
    return {
        "validation_target": round(validation_target, 6),
        "test_target": round(test_target, 6),
        "max_allowed_runtime_sec": budget,
        "eval_period_time_sec": args.eval_period_sec,
        "step_hint": first.step_hint,
        "command": "python -m pytest_algoperf.calibrate " + shlex.join(sys.argv[1:]),
        "measured": {
            "steps_in_budget": steps_in_budget,
            "date": datetime.now(UTC).date().isoformat(),
            "machine": machine_info()["processor"],
            "point": point,
            "sweep_best_validation": [v for v, _ in sweep],
            "reruns": [
                {
                    "framework": t.framework,
                    "seed": t.seed,
                    "best_validation": t.best_validation,
                    "time_to_target": t.time_to(validation_target, higher),
                }
                for t in reruns
            ],
        },
    }


def target_quantile(best_values: list[float], quantile: float, higher_is_better: bool) -> float:
    """The value that a share ``quantile`` of the reruns fall short of: 0.5 is AlgoPerf's median; 0 is the
    worst rerun's best value, which every rerun meets (our choice where the validation set is small)."""
    return float(np.quantile(best_values, quantile if higher_is_better else 1.0 - quantile))


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_algoperf.calibrate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workload", required=True)
    parser.add_argument("--submission", default="adamw")
    parser.add_argument("--framework", default="pytorch", help="comma list; reruns happen in each")
    parser.add_argument("--budget-sec", type=float, required=True, help="training time of each sweep run")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--trials",
        type=int,
        default=5,
        help="sweep size: the first N fixed points, or N Halton points of ranges",
    )
    parser.add_argument("--eval-every-steps", type=int, default=10)
    parser.add_argument("--eval-period-sec", type=float, required=True, help="eval_period_time_sec to record")
    parser.add_argument(
        "--target-quantile",
        type=float,
        default=0.5,
        help="share of reruns allowed to fall short of the validation target (0.5: the median)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (default 1: steady timings on a machine with other load)",
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--write", action="store_true", help="update the workload's calibration.json")
    args = parser.parse_args(argv)
    frameworks = args.framework.split(",")
    values = calibrate(args)
    print(json.dumps(values, indent=2))
    if args.write:
        workload = next(e for e in builtin_entries() if e.name == args.workload).create(
            frameworks[0], args.data_dir, "cpu"
        )
        path = workload.calibration_file
        document = json.loads(path.read_text())
        document[workload.calibration_entry] = values
        path.write_text(json.dumps(document, indent=2) + "\n")
        _progress(f"wrote {path} entry {workload.calibration_entry!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
