"""The regression gate end to end: ``--algoperf-save-baseline`` records each run with the step schedule it
used, ``--algoperf-baseline`` runs a later session on the same schedule and fails it only on a regression:
a missed target or more steps (exact), or a slower step time beyond the tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import (
    TINY_LEARNING_RATE,
    TINY_SUBMISSION,
    assert_usage_error,
    read_results,
    run_tiny,
    write_submission,
    write_tiny_project,
)

from pytest_algoperf.gate.baseline_file import FORMAT

# The tiny workload's calibration (step_hint 200 in a 5 s budget, an eval period of 0 s) gives, by the step
# mode's rule, an eval every step and a step budget of 200 steps.
TINY_SCHEDULE = {"eval_every_steps": 1, "step_budget": 200}
PAIRED_SEC = "--algoperf-paired-sec=0.3"  # the tiny steps take a fraction of a millisecond


@pytest.fixture
def baseline(pytester: pytest.Pytester) -> Path:
    """A baseline saved from a session of the tiny submission on the tiny workload."""
    write_tiny_project(pytester)
    run_tiny(pytester, "--algoperf-save-baseline=baseline.json").assert_outcomes(passed=1)
    return pytester.path / "baseline.json"


def gate_rows(output: str) -> dict[str, list[str]]:
    """The regression gate's table in the terminal: measure -> cells, for the one run of these tests."""
    lines = output.split("algoperf regression gate", 1)[1].splitlines()[3:]
    rows = {}
    for line in lines:
        if not line.startswith("tiny"):
            break
        cells = [cell.strip() for cell in line.split("  ") if cell.strip()]
        rows[cells[1]] = cells[2:]
    return rows


def test_a_saved_baseline_records_the_schedule_the_conditions_and_each_run(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    document = json.loads(baseline.read_text())
    assert document["format"] == FORMAT and document["version"] == 2
    assert document["machine"]["cpu_count"] and document["software"]["torch"]
    run = read_results(pytester)["runs"][0]
    entry = document["entries"]["tinysgd/pytorch/tiny"]
    assert {key: entry[key] for key in TINY_SCHEDULE} == TINY_SCHEDULE
    assert (entry["threads"], entry["device"]) == (1, "cpu")
    [recorded] = entry["runs"]
    assert recorded["steps_to_target"] == run["steps_to_target"] == run["evals"][-1]["global_step"]
    assert recorded["time_to_target"] == run["time_to_target"]
    assert recorded["step_time"] == pytest.approx(run["submission_time"] / run["global_step"])
    assert (recorded["study"], recorded["trial"], recorded["seed"]) == (0, 0, run["seed"])
    assert recorded["reached"] is recorded["met_target"] is True


def test_a_gated_session_evaluates_on_the_baselines_step_schedule(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    run_tiny(pytester, f"--algoperf-baseline={baseline}").assert_outcomes(passed=1)
    run = read_results(pytester)["runs"][0]
    assert {key: run[key] for key in TINY_SCHEDULE} == TINY_SCHEDULE
    assert [record["global_step"] for record in run["evals"]] == list(range(1, run["steps_to_target"] + 1))


def test_the_same_submission_gets_the_same_steps_and_passes(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    result = run_tiny(pytester, f"--algoperf-baseline={baseline}")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["algoperf: step mode: evals every N steps and a step budget*"])
    rows = gate_rows(result.stdout.str())
    steps = json.loads(baseline.read_text())["entries"]["tinysgd/pytorch/tiny"]["runs"][0]["steps_to_target"]
    assert rows["steps to target"] == [str(steps), str(steps), "1.000", "exact", "1.00", "ok"]
    assert rows["time to target (stored)"][-1] in ("ok", "inconclusive")
    result.stdout.fnmatch_lines(
        ["baseline *baseline.json: 0 regressed, 1 ok; tolerance 10% + 1 s on stored times; steps exact"]
    )


def test_more_steps_to_target_is_a_regression_with_no_noise_allowance(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    """Half the learning rate needs about twice the steps: compared exactly, any extra step regresses."""
    write_submission(pytester.path, "tinysgd_half", learning_rate=TINY_LEARNING_RATE / 2)
    result = run_tiny(pytester, f"--algoperf-baseline={baseline}", submission="tinysgd_half")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    assert gate_rows(result.stdout.str())["steps to target"][-1] == "regressed"
    result.stdout.fnmatch_lines(
        ["REGRESSED tiny (tinysgd_half-pytorch-tiny): steps to target: * steps against the baseline's *"]
    )


def test_missing_the_target_within_the_step_budget_is_a_regression(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    """A learning rate 100x smaller needs thousands of steps: it cannot meet the target in the step budget of
    200, on any machine, so the miss is certain, not a matter of load."""
    write_submission(pytester.path, "tinysgd_slow", learning_rate=TINY_LEARNING_RATE / 100)
    result = run_tiny(pytester, f"--algoperf-baseline={baseline}", submission="tinysgd_slow")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*tiny: validation/accuracy reached *; the step budget of 200 steps was spent after 200 steps*",
            "REGRESSED tiny (tinysgd_slow-pytorch-tiny): target: missed the target in 200 steps; *",
            "baseline *: 1 regressed; tolerance *",
        ]
    )
    assert read_results(pytester)["runs"][0]["global_step"] == 200


def test_the_time_based_schedule_makes_steps_not_comparable(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    result = run_tiny(pytester, f"--algoperf-baseline={baseline}", "--algoperf-schedule=time")
    assert result.ret == pytest.ExitCode.OK
    row = gate_rows(result.stdout.str())["steps to target"]
    assert row[-3:] == ["not comparable", "-", "ok"]
    assert read_results(pytester)["runs"][0]["step_budget"] is None


def test_a_run_without_a_baseline_entry_is_new_and_does_not_fail(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    run = {"study": 0, "trial": 0, "reached": True, "steps_to_target": 400, "time_to_target": 0.4}
    entry = {"submission": "adamw", "framework": "pytorch", "workload": "mnist", "runs": [run]}
    (pytester.path / "baseline.json").write_text(
        json.dumps({"format": FORMAT, "version": 2, "entries": {"adamw/pytorch/mnist": entry}})
    )
    result = run_tiny(pytester, "--algoperf-baseline=baseline.json")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["new: tinysgd-pytorch-tiny has no baseline entry"])
    result.stdout.re_match_lines([r"tinysgd\s+pytorch\s+tiny\s+yes.*\snew$"])


def test_a_version_1_baseline_file_is_still_read(pytester: pytest.Pytester) -> None:
    """Version 1 entries carry one time and step count and no step budget: steps then compare only when the
    schedule matches, and here it does not (the old file has no eval_every_steps)."""
    write_tiny_project(pytester)
    old = {"submission": "tinysgd", "framework": "pytorch", "workload": "tiny", "reached": True}
    old |= {"time_to_target": 100.0, "steps_to_target": 1}
    document = {"format": FORMAT, "version": 1, "entries": {"tinysgd/pytorch/tiny": old}}
    (pytester.path / "baseline.json").write_text(json.dumps(document))
    result = run_tiny(pytester, "--algoperf-baseline=baseline.json")
    assert result.ret == pytest.ExitCode.OK
    assert gate_rows(result.stdout.str())["steps to target"][-3:] == ["not comparable", "-", "ok"]


def test_update_baseline_rewrites_what_was_measured_keeps_the_rest_and_accepts_regressions(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    document = json.loads(baseline.read_text())
    other = json.loads(json.dumps(document["entries"]["tinysgd/pytorch/tiny"]))
    other["workload"] = "elsewhere"
    document["entries"]["tinysgd/pytorch/elsewhere"] = other
    baseline.write_text(json.dumps(document))
    write_submission(pytester.path, "tinysgd", learning_rate=TINY_LEARNING_RATE / 2)
    result = run_tiny(pytester, f"--algoperf-baseline={baseline}", "--algoperf-update-baseline")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["baseline *: 1 regressed* (accepted: --algoperf-update-baseline)*"])
    updated = json.loads(baseline.read_text())["entries"]
    assert updated["tinysgd/pytorch/elsewhere"] == other
    new_steps = read_results(pytester)["runs"][0]["steps_to_target"]
    assert updated["tinysgd/pytorch/tiny"]["runs"][0]["steps_to_target"] == new_steps
    assert new_steps > document["entries"]["tinysgd/pytorch/tiny"]["runs"][0]["steps_to_target"]


def test_update_baseline_without_a_baseline_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    result = run_tiny(pytester, "--algoperf-update-baseline")
    assert_usage_error(result, "--algoperf-update-baseline needs --algoperf-baseline=FILE")


def test_update_baseline_creates_a_missing_file(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    result = run_tiny(pytester, "--algoperf-baseline=new.json", "--algoperf-update-baseline")
    assert result.ret == pytest.ExitCode.OK
    assert "tinysgd/pytorch/tiny" in json.loads((pytester.path / "new.json").read_text())["entries"]


def test_per_workload_tolerances_from_ini_set_each_workloads_threshold(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    """With the baseline's code at hand the threshold is 1 + the workload's tolerance."""
    (pytester.path / "pytest.ini").write_text("[pytest]\nalgoperf_tolerance = 0.05 tiny:0.5 other:0.2\n")
    result = run_tiny(
        pytester, f"--algoperf-baseline={baseline}", "--algoperf-baseline-code=tinysgd", PAIRED_SEC
    )
    assert gate_rows(result.stdout.str())["time to target (paired)"][4] == "1.50"
    result.stdout.fnmatch_lines(["baseline *; tolerance 5% (other 20%, tiny 50%) + 1 s on stored times*"])


@pytest.mark.parametrize("value", ["fast", "tiny:", "tiny:-1", "0.1 tiny:x"])
def test_a_malformed_tolerance_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    write_tiny_project(pytester)
    result = run_tiny(pytester, f"--algoperf-tolerance={value}")
    assert_usage_error(result, "--algoperf-tolerance")


def test_the_gate_table_is_in_the_report_and_the_github_step_summary(
    pytester: pytest.Pytester, baseline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run_tiny(pytester, f"--algoperf-baseline={baseline}").assert_outcomes(passed=1)
    header = "| run | measure | baseline | now | ratio | interval | threshold | verdict |"
    for text in ((pytester.path / "out" / "report.md").read_text(), summary.read_text()):
        assert "## Regression gate" in text and header in text
        assert "| tinysgd-pytorch-tiny | steps to target |" in text


def test_a_thread_count_other_than_the_baselines_is_warned_about(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    document = json.loads(baseline.read_text())
    document["entries"]["tinysgd/pytorch/tiny"]["threads"] = 3
    baseline.write_text(json.dumps(document))
    result = run_tiny(pytester, f"--algoperf-baseline={baseline}", "--collect-only")
    result.stdout.fnmatch_lines(
        ["algoperf: WARNING: the baseline's runs used 3 CPU threads and this session uses 1*"]
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"format": "something-else", "version": 2, "entries": {}}), "is not a pytest-algoperf"),
        (json.dumps({"format": FORMAT, "version": 99, "entries": {}}), "has version 99; this plugin reads"),
        (json.dumps({"format": FORMAT, "version": 2, "entries": {"a/b/c": {}}}), "has a malformed entry"),
        (
            json.dumps({"format": FORMAT, "version": 2, "entries": {"a/b/c": {"runs": [{}]}}}),
            "malformed entry",
        ),
    ],
    ids=["not-json", "wrong-format", "wrong-version", "malformed-entry", "malformed-run"],
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


def test_baseline_code_that_does_not_exist_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    result = run_tiny(pytester, "--algoperf-baseline-code=nowhere/pytorch.py")
    assert_usage_error(result, "submission file 'nowhere/pytorch.py' does not exist")


def test_baseline_code_at_a_git_revision_is_the_submission_folder_at_that_revision(
    pytester: pytest.Pytester, baseline: Path
) -> None:
    """Commit the submission, change it, and pair the change against the committed version."""
    git = ("git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(pytester.path))
    pytester.run(*git[:-2], "init", "-q", str(pytester.path))
    pytester.run(*git, "add", "tinysgd")
    assert pytester.run(*git, "commit", "-q", "-m", "baseline").ret == 0
    write_submission(pytester.path, source=TINY_SUBMISSION.replace("tinysgd:", "tinysgd, changed:"))
    result = run_tiny(
        pytester, f"--algoperf-baseline={baseline}", "--algoperf-baseline-code=git:HEAD", PAIRED_SEC
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    paired = read_results(pytester)["runs"][0]["paired"]
    assert "tinysgd-pytorch-HEAD" in paired["baseline_code"] and paired["pairs"] >= 6


def test_baseline_code_at_an_unknown_git_revision_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    pytester.run("git", "init", "-q", str(pytester.path))
    result = run_tiny(pytester, "--algoperf-baseline-code=git:no-such-revision")
    assert_usage_error(result, "--algoperf-baseline-code=git:no-such-revision: git archive failed")


def test_baseline_code_that_fails_fails_the_test_but_keeps_the_measured_run(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    write_submission(pytester.path, "broken", raise_at_step=2)
    result = run_tiny(pytester, "--algoperf-baseline-code=broken", PAIRED_SEC)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*while measuring step times against the baseline's code 'broken (baseline code)'"]
    )
    run = read_results(pytester)["runs"][0]
    assert run["reached"] is True and run["stop_reason"] == "targets reached"
    assert run["paired"] == {"error": "RuntimeError: tinysgd fails on purpose at step 2"}
