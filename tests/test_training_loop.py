"""The timed training loop end to end: whole pytest sessions benchmarking the tiny submission on the tiny
workload (ALGOPERF.md section 3), and what they report, write and decide."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
from tiny import (
    TinyWorkload,
    conftest_source,
    is_finite,
    load_tiny_submission,
    only_run,
    read_results,
    run_tiny,
    tiny_hyperparameters,
    write_submission,
    write_tiny_project,
)

from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.loop import RunSettings, run_benchmark
from pytest_algoperf.reporting.files import CLOCK_COLUMNS
from pytest_algoperf.results import RunResult

TRIAL_FOLDER = Path("out/experiments/tinysgd/study_0/tiny_pytorch/trial_1")


def read_eval_measurements(pytester: pytest.Pytester) -> tuple[list[str], list[dict[str, str]]]:
    with (pytester.path / TRIAL_FOLDER / "eval_measurements.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_tiny_workload_reaches_its_target_and_the_summary_row_says_yes(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    result = run_tiny(pytester)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines(
        [r"=+ algoperf summary =+", r"tinysgd\s+pytorch\s+tiny\s+yes\s+\d+\.\d+s\s+\d+"]
    )


def test_results_json_holds_the_run_with_times_steps_evals_hyperparameters_and_environment(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    run_tiny(pytester).assert_outcomes(passed=1)
    document = read_results(pytester)
    run = only_run(pytester)
    assert run["test_id"] == "tinysgd-pytorch-tiny"
    assert run["reached"] is True
    assert run["stop_reason"] == "targets reached"
    assert is_finite(run["time_to_target"]) and run["time_to_target"] > 0
    assert run["steps_to_target"] == run["evals"][-1]["global_step"]
    assert run["num_evals"] == len(run["evals"]) >= 2
    assert run["evals"][-1]["metrics"]["validation/accuracy"] >= TinyWorkload.validation_target_value
    assert run["hyperparameters"] == {"learning_rate": 0.2}
    assert run["batch_size"] == 32
    assert {"hostname", "platform", "cpu_count", "python"} <= set(document["machine"])
    assert {"pytest", "numpy", "torch"} <= set(document["software"])
    assert document["session"]["seed"] == 0


def test_eval_measurements_csv_has_algoperf_columns_and_one_row_per_eval(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    run_tiny(pytester).assert_outcomes(passed=1)
    columns, rows = read_eval_measurements(pytester)
    assert tuple(columns[: len(CLOCK_COLUMNS)]) == (
        "accumulated_eval_time",
        "accumulated_logging_time",
        "accumulated_submission_time",
        "global_step",
        "preemption_count",
        "score",
        "total_duration",
    )
    splits = ("train", "validation", "test")
    assert set(columns[len(CLOCK_COLUMNS) :]) == {f"{s}/{m}" for s in splits for m in ("accuracy", "loss")}
    run = only_run(pytester)
    assert [int(row["global_step"]) for row in rows] == [e["global_step"] for e in run["evals"]]
    assert all(row["preemption_count"] == "0" for row in rows)
    assert all(row["score"] == row["accumulated_submission_time"] for row in rows)
    for name in ("hparams.json", "meta_data.json"):
        assert (pytester.path / TRIAL_FOLDER / name).is_file()


def test_eval_measurements_csv_orders_metrics_train_then_validation_then_test(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    run_tiny(pytester).assert_outcomes(passed=1)
    columns, _ = read_eval_measurements(pytester)
    splits = [name.split("/")[0] for name in columns[len(CLOCK_COLUMNS) :]]
    assert splits == sorted(splits, key=["train", "validation", "test"].index)


def test_eval_time_is_excluded_from_submission_time(pytester: pytest.Pytester) -> None:
    """Each eval sleeps 0.1 s: the evals' accumulated time grows by at least that per eval, while the
    submission time (the score) stays far below the summed sleep."""
    sleep = 0.1
    write_tiny_project(pytester, workload={"eval_sleep_sec": sleep})
    run_tiny(pytester, "--algoperf-eval-every-steps=5").assert_outcomes(passed=1)
    run = only_run(pytester)
    summed_sleep = sleep * run["num_evals"]
    assert run["num_evals"] >= 3
    assert run["time_to_target"] < summed_sleep / 2
    assert run["submission_time"] < summed_sleep / 2
    assert run["eval_time"] >= summed_sleep
    _, rows = read_eval_measurements(pytester)
    eval_times = [float(row["accumulated_eval_time"]) for row in rows]
    assert eval_times[0] >= sleep
    assert all(later - earlier >= sleep for earlier, later in itertools.pairwise(eval_times))
    assert float(rows[-1]["score"]) < summed_sleep / 2


def test_the_same_seed_gives_the_same_steps_to_target(pytester: pytest.Pytester) -> None:
    """With AlgoPerf's time-based eval period, which steps get evaluated depends on how fast the machine
    runs, so steps to target would vary between sessions. ``--algoperf-eval-every-steps=1`` makes the eval
    points step-based; with the seed fixing data order and init, two sessions then agree step for step."""
    write_tiny_project(pytester, workload={"eval_period_time_sec": 0.05})
    sessions = []
    for _ in range(2):
        run_tiny(pytester, "--algoperf-eval-every-steps=1", "--algoperf-seed=3").assert_outcomes(passed=1)
        sessions.append(only_run(pytester))
    first, second = sessions
    assert first["seed"] == second["seed"]
    assert first["steps_to_target"] == second["steps_to_target"]
    assert [e["global_step"] for e in first["evals"]] == list(range(1, first["steps_to_target"] + 1))
    accuracies = [[e["metrics"]["validation/accuracy"] for e in run["evals"]] for run in sessions]
    assert accuracies[0] == accuracies[1]


def test_an_unreachable_target_fails_naming_the_workload_the_best_value_and_the_target(
    pytester: pytest.Pytester,
) -> None:
    budget_only = {"validation_target_value": 1.01, "max_allowed_runtime_sec": 0.2, "step_hint": 10**6}
    write_tiny_project(pytester, workload=budget_only)  # no step cap within reach: the budget ends the run
    result = run_tiny(pytester, "--algoperf-eval-every-steps=10")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    run = only_run(pytester)
    assert run["reached"] is False
    assert run["time_to_target"] is None
    assert run["stop_reason"] == "budget spent"
    best = f"{run['best_validation']:.4f}"
    result.stdout.fnmatch_lines(
        [f"*tiny: validation/accuracy reached {best}, target >= 1.01; *budget was spent*"]
    )
    result.stdout.re_match_lines([r"tinysgd\s+pytorch\s+tiny\s+no\s+-\s+-"])


def test_training_complete_error_ends_training_with_one_final_eval(pytester: pytest.Pytester) -> None:
    """The submission raises TrainingCompleteError in its fifth update (global_step 4): that step still
    counts, one final eval follows at step 5, and nothing runs after it."""
    write_tiny_project(pytester, complete_at_step=4)
    result = run_tiny(pytester, "--algoperf-eval-every-steps=100")
    run = only_run(pytester)
    assert run["stop_reason"] == "training complete"
    assert [e["global_step"] for e in run["evals"]] == [1, 5]
    assert run["global_step"] == 5
    result.assert_outcomes(failed=1)  # step 5 is far too early to meet the target
    result.stdout.fnmatch_lines(["*the submission ended training (TrainingCompleteError) after 5 steps*"])


def test_nan_losses_are_reported_as_diverged(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester, nan_from_step=2)
    result = run_tiny(pytester, "--algoperf-eval-every-steps=1")
    result.assert_outcomes(failed=1)
    run = only_run(pytester)
    assert run["stop_reason"] == "diverged"
    assert run["reached"] is False
    # The update at global_step 2 makes the parameters NaN; the eval after it (step 3) sees a NaN loss,
    # which results.json stores as null, and the run stops there instead of burning its budget.
    assert run["evals"][-1]["global_step"] == 3
    assert run["evals"][-1]["metrics"]["validation/loss"] is None
    result.stdout.fnmatch_lines(["*the run diverged*"])
    result.stdout.re_match_lines([r"tinysgd\s+pytorch\s+tiny\s+diverged"])


def test_an_exception_in_update_params_fails_only_its_own_test_and_is_recorded(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    write_submission(pytester.path, "broken", raise_at_step=2)
    result = run_tiny(pytester, "--algoperf-submission=broken")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED algoperf::broken-pytorch-tiny*"])
    runs = {run["submission"]: run for run in read_results(pytester)["runs"]}
    assert runs["tinysgd"]["reached"] is True
    broken = runs["broken"]
    assert broken["stop_reason"] == "error"
    assert broken["error"] == "RuntimeError: tinysgd fails on purpose at step 2"
    assert [e["global_step"] for e in broken["evals"]] == [1, 2]  # evals before the error are kept
    result.stdout.re_match_lines([r"broken\s+pytorch\s+tiny\s+error"])


class UnreachableTinyWorkload(TinyWorkload):
    validation_target_value = 1.01


def test_the_budget_is_checked_only_at_eval_points(tmp_path: Path) -> None:
    """Steps between evals may overrun the budget; the run stops at the first eval point past it, without
    evaluating there, so every recorded score is under the budget and the final step is an eval point."""
    budget, every = 0.2, 25
    result = RunResult("tiny-budget", "tinysgd", "pytorch", "tiny", seed=0)
    run_benchmark(
        UnreachableTinyWorkload(),
        load_tiny_submission(tmp_path),
        get_adapter("pytorch"),
        RunSettings(
            seed=0, hyperparameters=tiny_hyperparameters(), budget_sec=budget, eval_every_steps=every
        ),
        result,
    )
    assert result.stop_reason == "budget spent"
    assert result.submission_time >= budget
    assert all(record.score < budget for record in result.evals)
    assert (result.global_step - 1) % every == 0  # steps 1, 26, 51 ... are the eval points
    assert result.global_step > result.evals[-1].global_step


def test_training_completes_at_max_global_steps_with_an_eval_at_that_step(tmp_path: Path) -> None:
    """AlgoPerf's --max_global_steps: the step that reaches it completes training, an eval follows there
    however recent the last one was, and the rest of the time budget goes unused."""
    result = RunResult("tiny-cap", "tinysgd", "pytorch", "tiny", seed=0)
    run_benchmark(
        UnreachableTinyWorkload(),
        load_tiny_submission(tmp_path),
        get_adapter("pytorch"),
        RunSettings(
            seed=0,
            hyperparameters=tiny_hyperparameters(),
            budget_sec=60.0,
            eval_every_steps=25,
            max_global_steps=30,
        ),
        result,
    )
    assert result.stop_reason == "max_global_steps reached"
    assert [record.global_step for record in result.evals] == [1, 26, 30]
    assert (result.global_step, result.max_global_steps) == (30, 30)
    assert result.submission_time < 60.0


@pytest.mark.parametrize(("option", "steps"), [(None, 30), ("--algoperf-max-global-steps=12", 12)])
def test_a_session_ends_training_at_the_step_hint_as_algoperfs_scoring_runs_do(
    pytester: pytest.Pytester, option: str | None, steps: int
) -> None:
    write_tiny_project(pytester, workload={"validation_target_value": 1.01, "step_hint": 30})
    result = run_tiny(pytester, "--algoperf-eval-every-steps=100", *([option] if option else []))
    result.assert_outcomes(failed=1)
    run = only_run(pytester)
    assert (run["global_step"], run["max_global_steps"]) == (steps, steps)
    assert run["stop_reason"] == "max_global_steps reached"
    assert [e["global_step"] for e in run["evals"]] == [1, steps]
    result.stdout.fnmatch_lines(
        [f"*completed at max_global_steps ({steps}, --algoperf-max-global-steps) after {steps} steps*"]
    )


def test_without_a_step_cap_only_the_budget_or_the_targets_end_a_run(pytester: pytest.Pytester) -> None:
    write_tiny_project(
        pytester, workload={"validation_target_value": 1.01, "step_hint": 5, "max_allowed_runtime_sec": 0.3}
    )
    run_tiny(pytester, "--algoperf-max-global-steps=none", "--algoperf-eval-every-steps=10")
    run = only_run(pytester)
    assert run["stop_reason"] == "budget spent"
    assert run["max_global_steps"] is None
    assert run["global_step"] > 5


RECORDING_HOOKS = """

def pytest_algoperf_eval(result, record):
    with open("evals.txt", "a") as handle:
        handle.write(f"{result.test_id} {record.global_step}\\n")


def pytest_algoperf_run_finished(config, result):
    with open("finished.txt", "a") as handle:
        handle.write(f"{result.test_id} {result.reached} {result.num_evals}\\n")
"""


def test_conftest_hooks_see_every_eval_and_every_finished_run(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    pytester.makeconftest(conftest_source() + RECORDING_HOOKS)
    run_tiny(pytester).assert_outcomes(passed=1)
    run = only_run(pytester)
    evals = (pytester.path / "evals.txt").read_text().splitlines()
    assert evals == [f"tinysgd-pytorch-tiny {e['global_step']}" for e in run["evals"]]
    finished = (pytester.path / "finished.txt").read_text().splitlines()
    assert finished == [f"tinysgd-pytorch-tiny True {run['num_evals']}"]
