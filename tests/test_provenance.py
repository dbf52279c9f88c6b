"""Every number says what produced it: the plugin's version, the calibration a run was judged by, and the
submission file; a baseline made under another calibration is refused rather than silently compared."""

from __future__ import annotations

import json

import pytest
from tiny import TinyWorkload, conftest_source, read_results, run_tiny, write_tiny_project

from pytest_algoperf.provenance import (
    calibration_change,
    calibration_record,
    digest_of,
    file_digest,
    plugin_version,
)


def test_results_carry_the_version_the_calibration_and_the_submissions_digest_outside_git(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    run_tiny(pytester).assert_outcomes(passed=1)
    document = read_results(pytester)
    assert document["commit"] is None  # pytester's folder is no git checkout
    assert document["plugin_version"] == plugin_version() != "unknown"
    run = document["runs"][0]
    calibration = run["calibration"]
    assert (calibration["validation_target"], calibration["max_allowed_runtime_sec"]) == (0.9, 5.0)
    assert calibration["digest"] == digest_of({k: v for k, v in calibration.items() if k != "digest"})
    assert run["submission_digest"] == file_digest(pytester.path / "tinysgd" / "pytorch.py")
    report = (pytester.path / "out" / "report.md").read_text()
    assert f"pytest-algoperf {plugin_version()}, commit -." in report


def test_a_baseline_keeps_the_calibration_and_submission_digests(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    run_tiny(pytester, "--algoperf-save-baseline=baseline.json").assert_outcomes(passed=1)
    entry = json.loads((pytester.path / "baseline.json").read_text())["entries"]["tinysgd/pytorch/tiny"]
    run = read_results(pytester)["runs"][0]
    assert entry["calibration"] == run["calibration"]
    assert entry["submission_digest"] == run["submission_digest"]


@pytest.fixture
def recalibrated(pytester: pytest.Pytester) -> pytest.Pytester:
    """A baseline saved with the tiny workload's target of 0.9, then the target recalibrated to 0.85."""
    write_tiny_project(pytester)
    run_tiny(pytester, "--algoperf-save-baseline=baseline.json").assert_outcomes(passed=1)
    pytester.makeconftest(conftest_source(validation_target_value=0.85))
    return pytester


def test_a_baseline_made_before_a_recalibration_is_refused_saying_what_changed(
    recalibrated: pytest.Pytester,
) -> None:
    result = run_tiny(recalibrated, "--algoperf-baseline=baseline.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "tiny: the baseline was made under another calibration (validation_target 0.9 -> 0.85); "
            "re-create the baseline with --algoperf-save-baseline, or compare anyway with "
            "--algoperf-allow-recalibration",
            "REFUSED tiny (tinysgd-pytorch-tiny): *",
        ]
    )
    run = read_results(recalibrated)["runs"][0]
    assert run["stop_reason"] == "refused" and run["evals"] == []  # nothing trained


def test_a_recalibrated_baseline_is_compared_when_asked_to(recalibrated: pytest.Pytester) -> None:
    result = run_tiny(recalibrated, "--algoperf-baseline=baseline.json", "--algoperf-allow-recalibration")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)


def test_updating_a_recalibrated_baseline_replaces_its_entry(recalibrated: pytest.Pytester) -> None:
    result = run_tiny(recalibrated, "--algoperf-baseline=baseline.json", "--algoperf-update-baseline")
    assert result.ret == pytest.ExitCode.OK
    entry = json.loads((recalibrated.path / "baseline.json").read_text())["entries"]["tinysgd/pytorch/tiny"]
    assert entry["calibration"]["validation_target"] == 0.85


def test_a_calibration_change_names_each_value_that_changed() -> None:
    before = {"validation_target": 0.9, "max_allowed_runtime_sec": 5.0, "step_hint": 200, "digest": "a"}
    after = {"validation_target": 0.9, "max_allowed_runtime_sec": 6.0, "step_hint": 300, "digest": "b"}
    assert calibration_change(before, after) == "max_allowed_runtime_sec 5.0 -> 6.0, step_hint 200 -> 300"
    assert calibration_change({"digest": "a"}, {"digest": "b"}) == "the digest differs"


def test_a_workload_stored_at_a_parameter_scale_records_it_and_one_at_scale_1_keeps_its_digest() -> None:
    unscaled = calibration_record(TinyWorkload())
    assert "parameter_scale" not in unscaled  # records made before workloads had a scale still match
    scaled_workload = TinyWorkload()
    scaled_workload.parameter_scale = 8.0
    scaled = calibration_record(scaled_workload)
    assert scaled["parameter_scale"] == 8.0 and scaled["digest"] != unscaled["digest"]
    assert calibration_change(unscaled, scaled) == "parameter_scale None -> 8.0"
