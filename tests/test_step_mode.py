"""Step mode (``--algoperf-schedule=steps``, the default of a gated session): evals every N steps and a
step budget, from the calibrated step rate, so that a seed gives the same trajectory and the same steps to
target on any load, in both frameworks, serially or under pytest-xdist."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tiny import only_run, run_tiny, write_tiny_project

import algoperf_workloads
from pytest_algoperf.calibration import load_calibration
from pytest_algoperf.gate.schedule import StepSchedule, step_schedule, uses_step_mode

WORKLOADS_DIR = Path(next(iter(algoperf_workloads.__path__)))


def workload(**attributes: Any) -> Any:
    defaults = {"max_allowed_runtime_sec": 30.0, "eval_period_time_sec": 3.0, "step_hint": 1000}
    return SimpleNamespace(**{**defaults, **attributes})


def test_the_eval_period_and_budget_become_steps_at_the_calibrated_step_rate() -> None:
    """1040 steps in a 31.55 s budget: an eval every 3 s is every 99 steps, and the budget is 1040 steps."""
    ogbg_like = workload(max_allowed_runtime_sec=31.55, steps_in_budget=1040)
    assert step_schedule(ogbg_like) == StepSchedule(eval_every_steps=99, step_budget=1040)
    assert step_schedule(ogbg_like, budget_factor=1.5) == StepSchedule(99, 1560)  # self-tuning
    # A step cap (--algoperf-max-global-steps) bounds the step budget, as it ends a time-mode run.
    assert step_schedule(ogbg_like, max_global_steps=1000) == StepSchedule(99, 1000)


def test_without_a_measured_rate_the_step_hint_is_the_steps_in_the_budget() -> None:
    assert step_schedule(workload(step_hint=600)) == StepSchedule(eval_every_steps=60, step_budget=600)
    assert step_schedule(workload(eval_period_time_sec=0.0)).eval_every_steps == 1


def test_a_variant_takes_its_base_workloads_step_rate() -> None:
    path = WORKLOADS_DIR / "ogbg_mini" / "calibration.json"
    base = load_calibration(path, "ogbg_mini")
    assert base.steps_in_budget is not None
    assert load_calibration(path, "ogbg_mini_gelu", "ogbg_mini").steps_in_budget == base.steps_in_budget


@pytest.mark.parametrize(
    ("schedule", "gating", "steps"),
    [("auto", True, True), ("auto", False, False), ("steps", False, True), ("time", True, False)],
)
def test_auto_means_steps_in_a_gated_session_only(schedule: str, gating: bool, steps: bool) -> None:
    assert uses_step_mode(schedule, gating) is steps


def test_in_step_mode_the_time_budget_no_longer_stops_a_run(pytester: pytest.Pytester) -> None:
    """A 1 ms budget on the tiny workload: the run goes on to its target within the 200-step budget, and its
    test passes with a warning, while scores count it as missed (its time exceeds the budget)."""
    write_tiny_project(pytester, workload={"max_allowed_runtime_sec": 0.001})
    result = run_tiny(pytester, "--algoperf-schedule=steps")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*tinysgd-pytorch-tiny: met its target at step *, within the step budget of 200, but after *",
            r"tinysgd*tiny*over time budget*",
            "MISSED tiny (tinysgd, pytorch): met only past the time budget (step mode)",
        ]
    )
    assert result.ret == pytest.ExitCode.OK
    run = only_run(pytester)
    assert (run["reached"], run["step_budget"], run["stop_reason"]) == (False, 200, "targets reached")
    assert run["time_to_target"] > run["budget_sec"]


def test_a_run_that_misses_stops_at_the_step_budget(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester, workload={"validation_target_value": 1.01, "step_hint": 30})
    result = run_tiny(pytester, "--algoperf-schedule=steps")
    result.assert_outcomes(failed=1)
    run = only_run(pytester)
    assert (run["global_step"], run["stop_reason"]) == (30, "step budget spent")
    assert run["max_global_steps"] is None  # the step budget is step mode's cap; AlgoPerf's is for time mode


def test_a_step_budget_beyond_step_hint_stops_at_the_step_cap(pytester: pytest.Pytester) -> None:
    """A budget stretched by dropout's cost (VALIDITY.md, rule 2) holds more than step_hint steps at the
    baseline's own step: a gated session's run still completes at step_hint, as a time-mode run does."""
    workload = {"validation_target_value": 1.01, "step_hint": 30, "steps_in_budget": 45}
    write_tiny_project(pytester, workload=workload)
    run_tiny(pytester, "--algoperf-schedule=steps").assert_outcomes(failed=1)
    run = only_run(pytester)
    assert (run["global_step"], run["step_budget"]) == (30, 30)
    # Without the cap (--algoperf-max-global-steps=none) the step budget is the budget's steps.
    run_tiny(pytester, "--algoperf-schedule=steps", "--algoperf-max-global-steps=none")
    run = only_run(pytester)
    assert (run["global_step"], run["step_budget"]) == (45, 45)


def evals_by_run(folder: Path) -> dict[str, list[tuple[int, dict[str, float]]]]:
    runs = json.loads((folder / "results.json").read_text())["runs"]
    return {run["test_id"]: [(e["global_step"], e["metrics"]) for e in run["evals"]] for run in runs}


def test_the_same_seed_gives_the_same_evals_serially_and_under_xdist_in_both_frameworks(
    pytester: pytest.Pytester,
) -> None:
    """mnist in PyTorch and JAX, one thread each: every eval's step and metrics match exactly."""
    pytester.makeini("[pytest]\n")
    common = (
        "-p", "no:cacheprovider", "--algoperf-submission=adamw", "--algoperf-workloads=mnist",
        "--algoperf-framework=pytorch,jax", "--algoperf-schedule=steps", "--algoperf-threads=1",
    )  # fmt: skip
    serial = pytester.runpytest_subprocess(*common, "-p", "no:xdist", "--algoperf-output=serial")
    parallel = pytester.runpytest_subprocess(*common, "-n", "2", "--algoperf-output=parallel")
    serial.assert_outcomes(passed=2)
    parallel.assert_outcomes(passed=2)
    runs = evals_by_run(pytester.path / "serial")
    assert set(runs) == {"adamw-pytorch-mnist", "adamw-jax-mnist"}
    assert runs == evals_by_run(pytester.path / "parallel")
    for evals in runs.values():
        steps = [step for step, _ in evals]
        assert steps[:3] == [1, 13, 25] and len(steps) > 20  # mnist: every 12 steps, the first after step 1
