"""Tuning rulesets (studies x trials, self-tuning) and what several submissions get: scores, report, figures
(ALGOPERF.md sections 4 and 5), through whole sessions on the tiny workload."""

from __future__ import annotations

import json

import pytest
from tiny import (
    TINY_SUBMISSION,
    TinyWorkload,
    held_submission,
    read_results,
    run_tiny,
    write_submission,
    write_tiny_project,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_points(pytester: pytest.Pytester, submission: str, *learning_rates: float) -> None:
    """Replace a submission's search space by a list of fixed points with these learning rates."""
    points = [{"learning_rate": lr} for lr in learning_rates]
    (pytester.path / submission / "tuning_search_space.json").write_text(json.dumps(points))


def test_each_study_and_trial_is_its_own_test_with_its_own_point(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    write_points(pytester, "tinysgd", 0.2, 0.3, 0.4)
    result = run_tiny(pytester, "--algoperf-trials=3", "--algoperf-studies=2", "-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*tinysgd-pytorch-tiny-study1-trial2 PASSED*"])
    runs = read_results(pytester)["runs"]
    points = {(run["study"], run["trial"]): run["hyperparameters"]["learning_rate"] for run in runs}
    # As in AlgoPerf, every study runs the fixed list from its first point; studies differ by their seeds.
    assert points == {(0, 0): 0.2, (0, 1): 0.3, (0, 2): 0.4, (1, 0): 0.2, (1, 1): 0.3, (1, 2): 0.4}
    assert len({run["seed"] for run in runs}) == 6
    result.stdout.fnmatch_lines(["*algoperf workload times*", "pytorch*tinysgd*s"])


def test_a_search_space_named_on_the_command_line_replaces_the_submissions_own(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    write_points(pytester, "tinysgd", 0.2, 0.3)
    (pytester.path / "published.json").write_text(
        json.dumps([{"learning_rate": 0.45}, {"learning_rate": 0.15}])
    )
    run_tiny(pytester, "--algoperf-trials=2", "--algoperf-tuning-search-space=published.json")
    runs = read_results(pytester)["runs"]
    assert [run["hyperparameters"]["learning_rate"] for run in runs] == [0.45, 0.15]
    result = run_tiny(pytester, "--algoperf-tuning-search-space=missing.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{pytester.path / 'missing.json'}: no such file*"])


def test_a_trial_that_misses_is_expected_but_a_workload_no_study_reached_fails(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester, workload={"max_allowed_runtime_sec": 0.3})
    write_points(pytester, "tinysgd", 1e-7, 1e-7, 1e-7, 1e-7)
    result = run_tiny(pytester, "--algoperf-trials=2", "--algoperf-studies=2")
    result.assert_outcomes(xfailed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*MISSED tiny (tinysgd, pytorch): no study reached the target*"])


@pytest.mark.parametrize(("seed_std", "outcome"), [(0.5, "xfailed"), (0.001, "failed")])
def test_a_single_run_short_of_the_target_by_the_baselines_seed_noise_is_an_expected_miss(
    pytester: pytest.Pytester, seed_std: float, outcome: str
) -> None:
    """AlgoPerf's targets are the median of the baseline's seeds, so one run of the baseline misses half the
    time: a miss within 3 seed standard deviations xfails and the session passes; a bigger one fails. Both
    score as missed."""
    workload = {"validation_target_value": 1.01, "target_seed_std": seed_std, "max_allowed_runtime_sec": 0.3}
    write_tiny_project(pytester, workload=workload)
    result = run_tiny(pytester, "-rx")
    result.assert_outcomes(**{outcome: 1})
    if outcome == "xfailed":
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(
            ["*missed by no more than 3 seed standard deviations (0.5) of the baseline's calibration reruns*"]
        )
        result.stdout.fnmatch_lines(
            ["*MISSED tiny (tinysgd, pytorch): short of the target by the baseline's*"]
        )
    else:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
    (run,) = read_results(pytester)["runs"]
    assert not run["reached"] and run["calibration"]["target_seed_std"] == seed_std


def test_one_good_trial_per_study_is_enough(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester, workload={"max_allowed_runtime_sec": 0.5})
    write_points(pytester, "tinysgd", 1e-7, 0.2)
    result = run_tiny(pytester, "--algoperf-trials=2")
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK


def test_self_tuning_passes_no_hyperparameters_and_one_and_a_half_times_the_budget(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    source = TINY_SUBMISSION.replace(
        "lr=hyperparameters.learning_rate", "lr=0.2 if hyperparameters is None else 0"
    )
    write_submission(pytester.path, name="selftuned", source=source)
    result = run_tiny(pytester, "--algoperf-ruleset=self", "--algoperf-studies=2", submission="selftuned")
    result.assert_outcomes(passed=2)
    runs = read_results(pytester)["runs"]
    assert [run["hyperparameters"] for run in runs] == [None, None]
    assert {run["budget_sec"] for run in runs} == {1.5 * TinyWorkload.max_allowed_runtime_sec}
    assert {run["max_global_steps"] for run in runs} == {1.5 * TinyWorkload.step_hint}  # the steps scale too


def write_slower_pair(pytester: pytest.Pytester) -> None:
    """tinysgd and tinyslow (half its learning rate: about 2x the steps), every step of both held to 2 ms, so
    that tinyslow is about 2x slower to its target on any load, and well within AlgoPerf's 4x cut-off."""
    write_submission(pytester.path, name="tinysgd", source=held_submission(0.002))
    write_submission(pytester.path, name="tinyslow", source=held_submission(0.002), learning_rate=0.1)


def test_several_submissions_get_scores_a_report_and_figures(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    write_slower_pair(pytester)
    result = run_tiny(pytester, "--algoperf-submission=tinyslow")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*algoperf scores (pytorch)*", "submission*score*speedup vs tinysgd*", "tinysgd*1.000*1.00x*"]
    )
    output = pytester.path / "out"
    report = (output / "report.md").read_text()
    assert "## Scores (pytorch)" in report and "| tinyslow |" in report
    assert "](performance_profile_pytorch.png)" in report
    for figure in ("performance_profile_pytorch.png", "curves/curves_tiny_pytorch.png"):
        assert (output / figure).read_bytes().startswith(PNG_MAGIC)


def test_scores_can_be_relative_to_a_named_reference_submission(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    write_slower_pair(pytester)
    result = run_tiny(pytester, "--algoperf-submission=tinyslow", "--algoperf-reference-submission=tinyslow")
    result.stdout.fnmatch_lines(["submission*score*speedup vs tinyslow*", "tinyslow*1.000*1.00x*"])


def test_the_report_is_appended_to_the_github_step_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_tiny_project(pytester)
    run_tiny(pytester).assert_outcomes(passed=1)
    text = summary.read_text()
    assert text.startswith("earlier step\n# pytest-algoperf report")
    assert "| tinysgd | pytorch | tiny | yes |" in text


def test_a_session_clears_the_previous_sessions_files_in_its_output_folder(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    write_points(pytester, "tinysgd", 0.2, 0.3)
    run_tiny(pytester, "--algoperf-studies=2").assert_outcomes(passed=2)
    run_tiny(pytester).assert_outcomes(passed=1)
    experiments = pytester.path / "out" / "experiments" / "tinysgd"
    assert sorted(p.name for p in experiments.iterdir()) == ["study_0"]
    assert len(read_results(pytester)["runs"]) == 1
