"""A quick hardware profile: a calibrated profile's budgets scaled by the baseline's step rate here.

    python -m pytest_algoperf.calibrate --derive-from cpu-1thread --device cuda --framework pytorch,jax \
        --workload criteo1tb_mini,ogbg_mini --write

For each workload, the point that set its targets (its ``measured`` block) trains ``--derive-steps`` steps in
each framework after a few untimed ones (JAX compiles there), and the fastest framework's steps per second
``r`` is compared with the source profile's calibrated rate ``r0 = steps_in_budget / budget``. The new profile
keeps the steps in the budget and scales the budget and the eval period by ``r0 / r``, so the baseline gets
as many steps, and evals, as where it was calibrated. It is marked ``derived``, with both rates.

Approximate by construction: the rate is the steady one (no first-step compilation, no eval cost), and the
trajectory is assumed the same in steps. Calibrate the profile (``--keep-targets``) for budgets to trust.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_algoperf.calibration import (
    CalibratedWorkload,
    profile_record,
    read_calibration_file,
    with_profile,
)
from pytest_algoperf.calibration_progress import say
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.hardware.profiles import DeviceDescription, HardwareProfile
from pytest_algoperf.loop import RunSettings, Trainer
from pytest_algoperf.reporting.environment import machine_info
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.spec import Workload
from pytest_algoperf.submission import Submission, load_submission, resolve_submission

WARMUP_STEPS = 5


def step_rate(trainer: Trainer, steps: int, warmup: int = WARMUP_STEPS) -> float:
    """Steps per second over ``steps`` steps after ``warmup`` untimed ones, the device synchronised."""
    for _ in range(warmup):
        trainer.step()
    trainer.adapter.synchronize(trainer.outputs)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    trainer.adapter.synchronize(trainer.outputs)
    return steps / (time.perf_counter() - start)


def measure_step_rate(
    workload: Workload, submission: Submission, point: dict[str, Any], args: argparse.Namespace
) -> float:
    """The baseline's steady step rate on ``workload`` (built for one framework and ``--device``)."""
    adapter = get_adapter(submission.source.framework)
    settings = RunSettings(
        seed=0, hyperparameters=as_hyperparameters(point), device=args.device, threads=args.threads
    )
    adapter.activate(args.device, args.threads)
    return step_rate(Trainer.start(workload, submission, adapter, settings), args.derive_steps)


def derived_values(source: HardwareProfile, rate: float, command: str) -> dict[str, Any]:
    """The new profile's numbers, as calibrate's flat values: ``source``'s budget and eval period scaled by
    its calibrated rate over ``rate``, the same steps in the budget."""
    if not source.steps_in_budget:
        raise ValueError(f"profile {source.name} records no calibrated step rate (steps_in_budget)")
    reference = source.steps_in_budget / source.max_allowed_runtime_sec
    scale = reference / rate
    return {
        "max_allowed_runtime_sec": round(source.max_allowed_runtime_sec * scale, 2),
        "eval_period_time_sec": round(source.eval_period_time_sec * scale, 3),
        "command": command,
        "measured": {
            "steps_in_budget": source.steps_in_budget,
            "date": datetime.now(UTC).date().isoformat(),
            "machine": machine_info()["processor"],
        },
        "derived": {
            "from": source.name,
            "reference_steps_per_sec": round(reference, 2),
            "steps_per_sec": round(rate, 2),
            "scale": round(scale, 4),
        },
    }


def derive_workload(
    name: str, args: argparse.Namespace, device: DeviceDescription, command: str
) -> tuple[CalibratedWorkload, dict[str, Any]] | None:
    """The derived profile's values for one workload; None (said why) when it cannot be derived."""
    from pytest_algoperf.calibrate import find_entry

    entry = find_entry(name)
    frameworks = args.framework.split(",")
    workloads = {f: entry.create(f, args.data_dir, args.device) for f in frameworks}
    first = workloads[frameworks[0]]
    if entry.is_variant or not isinstance(first, CalibratedWorkload):
        why = "a variant has its base workload's budget" if entry.is_variant else "no calibration file"
        say(f"{name}: skipped: {why}")
        return None
    values = read_calibration_file(first.calibration_file)[first.calibration_entry]
    profiles = values.get("profiles", {})
    measured = values.get("measured", {})
    if args.derive_from not in profiles or "point" not in measured:
        missing = (
            f"no profile {args.derive_from!r}" if args.derive_from not in profiles else "no calibrated point"
        )
        say(f"{name}: skipped: {missing}")
        return None
    source = HardwareProfile.from_json(args.derive_from, profiles[args.derive_from])
    if not source.steps_in_budget:
        say(f"{name}: skipped: {source.name} records no calibrated step rate; calibrate with --keep-targets")
        return None
    submission_name = measured.get("submission", args.submission.split(",")[0])
    rates = {}
    for framework, workload in workloads.items():
        submission = load_submission(resolve_submission(submission_name, framework, Path.cwd()))
        rates[framework] = measure_step_rate(workload, submission, measured["point"], args)
        say(f"{name}: {framework} {rates[framework]:.1f} steps/s on {device.describe()}")
    return first, derived_values(source, max(rates.values()), command)


def derive(args: argparse.Namespace) -> int:
    """``calibrate --derive-from``: write the derived profile of each ``--workload`` (a comma list)."""
    from pytest_algoperf.calibrate import calibration_device

    device = calibration_device(args, args.framework.split(","))
    profile = args.profile or device.default_profile_name()
    command = "python -m pytest_algoperf.calibrate " + shlex.join(args.argv)
    names = [n for n in args.workload.split(",") if n]
    if args.output is not None and len(names) > 1:
        raise SystemExit(
            "calibrate: --output takes one --workload; leave it out to write each workload's file"
        )
    derived = {}
    for name in names:
        made = derive_workload(name, args, device, command)
        if made is None:
            continue
        workload, values = made
        derived[name] = values
        if args.write:
            path = args.output or workload.calibration_file
            document = read_calibration_file(path if path.is_file() else workload.calibration_file)
            key = workload.calibration_entry
            document[key] = with_profile(document[key], profile, profile_record(values, device))
            path.write_text(json.dumps(document, indent=2) + "\n")
            say(f"wrote {path} entry {key!r}, hardware profile {profile!r} (derived from {args.derive_from})")
    print(json.dumps(derived, indent=2))
    return 0 if derived else 1
