"""Set a workload's targets and budget from baseline runs (ALGOPERF.md section 7, at our scale).

    python -m pytest_algoperf.calibrate --workload mnist --submission adamw,nadamw --framework pytorch,jax \
        --max-steps 800 --eval-period-sec 0.05 --write

1. Sweep: for each ``--submission``, ``--trials`` points of its search space (a list: its first points, the
   tuned default first; ranges: Halton points) train in the first framework with seed 0 for ``--budget-sec``
   or ``--max-steps``, without stopping at a target; the (submission, point) with the best validation value
   wins (the first on ties). Every run schedules over 3/4 of the entry's step_hint, as AlgoPerf's
   target-setting runs do (``--max-steps`` is that many steps, normally).
2. Reruns: the winner trains again with ``--seeds`` seeds in every framework (its sweep run is the rerun
   with seed 0 in the first framework).
3. Validation target = median of the reruns' best validation values (``--target-quantile`` changes the
   share of reruns allowed to fall short: a documented deviation for tiny validation sets); test target =
   the worst of the best test values among the reruns that met it; budget = 4/3 of the slowest
   framework's median time to that target, so the baseline meets it at about 3/4 of the budget
   (``--budget-quantile 1`` takes each framework's slowest rerun instead of the median; ``--min-budget-sec``
   puts a floor under it), and at least the time of step_hint steps, so that a submission's schedule fits
   (AlgoPerf's step_hint is the steps the baseline can take in the budget), at the winner's step with
   AlgoPerf's baseline dropout of 0.1, measured against its own in each framework (``dropout_cost``: on a CPU
   dropout costs a step up to x1.6, on AlgoPerf's GPUs little); each rerun's time counts at its
   framework's fastest rerun's step rate, since a rerun slowed by another process on its CPU took as many
   steps, not as many seconds; step_hint stays the entry's (the target-setting schedules were sized by it,
   so the targets hold only with it); the steps the fastest framework takes in the budget are recorded. With
   two frameworks, each also gets its own budget by the same rule, with its steps in it (``by_framework``:
   on a CPU where one framework steps slower, one budget cannot put both baselines at 3/4 of it).
4. The entry is written to the workload's ``calibration.json`` (or ``--output``) with this command, the
   machine and the date: the targets shared by all hardware, the budget, eval period and steps in the budget
   under the hardware profile of ``--device`` (``--profile``; default ``cpu-1thread``, ``cuda-nvidia-h200``
   ...). A variant's entry keeps the targets only: its budget is its base workload's, and its runs already
   used the base workload's step_hint.

``--parameter-scale C`` trains the workload with its parameters stored at scale C (``w = C * theta``,
``frameworks.parameter_scale``; default: the scale of its committed entry) and records C with the targets,
which hold only at that scale. The SGD baselines (``--sgd-submissions``) then sweep each point's exact
counterpart there (``sgd_equivalent_point``: learning rate / C**2, weight decay x C**2), the point they were
tuned as.

A profile for other hardware keeps the shared targets: ``--keep-targets`` reruns the committed point (the
entry's ``measured.point``) with ``--seeds`` seeds on ``--device`` and sets only that profile's budget, from
the reruns' times to the committed validation target (step 3's budget rule). ``--derive-from PROFILE`` is the
quick way (``pytest_algoperf.hardware.derive``): it measures the baseline's step rate here and scales that
profile's budget by it, marked as derived.

Evaluations are step-based (``--eval-every-steps``), and ``--max-steps`` makes the runs themselves
independent of the machine's load, so the targets are reproducible; only the budget depends on speed.
Every finished run is saved to a progress file (``--progress``), and a rerun of the same command resumes
where it stopped (with more ``--seeds`` too). ``--quick`` is a smoke-sized calibration (one sweep point, two
seeds) for tests.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_algoperf.allocator import keep_freed_memory
from pytest_algoperf.calibration import (
    BUDGET_KEYS,
    PARAMETER_SCALE,
    CalibratedWorkload,
    calibrated_entry,
    profile_record,
    read_calibration_file,
    target_setter,
    with_profile,
)
from pytest_algoperf.calibration_progress import Counter, Progress, Trial, say
from pytest_algoperf.calibration_rule import budget_for_targets, targets_from_reruns
from pytest_algoperf.dropout_cost import BASELINE_DROPOUT_RATE, dropout_step_cost
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.frameworks.parameter_scale import resolved_parameter_scale, sgd_equivalent_point
from pytest_algoperf.hardware.profiles import DeviceDescription
from pytest_algoperf.hardware.selection import describe_calibration_device
from pytest_algoperf.loop import RunSettings, run_benchmark
from pytest_algoperf.registry import WorkloadEntry, builtin_entries
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.search_space import load_search_space
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.submission import load_submission, resolve_submission

DEFAULT_PROGRESS_DIR = Path(".algoperf_calibration")
# The arguments that change what a run measures: a progress file made with other values is not resumed.
# Not --seeds: each rerun is keyed by its seed, so a calibration can grow by seeds and keep the runs it has.
RUN_ARGUMENTS = (
    "workload",
    "submission",
    "framework",
    "trials",
    "budget_sec",
    "max_steps",
    "eval_every_steps",
    "threads",
    "data_dir",
    "device",
    "keep_targets",
    "parameter_scale",
    "sgd_submissions",
)


def train_without_target(
    workload: CalibratedWorkload,
    submission_name: str,
    framework: str,
    point: dict[str, Any],
    seed: int,
    args: argparse.Namespace,
) -> Trial:
    """One run over the whole budget or step count, with the targets out of reach so nothing stops it and the
    schedule AlgoPerf's target-setting runs use, 3/4 of step_hint (``target_setting_steps``)."""
    submission = load_submission(resolve_submission(submission_name, framework, Path.cwd()))
    result = RunResult("calibration", submission.name, framework, workload.name, seed)
    settings = RunSettings(
        seed,
        as_hyperparameters(point),
        data_dir=args.data_dir,
        budget_sec=math.inf if args.max_steps else args.budget_sec,
        eval_every_steps=args.eval_every_steps,
        threads=args.threads,
        step_budget=args.max_steps,
        device=args.device,
    )
    with workload.without_target():
        run_benchmark(workload, submission, get_adapter(framework), settings, result)
    better = max if workload.target_metric_higher_is_better else min
    metric = workload.target_metric_name
    return Trial(
        submission_name,
        framework,
        point,
        seed,
        better(e.metrics[f"validation/{metric}"] for e in result.evals),
        better(e.metrics[f"test/{metric}"] for e in result.evals),
        result.global_step / result.submission_time,
        [(e.score, e.metrics[f"validation/{metric}"]) for e in result.evals],
    )


def sweep_points(
    submissions: list[str],
    framework: str,
    trials: int,
    parameter_scale: float = 1.0,
    sgd_submissions: frozenset[str] = frozenset(),
) -> list[tuple[str, dict[str, Any]]]:
    """(submission, point) pairs in sweep order: each submission's first ``trials`` points, an SGD
    baseline's as their counterparts at ``parameter_scale``."""
    pairs = []
    for name in submissions:
        space = load_search_space(resolve_submission(name, framework, Path.cwd()).search_space_path)
        points = list(space.fixed_points[:trials]) if space.fixed_points else space.points(trials, seed=0)
        if name in sgd_submissions and parameter_scale != 1:
            points = [sgd_equivalent_point(point, parameter_scale) for point in points]
        pairs.extend((name, point) for point in points)
    return pairs


def calibrate(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    frameworks = args.framework.split(",")
    entry = find_entry(args.workload)
    workloads = {f: entry.create(f, args.data_dir, args.device, args.parameter_scale) for f in frameworks}
    first = workloads[frameworks[0]]
    higher = first.target_metric_higher_is_better
    scale = resolved_parameter_scale(first, args.parameter_scale)
    if args.keep_targets:  # the committed point alone: its run is the first framework's seed-0 rerun
        committed = first.calibration
        candidates = [committed_point(first)]
    else:
        candidates = sweep_points(
            args.submission.split(","),
            frameworks[0],
            args.trials,
            scale,
            frozenset(args.sgd_submissions.split(",")),
        )
    total = len(candidates) + args.seeds * len(frameworks)
    counter = Counter(total)

    sweep = []
    for index, (name, point) in enumerate(candidates):
        key = f"sweep/{name}/{index}"
        train = functools.partial(train_without_target, first, name, frameworks[0], point, 0, args)
        trial = progress.run(key, train)
        sweep.append(trial)
        counter.say(f"sweep {name} point {index + 1}: best validation {trial.best_validation:.4f} {point}")
    winner = max(sweep, key=lambda t: t.best_validation if higher else -t.best_validation)  # first on ties

    reruns = []
    for framework in frameworks:
        for seed in range(args.seeds):
            key = f"rerun/{winner.submission}/{sweep.index(winner)}/{framework}/{seed}"
            train = functools.partial(
                train_without_target,
                workloads[framework],
                winner.submission,
                framework,
                winner.point,
                seed,
                args,
            )
            if framework == frameworks[0] and seed == 0:  # the sweep ran this very run
                train = functools.partial(replace, winner)
            trial = progress.run(key, train)
            reruns.append(trial)
            counter.say(
                f"rerun {framework} seed {seed}: best validation {trial.best_validation:.4f}, "
                f"best test {trial.best_test:.4f}, {trial.steps_per_sec:.0f} steps/s"
            )
    costs = {  # a variant keeps its base workload's budget: nothing to stretch
        framework: progress.measure(
            f"dropout_step_cost/{framework}",
            functools.partial(winner_dropout_step_cost, workloads[framework], framework, winner, args),
        )
        for framework in ([] if first.is_variant else frameworks)
    }
    if costs:
        measured = ", ".join(f"x{cost} in {framework}" for framework, cost in costs.items())
        say(f"a step with dropout {BASELINE_DROPOUT_RATE} takes {measured}")
    if args.keep_targets:
        return budget_for_targets(args, first, reruns, committed.validation_target, costs)
    values = targets_from_reruns(args, first, winner, sweep, reruns, costs)
    return {**values, PARAMETER_SCALE: scale} if scale != 1 else values


def winner_dropout_step_cost(
    workload: CalibratedWorkload, framework: str, winner: Trial, args: argparse.Namespace
) -> float:
    """``dropout_cost.dropout_step_cost`` of the target-setting point, in ``framework``."""
    submission = load_submission(resolve_submission(winner.submission, framework, Path.cwd()))
    if args.quick:  # a smoke test: one short round
        return dropout_step_cost(workload, submission, winner.point, args, rounds=1, block_sec=0.05)
    return dropout_step_cost(workload, submission, winner.point, args)


def committed_point(workload: CalibratedWorkload) -> tuple[str, dict[str, Any]]:
    """The (submission, point) that set the entry's targets, as its ``measured`` block records them."""
    setter = target_setter(workload.calibration_file, workload.calibration_entry)
    if setter is None:
        raise SystemExit(
            f"calibrate: {workload.calibration_file} entry {workload.calibration_entry!r} records no "
            "calibrated point (measured.point): calibrate its targets first, without --keep-targets"
        )
    return setter


def find_entry(name: str) -> WorkloadEntry:
    entries = {e.name: e for e in builtin_entries()}
    if name not in entries:
        raise SystemExit(f"calibrate: unknown workload {name!r}; built-in ones: {', '.join(sorted(entries))}")
    return entries[name]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_algoperf.calibrate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workload", required=True, help="with --derive-from: a comma list")
    parser.add_argument("--submission", default="adamw", help="comma list; each one's points are swept")
    parser.add_argument("--framework", default="pytorch", help="comma list; reruns happen in each")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--budget-sec", type=float, help="training time of each run")
    length.add_argument(
        "--max-steps",
        type=int,
        help="training steps of each run instead: the targets then do not depend on the machine's load",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--trials", type=int, default=5, help="sweep size per submission: its first N fixed or Halton points"
    )
    parser.add_argument("--eval-every-steps", type=int, default=10)
    parser.add_argument("--eval-period-sec", type=float, help="eval_period_time_sec to record")
    parser.add_argument(
        "--target-quantile",
        type=float,
        default=0.5,
        help="share of reruns allowed to fall short of the validation target (0.5: the median)",
    )
    parser.add_argument(
        "--budget-quantile",
        type=float,
        default=0.5,
        help="which rerun time to target the budget is 4/3 of, per framework (0.5: AlgoPerf's median; "
        "1: the slowest rerun that met the target)",
    )
    parser.add_argument(
        "--min-budget-sec",
        type=float,
        default=0.0,
        help="a floor under the budget, for dev workloads whose time to target is too short to absorb "
        "compilation or communication (mnist: 10, as AlgoPerf gives its mnist a budget far above need)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads (default 1: steady timings beside other load)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the runs train")
    parser.add_argument(
        "--profile", help="the hardware profile to write (default: named after the device, cpu-1thread ...)"
    )
    parser.add_argument(
        "--keep-targets",
        action="store_true",
        help="keep the committed targets and write only this device's profile (its budget against them)",
    )
    parser.add_argument(
        "--derive-from",
        metavar="PROFILE",
        help="derive this device's profile from PROFILE's by the baseline's step rate here (a quick start)",
    )
    parser.add_argument(
        "--derive-steps",
        type=int,
        default=50,
        help="with --derive-from: timed steps per framework (default 50)",
    )
    parser.add_argument(
        "--parameter-scale",
        type=parse_scale,
        default=None,
        help="store the parameters divided by this and multiply them back in the forward pass; recorded with "
        "the targets (default: the committed entry's scale)",
    )
    parser.add_argument(
        "--sgd-submissions",
        default="sgd_nesterov,momentum",
        help="comma list: the swept submissions whose points are SGD's, mapped to their exact counterparts "
        "at the parameter scale (default: the built-in SGD baselines)",
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="one sweep point and two seeds: a smoke test")
    parser.add_argument(
        "--progress",
        type=Path,
        default=None,
        help="progress file to resume from (default: .algoperf_calibration/W.json)",
    )
    parser.add_argument("--write", action="store_true", help="update the workload's calibration.json")
    parser.add_argument("--output", type=Path, default=None, help="with --write: write this file instead")
    args = parser.parse_args(argv)
    if not args.derive_from:
        if args.budget_sec is None and args.max_steps is None:
            parser.error("one of the arguments --budget-sec --max-steps is required")
        if args.eval_period_sec is None:
            parser.error("the following arguments are required: --eval-period-sec")
    if args.quick:
        args.trials, args.seeds = 1, 2
    args.argv = argv
    args.progress = args.progress or DEFAULT_PROGRESS_DIR / f"{args.workload}.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    keep_freed_memory()  # steps timed as the sessions it calibrates for time them (--derive-from too)
    if args.derive_from:
        from pytest_algoperf.hardware.derive import derive

        return derive(args)
    entry = find_entry(args.workload)
    frameworks = args.framework.split(",")
    device = calibration_device(args, frameworks)
    workload = entry.create(frameworks[0], args.data_dir, args.device)
    path = args.output or workload.calibration_file
    document = _document_to_write(args, workload, path)
    name = workload.calibration_entry
    if (
        args.write
        and not args.keep_targets
        and args.device != "cpu"
        and "validation_target" in document.get(name, {})
    ):
        raise SystemExit(
            f"calibrate: {path} entry {name!r} has targets, which all hardware shares; add --keep-targets to "
            f"write only the {args.device} profile's budget against them (or --output elsewhere)"
        )
    if args.keep_targets and args.parameter_scale not in (None, workload.parameter_scale):
        raise SystemExit(
            f"calibrate: {name}'s targets were set at parameter scale {workload.parameter_scale:g}: with "
            "--keep-targets leave out --parameter-scale (or recalibrate the targets at "
            f"{args.parameter_scale:g})"
        )
    if args.keep_targets and workload.is_variant:
        raise SystemExit(
            f"calibrate: {name} is a variant: its budget is {workload.base_name}'s; calibrate that"
        )
    progress = Progress(args.progress, {name: getattr(args, name) for name in RUN_ARGUMENTS})
    values = calibrate(args, progress)
    print(json.dumps(values, indent=2))
    if args.write:
        profile = args.profile or device.default_profile_name()
        if workload.is_variant:  # a variant keeps its base workload's budget (calibration.BUDGET_KEYS)
            document[name] = {key: value for key, value in values.items() if key not in BUDGET_KEYS}
        elif args.keep_targets:
            document[name] = with_profile(document[name], profile, profile_record(values, device))
        else:
            document[name] = calibrated_entry(values, document.get(name), profile, device)
            others = [p for p in document[name]["profiles"] if p != profile]
            if others:
                say(
                    f"profiles {', '.join(others)} were measured against the previous targets: recalibrate "
                    "them with --keep-targets"
                )
        path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
        say(f"wrote {path} entry {name!r}, hardware profile {profile!r}")
    return 0


def parse_scale(text: str) -> float:
    """A positive parameter scale (``--parameter-scale``)."""
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not (scale > 0 and math.isfinite(scale)):
        raise argparse.ArgumentTypeError(f"--parameter-scale takes a positive number like 8, got {text!r}")
    return scale


def calibration_device(args: argparse.Namespace, frameworks: list[str]) -> DeviceDescription:
    """The device the runs train on, as a profile describes it; a clear exit when it is not there."""
    for framework in frameworks:
        try:
            get_adapter(framework).select_device(args.device)
        except (ValueError, ImportError) as error:
            raise SystemExit(f"calibrate: --device {args.device}: {error}") from None
    try:
        return describe_calibration_device(args.device, args.threads, frameworks)
    except ValueError as error:
        raise SystemExit(f"calibrate: {error}") from None


def _document_to_write(args: argparse.Namespace, workload: CalibratedWorkload, path: Path) -> dict[str, Any]:
    """The file's entries; a new ``--output`` file starts empty, or (adding a profile) from the workload's."""
    if path.is_file():
        return read_calibration_file(path)
    return read_calibration_file(workload.calibration_file) if args.keep_targets else {}


if __name__ == "__main__":
    raise SystemExit(main())
