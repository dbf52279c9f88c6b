"""How a search space's points rank as the schedule grows: each point trains one workload by steps over
schedules of several lengths, without a target, and its best validation value is compared at each length.

    python -m pytest_algoperf.validity.horizon --workload ogbg_mini --points nadamw:0,1,3,4 \\
        --points nadamw_cyclic:3,4 --steps 1000,4000 --seeds 0 --output horizon.jsonl

``--lr-factors 2,4`` adds each point with its learning rate multiplied by each factor (labelled
``nadamw[0] lr x4``) and ``--override beta2=0.998`` sets a hyperparameter of every chosen point (labelled
``nadamw[3] beta2=0.998``): whether a point wins by its learning rate or by another setting (VALIDITY.md,
"Which learning rate the mini workloads want"). ``--parameter-scale 8`` trains the workload with its
parameters stored divided by 8 and multiplied back in the forward pass (``frameworks.parameter_scale``; labels
end in ``params x8`` where it is not the workload's own scale): whether AlgoPerf's own learning rates become
the best ones.

A point's schedule is the whole run (``step_hint`` is set to the run's length), with 20 evaluations. The
points of a panel member come from the search space the validity study gives it. Every finished run is
appended to ``--output`` (JSON lines) with the parameter scale it trained at, and a rerun of the command skips
it where the scale is the same, so a long comparison resumes.
Why it matters: AlgoPerf tuned its published points on schedules of 10,000-196,000 steps; a point that wins
on a short schedule may lose on a long one (VALIDITY.md, "How long a schedule is").
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from pytest_algoperf.allocator import keep_freed_memory
from pytest_algoperf.calibrate import find_entry, parse_scale
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.frameworks.parameter_scale import own_parameter_scale, resolved_parameter_scale
from pytest_algoperf.loop import RunSettings, run_benchmark
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.search_space import load_search_space
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.submission import load_submission, resolve_submission
from pytest_algoperf.validity.panel import PANEL

EVALS_PER_RUN = 20


def member_points(spec: str, framework: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``submission:i,j`` as (submission, label, point) for those indices of its search space (the panel's
    for a panel member, else its own)."""
    submission, _, indices = spec.partition(":")
    paths = {m.submission: m.search_space for m in PANEL if m.search_space is not None}
    path = paths.get(submission) or resolve_submission(submission, framework, Path.cwd()).search_space_path
    points = load_search_space(path).fixed_points
    if not points:
        raise SystemExit(f"horizon: {submission}'s search space is not a list of points")
    chosen = [int(i) for i in indices.split(",")] if indices else range(len(points))
    return [(submission, f"{submission}[{i}]", dict(points[i])) for i in chosen]


def with_variations(
    configs: list[tuple[str, str, dict[str, Any]]], lr_factors: list[float], overrides: dict[str, Any]
) -> list[tuple[str, str, dict[str, Any]]]:
    """Each point with ``overrides`` applied, then once per learning-rate factor (a factor of 1 is the point
    itself, unlabelled)."""
    suffix = "".join(f" {key}={value}" for key, value in overrides.items())
    varied = []
    for submission, label, point in configs:
        point = {**point, **overrides}
        if lr_factors != [1] and "learning_rate" not in point:
            raise SystemExit(f"horizon: {label} has no learning_rate to scale by --lr-factors")
        for factor in lr_factors:
            scaled = point if factor == 1 else {**point, "learning_rate": point["learning_rate"] * factor}
            varied.append((submission, label + suffix + ("" if factor == 1 else f" lr x{factor:g}"), scaled))
    return varied


def parse_factors(text: str) -> list[float]:
    """``2,4,8`` as positive learning-rate multipliers."""
    refusal = argparse.ArgumentTypeError(f"--lr-factors takes positive numbers like 2,4,8, got {text!r}")
    try:
        factors = [float(f) for f in text.split(",")]
    except ValueError:
        raise refusal from None
    if not all(f > 0 and math.isfinite(f) for f in factors):
        raise refusal
    return factors


def reusable_records(lines: list[str], parameter_scale: float) -> tuple[list[dict[str, Any]], int]:
    """The records of an output file made at ``parameter_scale``, and how many name no scale. A label says a
    scale only where it is not the workload's own, and a workload's own scale can change with its calibration,
    so a run counts as done only where its record names the scale it trained at."""
    records = [json.loads(line) for line in lines if line.strip()]
    unscaled = sum("parameter_scale" not in r for r in records)
    return [r for r in records if r.get("parameter_scale") == parameter_scale], unscaled


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value``, the value read as JSON (``beta2=0.998``, ``cycles=2``)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"--override takes key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"--override {text!r}: the value is not JSON ({error})") from None


def train_by_steps(
    workload_name: str,
    framework: str,
    submission_name: str,
    point: dict[str, Any],
    steps: int,
    seed: int,
    parameter_scale: float | None = None,
) -> list[tuple[int, float]]:
    """One run of ``steps`` steps over a schedule of the same length; its (step, validation value) curve.
    ``parameter_scale``: the workload's own unless given."""
    workload = find_entry(workload_name).create(framework, None, "cpu", parameter_scale)
    submission = load_submission(resolve_submission(submission_name, framework, Path.cwd()))
    result = RunResult("horizon", submission.name, framework, workload.name, seed)
    settings = RunSettings(
        seed,
        as_hyperparameters(point),
        budget_sec=math.inf,
        eval_every_steps=max(steps // EVALS_PER_RUN, 1),
        threads=1,
        step_budget=steps,
    )
    with workload.without_target(step_hint=steps):
        run_benchmark(workload, submission, get_adapter(framework), settings, result)
    metric = f"validation/{workload.target_metric_name}"
    return [(e.global_step, e.metrics[metric]) for e in result.evals]


def best_value(curve: list[tuple[int, float]], higher_is_better: bool) -> float:
    return (max if higher_is_better else min)(value for _, value in curve)


def table(records: list[dict[str, Any]], higher_is_better: bool) -> list[str]:
    """Best validation value per point (rows) and schedule length (columns), with each column's rank; over
    several seeds, the mean ranks and the seeds' range follows it."""
    steps = sorted({r["steps"] for r in records})
    labels = list(dict.fromkeys(r["label"] for r in records))
    best: dict[tuple[str, int], list[float]] = {}
    for r in records:
        best.setdefault((r["label"], r["steps"]), []).append(best_value(r["curve"], higher_is_better))
    mean = {key: sum(values) / len(values) for key, values in best.items()}
    lines = ["| point | " + " | ".join(f"{s} steps" for s in steps) + " |"]
    lines.append("|---" * (len(steps) + 1) + "|")
    for label in labels:
        cells = []
        for s in steps:
            column = sorted((v for (_, length), v in mean.items() if length == s), reverse=higher_is_better)
            value = mean.get((label, s))
            seeds = best.get((label, s), [])
            spread = f" [{min(seeds):.4f}-{max(seeds):.4f}]" if len(seeds) > 1 else ""
            cells.append("-" if value is None else f"{value:.4f} ({column.index(value) + 1}){spread}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_algoperf.validity.horizon", description=__doc__)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--framework", default="pytorch")
    parser.add_argument("--points", action="append", required=True, help="submission:i,j (repeatable)")
    parser.add_argument("--steps", required=True, help="comma list of schedule lengths")
    parser.add_argument("--seeds", default="0", help="comma list")
    parser.add_argument("--output", type=Path, required=True, help="JSON lines, appended and resumed")
    parser.add_argument(
        "--lr-factors", type=parse_factors, default=[1.0], help="comma list of learning-rate multipliers"
    )
    parser.add_argument("--override", type=parse_override, action="append", default=[], help="key=value")
    parser.add_argument(
        "--parameter-scale",
        type=parse_scale,
        default=None,
        help="store the parameters divided by this and multiply them back in the forward pass (default: the "
        "workload's own scale, from its calibration entry)",
    )
    args = parser.parse_args(argv)
    keep_freed_memory()  # as sessions run
    configs = with_variations(
        [c for spec in args.points for c in member_points(spec, args.framework)],
        args.lr_factors,
        dict(args.override),
    )
    workload = find_entry(args.workload).create(args.framework, None, "cpu")
    scale = resolved_parameter_scale(workload, args.parameter_scale)
    if scale != own_parameter_scale(workload):
        configs = [(s, f"{label} params x{scale:g}", p) for s, label, p in configs]
    higher = workload.target_metric_higher_is_better
    done: list[dict[str, Any]] = []
    if args.output.exists():
        done, unscaled = reusable_records(args.output.read_text().splitlines(), scale)
        if unscaled:
            print(
                f"{args.output}: runs recorded without a parameter scale (written before runs recorded it): "
                f"{unscaled}; they train again rather than count as done",
                flush=True,
            )
    finished = {(r["label"], r["steps"], r["seed"]) for r in done}
    for seed in (int(s) for s in args.seeds.split(",")):
        for steps in (int(s) for s in args.steps.split(",")):
            for submission, label, point in configs:
                if (label, steps, seed) in finished:
                    continue
                curve = train_by_steps(args.workload, args.framework, submission, point, steps, seed, scale)
                record = {
                    "label": label,
                    "steps": steps,
                    "seed": seed,
                    "parameter_scale": scale,
                    "curve": curve,
                }
                with args.output.open("a") as out:
                    out.write(json.dumps(record) + "\n")
                done.append(record)
                print(f"{label} {steps} steps seed {seed}: best {best_value(curve, higher):.4f}", flush=True)
    wanted = {label for _, label, _ in configs}
    print("\n".join(table([r for r in done if r["label"] in wanted], higher)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
