"""The regression gate: ``--algoperf-save-baseline`` records times to target, ``--algoperf-baseline``
compares a later session with them and fails it when a run got slower than the tolerance allows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import (
    TINY_LEARNING_RATE,
    assert_usage_error,
    read_results,
    run_tiny,
    write_submission,
    write_tiny_project,
)

from pytest_algoperf.baseline import FORMAT, Baseline, BaselineEntry, compare, load_baseline, save_baseline
from pytest_algoperf.results import RunResult

# Both sessions evaluate on the same step-based schedule, so steps to target are deterministic and gated
# too; times are compared with the default noise floor (--algoperf-tolerance-sec=1), which absorbs the
# millisecond jitter of tiny runs.
STEP_SCHEDULE = "--algoperf-eval-every-steps=10"
BUDGET = {"max_allowed_runtime_sec": 0.5}


@pytest.fixture
def baseline(pytester: pytest.Pytester) -> Path:
    """A baseline saved from a session of the tiny submission on the tiny workload."""
    write_tiny_project(pytester, workload=BUDGET)
    run_tiny(pytester, STEP_SCHEDULE, "--algoperf-save-baseline=baseline.json").assert_outcomes(passed=1)
    return pytester.path / "baseline.json"


def test_a_saved_baseline_records_time_and_steps_to_target(pytester: pytest.Pytester, baseline: Path) -> None:
    document = json.loads(baseline.read_text())
    assert document["format"] == FORMAT
    run = read_results(pytester)["runs"][0]
    assert document["entries"] == {
        "tinysgd/pytorch/tiny": {
            "submission": "tinysgd",
            "framework": "pytorch",
            "workload": "tiny",
            "reached": True,
            "time_to_target": run["time_to_target"],
            "steps_to_target": run["steps_to_target"],
            "eval_every_steps": 10,
        }
    }


def test_the_same_submission_against_its_baseline_passes_and_is_marked_ok(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    result = run_tiny(pytester, f"--algoperf-baseline={baseline}", STEP_SCHEDULE)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.re_match_lines(
        [r".*vs baseline$", r"tinysgd\s+pytorch\s+tiny\s+yes.*\sok: .*x the baseline's"]
    )
    result.stdout.fnmatch_lines(["baseline *baseline.json: 0 regressed, tolerance 20% + 1 s"])
    assert "REGRESSED" not in result.stdout.str()


def test_a_slower_submission_against_the_baseline_fails_the_session_as_regressed(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    """A copy of the submission with a learning rate 100x smaller needs about 100x the steps: it misses the
    target within the budget, or, on a very fast machine, meets it after far more steps than the baseline.
    A baseline holding one submission is the reference for whichever submission runs against it."""
    write_submission(pytester.path, "tinysgd_slow", learning_rate=TINY_LEARNING_RATE / 100)
    result = run_tiny(pytester, f"--algoperf-baseline={baseline}", STEP_SCHEDULE, submission="tinysgd_slow")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["REGRESSED tiny (tinysgd_slow-pytorch-tiny): *"])
    result.stdout.fnmatch_lines(["baseline *: 1 regressed, tolerance 20% + 1 s"])


def test_a_run_without_a_baseline_entry_is_new_and_does_not_fail(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    other = {"submission": "adamw", "framework": "pytorch", "workload": "mnist"}
    entry = {**other, "reached": True, "time_to_target": 0.4, "steps_to_target": 400}
    document = {"format": FORMAT, "version": 1, "entries": {"adamw/pytorch/mnist": entry}}
    (pytester.path / "baseline.json").write_text(json.dumps(document))
    result = run_tiny(pytester, "--algoperf-baseline=baseline.json")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["new: tinysgd-pytorch-tiny has no baseline entry"])
    result.stdout.re_match_lines([r"tinysgd\s+pytorch\s+tiny\s+yes.*\snew: "])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"format": "something-else", "version": 1, "entries": {}}), "is not a pytest-algoperf"),
        (json.dumps({"format": FORMAT, "version": 99, "entries": {}}), "has version 99, expected 1"),
        (json.dumps({"format": FORMAT, "version": 1, "entries": {"a/b/c": {}}}), "has a malformed entry"),
    ],
    ids=["not-json", "wrong-format", "wrong-version", "malformed-entry"],
)
def test_a_corrupted_baseline_is_a_usage_error_and_nothing_trains(
    pytester: pytest.Pytester, content: str, problem: str
) -> None:
    write_tiny_project(pytester)
    path = pytester.path / "baseline.json"
    path.write_text(content)
    result = run_tiny(pytester, "--algoperf-baseline=baseline.json")
    assert_usage_error(
        result, "--algoperf-baseline", str(path), problem, "re-create it with --algoperf-save-baseline"
    )
    assert not (pytester.path / "out").exists()


def test_a_missing_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    result = run_tiny(pytester, "--algoperf-baseline=nowhere.json")
    assert_usage_error(result, str(pytester.path / "nowhere.json"), "does not exist")


# ---- baseline.compare on hand-made results ------------------------------------------------------------


def make_result(
    reached: bool = True,
    time: float | None = 2.0,
    submission: str = "sgd",
    steps: int = 10,
    eval_every_steps: int | None = None,
) -> RunResult:
    return RunResult(
        test_id=f"{submission}-pytorch-tiny",
        submission=submission,
        framework="pytorch",
        workload="tiny",
        seed=0,
        eval_every_steps=eval_every_steps,
        reached=reached,
        time_to_target=time if reached else None,
        steps_to_target=steps if reached else None,
    )


def make_baseline(*entries: BaselineEntry) -> Baseline:
    return Baseline(Path("baseline.json"), {f"{e.submission}/{e.framework}/{e.workload}": e for e in entries})


def entry(
    submission: str = "sgd",
    reached: bool = True,
    time: float | None = 2.0,
    steps: int = 10,
    eval_every_steps: int | None = None,
) -> BaselineEntry:
    return BaselineEntry(
        submission,
        "pytorch",
        "tiny",
        reached,
        time if reached else None,
        steps if reached else None,
        eval_every_steps,
    )


@pytest.mark.parametrize(
    ("time", "status"),
    [(1.0, "ok"), (2.0, "ok"), (2.999, "ok"), (3.0, "ok"), (3.001, "regressed"), (30.0, "regressed")],
)
def test_compare_allows_up_to_one_plus_tolerance_times_the_baseline(time: float, status: str) -> None:
    verdict = compare(make_result(time=time), make_baseline(entry(time=2.0)), tolerance=0.5)
    assert verdict.status == status


@pytest.mark.parametrize(("time", "status"), [(3.5, "ok"), (3.501, "regressed")])
def test_compare_adds_the_seconds_tolerance_on_top_of_the_fraction(time: float, status: str) -> None:
    """The limit is baseline x (1 + tolerance) + tolerance_sec: 2 x 1.25 + 1 = 3.5 s."""
    verdict = compare(make_result(time=time), make_baseline(entry(time=2.0)), 0.25, tolerance_sec=1.0)
    assert verdict.status == status


def test_compare_with_zero_tolerance_regresses_on_any_slowdown() -> None:
    assert compare(make_result(time=2.0), make_baseline(entry(time=2.0)), 0.0).status == "ok"
    assert compare(make_result(time=2.0001), make_baseline(entry(time=2.0)), 0.0).status == "regressed"


def test_compare_describes_the_ratio_and_the_limit() -> None:
    verdict = compare(make_result(time=5.0), make_baseline(entry(time=2.0)), tolerance=0.2)
    assert verdict.detail == "2.50x the baseline's 2.00 s (limit 2.40 s)"


@pytest.mark.parametrize(("steps", "status"), [(12, "ok"), (13, "regressed")])
def test_steps_to_target_are_gated_when_both_sides_used_the_same_step_schedule(
    steps: int, status: str
) -> None:
    """Same ``eval_every_steps``: steps are deterministic, and may exceed the baseline's by the tolerance."""
    result = make_result(time=2.0, steps=steps, eval_every_steps=1)
    verdict = compare(result, make_baseline(entry(steps=10, eval_every_steps=1)), 0.2, 1.0)
    assert verdict.status == status


def test_steps_are_not_compared_across_different_eval_schedules() -> None:
    """Under the time-based schedule (or another step interval), steps depend on machine speed."""
    for result_schedule, baseline_schedule in ((None, None), (1, None), (None, 1), (5, 1)):
        result = make_result(time=2.0, steps=100, eval_every_steps=result_schedule)
        baseline = make_baseline(entry(steps=10, eval_every_steps=baseline_schedule))
        assert compare(result, baseline, 0.2).status == "ok"


def test_missing_a_target_the_baseline_met_is_a_regression() -> None:
    verdict = compare(make_result(reached=False), make_baseline(entry(time=2.0)), tolerance=10.0)
    assert verdict.status == "regressed"
    assert "missed the target the baseline met in 2.00 s" in verdict.detail


def test_a_baseline_that_never_reached_the_target_cannot_be_regressed_against() -> None:
    baseline = make_baseline(entry(reached=False))
    assert compare(make_result(reached=False), baseline, 0.2).status == "ok"
    assert compare(make_result(time=100.0), baseline, 0.2).status == "ok"


def test_a_single_submission_baseline_is_the_reference_for_any_submission_name() -> None:
    verdict = compare(make_result(submission="sgd_copy", time=2.1), make_baseline(entry("sgd")), 0.2)
    assert verdict.status == "ok"


def test_with_several_submissions_in_the_baseline_only_the_same_name_matches() -> None:
    baseline = make_baseline(entry("sgd"), entry("adam"))
    assert compare(make_result(submission="sgd_copy"), baseline, 0.2).status == "new"
    assert compare(make_result(submission="adam", time=9.0), baseline, 0.2).status == "regressed"


def test_save_then_load_round_trips_and_leaves_out_runs_that_errored(tmp_path: Path) -> None:
    errored = make_result(submission="broken")
    errored.stop_reason = "error"
    path = tmp_path / "nested" / "baseline.json"
    runs = [make_result(time=1.5, eval_every_steps=4), make_result(submission="slow", reached=False), errored]
    save_baseline(path, runs, {})
    loaded = load_baseline(path)
    assert set(loaded.entries) == {"sgd/pytorch/tiny", "slow/pytorch/tiny"}
    assert loaded.entries["sgd/pytorch/tiny"] == BaselineEntry("sgd", "pytorch", "tiny", True, 1.5, 10, 4)
    assert loaded.entries["slow/pytorch/tiny"].time_to_target is None
