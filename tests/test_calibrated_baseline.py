"""The ``baseline`` submission: on each workload, the built-in submission and point whose reruns set that
workload's targets (AlgoPerf's targets come from the best of several baselines, one per workload)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tiny import ONE_THREAD, QUIET_PLUGINS

from algoperf_submissions.baseline import target_setter
from algoperf_submissions.baseline.target_setter import delegate
from pytest_algoperf.submission import load_submission, resolve_submission

BUDGET = {"max_allowed_runtime_sec": 10.0, "eval_period_time_sec": 1.0, "step_hint": 100}
SGD_POINT = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "weight_decay": 0.0005, "warmup_factor": 0.05}


def calibrated(tmp_path: Path, measured: dict) -> SimpleNamespace:
    """A workload whose one calibration entry records ``measured``."""
    path = tmp_path / f"calibration_{len(list(tmp_path.iterdir()))}.json"
    path.write_text(
        json.dumps({"w": {"validation_target": 0.9, "test_target": 0.9, **BUDGET, "measured": measured}})
    )
    return SimpleNamespace(calibration_file=path, calibration_entry="w")


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_each_workload_gets_the_submission_and_point_that_set_its_targets(
    tmp_path: Path, framework: str
) -> None:
    module, point = delegate(
        calibrated(tmp_path, {"submission": "sgd_nesterov", "point": SGD_POINT}), framework
    )
    assert module.__name__ == f"algoperf_submissions.sgd_nesterov.{framework}"
    assert point.learning_rate == 0.05 and point.weight_decay == 0.0005
    # An entry from before entries named their submission was set by adamw; one with no point falls back to
    # adamw's tuned default.
    module, point = delegate(calibrated(tmp_path, {"point": {"learning_rate": 0.001}}), framework)
    assert module.__name__.endswith(f"adamw.{framework}") and point.learning_rate == 0.001
    module, point = delegate(calibrated(tmp_path, {}), framework)
    assert module.__name__.endswith(f"adamw.{framework}") and point.learning_rate == 0.002


def test_it_sizes_its_schedule_as_the_target_setting_runs_did_3_4_of_step_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """So it meets a target where the runs that set it did, at about 3/4 of the budget (AlgoPerf's
    target-setting submissions schedule over 0.75 x step_hint)."""
    seen = {}

    def init_optimizer_state(workload: Any, *args: Any) -> None:
        seen.update(step_hint=workload.step_hint, name=workload.name)

    setter = SimpleNamespace(init_optimizer_state=init_optimizer_state)
    monkeypatch.setattr(target_setter, "delegate", lambda workload, framework: (setter, None))
    init, _ = target_setter.delegating_functions("pytorch")
    init(SimpleNamespace(step_hint=1333, name="ogbg_mini"), None, None, None, None)
    assert seen == {"step_hint": 1000, "name": "ogbg_mini"}  # the rest of the workload is the workload's


def test_it_is_a_valid_built_in_submission_with_the_baselines_batch_sizes() -> None:
    submission = load_submission(resolve_submission("baseline", "pytorch", Path.cwd()))
    assert submission.get_batch_size("criteo1tb_mini", "criteo1tb_mini") == 2048


def test_a_session_of_the_baseline_trains_mnist_with_adamw_which_set_mnists_targets(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        *QUIET_PLUGINS, ONE_THREAD, "--algoperf-submission=baseline", "--algoperf-workloads=mnist",
        "--algoperf-output=out", "--algoperf-eval-every-steps=4",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    (run,) = json.loads((pytester.path / "out" / "results.json").read_text())["runs"]
    assert run["submission"] == "baseline" and run["reached"]
    assert run["hyperparameters"] == {"from_calibration": 1}
