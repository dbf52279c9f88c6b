"""Workload variants (ALGOPERF.md section 6): which ones a session runs (--algoperf-variants), how their
tests are named and selected with -k, and that a variant's result names its base workload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tiny import BASE_ARGS, TESTS_DIR, read_results, write_submission

from pytest_algoperf.calibration import Calibration, CalibrationError, load_calibration
from pytest_algoperf.registry import WorkloadEntry, WorkloadRegistry

TWO_WORKLOADS_WITH_VARIANTS = ["a", "a_x", "a_y", "a_z", "b", "b_x", "c"]


def registry() -> WorkloadRegistry:
    """Base workloads a (three variants), b (one) and c (none)."""
    registry = WorkloadRegistry()
    for name in TWO_WORKLOADS_WITH_VARIANTS:
        base = name.split("_")[0]
        registry.add(
            WorkloadEntry(name, {"pytorch": "unused:Workload"}, base_name=base, is_variant=name != base)
        )
    return registry


@pytest.mark.parametrize(
    ("variants", "expected"),
    [
        ("none", ["a", "b", "c"]),
        ("all", ["a", "a_x", "a_y", "a_z", "b", "b_x", "c"]),
        ("a_y,b_x", ["a", "a_y", "b", "b_x", "c"]),
    ],
)
def test_each_base_workload_is_followed_by_its_selected_variants(variants: str, expected: list[str]) -> None:
    assert registry().select([], variants, seed=0) == expected


def test_held_out_draws_one_variant_per_workload_from_the_session_seed() -> None:
    draws = {seed: registry().select([], "held-out", seed) for seed in range(20)}
    for selected in draws.values():
        assert selected[0] == "a" and selected[1] in {"a_x", "a_y", "a_z"}
        assert selected[2:] == ["b", "b_x", "c"]  # b has one variant; c has none
    assert draws[3] == registry().select([], "held-out", 3)  # the same seed, the same variants
    assert len({tuple(s) for s in draws.values()}) == 3  # and different seeds reach every variant of a


def test_named_workloads_limit_the_variants_and_a_variant_may_be_named_directly() -> None:
    assert registry().select(["b"], "all", seed=0) == ["b", "b_x"]
    assert registry().select(["a_z"], "none", seed=0) == ["a_z"]


def test_an_unknown_variant_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown variant a_q, b; known variants: a_x, a_y, a_z, b_x"):
        registry().select([], "a_q,b", seed=0)


VARIANT_CONFTEST = f"""
import sys

sys.path.insert(0, {str(TESTS_DIR)!r})
from tiny import TinyWorkload  # noqa: E402
from pytest_algoperf.registry import WorkloadEntry  # noqa: E402


class Harder(TinyWorkload):
    validation_target_value = 0.91


def pytest_algoperf_add_workloads(registry):
    registry.register("tiny", pytorch=TinyWorkload)
    registry.add(WorkloadEntry("tiny_harder", {{"pytorch": Harder}}, base_name="tiny", is_variant=True))
"""


def test_variant_tests_are_named_after_the_variant_and_k_can_leave_them_out(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(VARIANT_CONFTEST)
    write_submission(pytester.path)
    args = (*BASE_ARGS, "--algoperf-submission=tinysgd", "--algoperf-workloads=tiny", "--collect-only", "-q")
    everything = pytester.runpytest(*args, "--algoperf-variants=all")
    assert [line for line in everything.stdout.lines if "::" in line] == [
        "algoperf::tinysgd-pytorch-tiny",
        "algoperf::tinysgd-pytorch-tiny_harder",
    ]
    bases_only = pytester.runpytest(*args, "--algoperf-variants=all", "-k", "tiny and not variant")
    assert [line for line in bases_only.stdout.lines if "::" in line] == ["algoperf::tinysgd-pytorch-tiny"]


def test_a_variant_run_records_its_base_workload(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(VARIANT_CONFTEST)
    write_submission(pytester.path)
    result = pytester.runpytest(
        *BASE_ARGS,
        "--algoperf-submission=tinysgd",
        "--algoperf-workloads=tiny",
        "--algoperf-variants=tiny_harder",
    )
    result.assert_outcomes(passed=2)
    runs = {run["workload"]: run for run in read_results(pytester)["runs"]}
    assert runs["tiny_harder"]["base_workload"] == "tiny"
    assert runs["tiny"]["base_workload"] == ""
    assert runs["tiny_harder"]["validation_target"] == 0.91


def test_an_unknown_variant_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(VARIANT_CONFTEST)
    write_submission(pytester.path)
    result = pytester.runpytest(
        *BASE_ARGS, "--algoperf-submission=tinysgd", "--algoperf-variants=tiny_easier"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--algoperf-variants: unknown variant tiny_easier; known variants: *tiny_harder*"]
    )


# ---- a variant's targets are its own, its budget is its base workload's ------------------------------------


def _calibrated(tmp_path: Path, entries: dict[str, dict[str, Any]], name: str, base: str) -> Calibration:
    """What ``CalibratedWorkload.calibration`` reads for workload ``name`` of base workload ``base``."""
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(entries))
    return load_calibration(path, name, base if base != name else None)


BASE_ENTRY = {
    "validation_target": 0.9,
    "test_target": 0.8,
    "max_allowed_runtime_sec": 30.0,
    "eval_period_time_sec": 2.0,
    "step_hint": 500,
}


def test_a_variant_takes_its_targets_from_its_entry_and_its_budget_from_the_base_entry(
    tmp_path: Path,
) -> None:
    variant_entry = {"validation_target": 0.85, "test_target": 0.75, "command": "calibrate w_gelu"}
    calibration = _calibrated(tmp_path, {"w": BASE_ENTRY, "w_gelu": variant_entry}, "w_gelu", "w")
    assert (calibration.validation_target, calibration.test_target) == (0.85, 0.75)
    assert calibration.max_allowed_runtime_sec == 30.0
    assert (calibration.eval_period_time_sec, calibration.step_hint) == (2.0, 500)
    assert calibration.command == "calibrate w_gelu"


def test_a_variant_without_an_entry_is_an_error_naming_the_file_and_the_entries(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"calibration.json: no entry 'w_gelu'; entries are w$"):
        _calibrated(tmp_path, {"w": BASE_ENTRY}, "w_gelu", "w")


def test_a_base_workload_entry_needs_its_budget(tmp_path: Path) -> None:
    targets_only = {"validation_target": 0.9, "test_target": 0.8}
    with pytest.raises(CalibrationError, match="entry 'w' lacks max_allowed_runtime_sec, eval_period"):
        _calibrated(tmp_path, {"w": targets_only}, "w", "w")
