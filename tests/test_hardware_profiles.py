"""Hardware profiles (issue 18): targets are shared, budgets belong to the profile of the hardware they were
measured on, and a session picks the profile matching its device (CPU threads, GPU model and count) or says
that none does and how to make one, instead of borrowing another hardware's budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import QUIET_PLUGINS, TESTS_DIR, assert_usage_error, only_run, write_submission

from pytest_algoperf.calibration import CalibrationError, load_calibration
from pytest_algoperf.gate.baseline_file import Baseline, BaselineEntry, BaselineRun
from pytest_algoperf.gate.verdicts import Tolerances, judge, profile_difference
from pytest_algoperf.hardware.gpus import Gpu
from pytest_algoperf.hardware.profiles import (
    DeviceDescription,
    NoProfileError,
    choose_profile,
    fitting_threads,
)
from pytest_algoperf.hardware.selection import describe_calibration_device, resolve_profiles
from pytest_algoperf.results import RunResult
from pytest_algoperf.validity.__main__ import algoperf_board_workloads

H100 = "NVIDIA H100 80GB HBM3"
PROFILES = {
    "cpu-1thread": {
        "device": "cpu",
        "threads": 1,
        "max_allowed_runtime_sec": 5.0,
        "eval_period_time_sec": 0.0,
    },
    "cpu-4threads": {
        "device": "cpu",
        "threads": 4,
        "max_allowed_runtime_sec": 3.0,
        "eval_period_time_sec": 0.0,
    },
    "cuda-nvidia-h200": {
        "device": "cuda",
        "gpu": "NVIDIA H200",
        "max_allowed_runtime_sec": 2.0,
        "eval_period_time_sec": 0.0,
    },
    "h100": {"device": "cuda", "gpu": H100, "max_allowed_runtime_sec": 2.5, "eval_period_time_sec": 0.0},
    "8x-h100": {
        "device": "cuda",
        "gpu": H100,
        "gpus": 8,
        "max_allowed_runtime_sec": 1.0,
        "eval_period_time_sec": 0.0,
    },
}
OFFERED = {name: DeviceDescription.from_json(values) for name, values in PROFILES.items()}


@pytest.mark.parametrize(
    ("device", "profile"),
    [
        (DeviceDescription("cpu", threads=1), "cpu-1thread"),
        (DeviceDescription("cpu", threads=4), "cpu-4threads"),
        (DeviceDescription("cpu", threads=2), None),  # no CPU profile at 2 threads: none, not the nearest
        (DeviceDescription("cuda", gpu_model="NVIDIA H200"), "cuda-nvidia-h200"),
        (DeviceDescription("cuda", gpu_model="nvidia  h200"), "cuda-nvidia-h200"),  # as models are spelt
        (DeviceDescription("cuda", gpu_model=H100), "h100"),
        (DeviceDescription("cuda", gpu_model=H100, gpus=8), "8x-h100"),  # JAX sharding a run over 8 GPUs
        (DeviceDescription("cuda", gpu_model=H100, gpus=2), None),
        (DeviceDescription("cuda", gpu_model="NVIDIA A100-SXM4-40GB"), None),
        (DeviceDescription("cuda", gpu_model=None), None),  # a GPU whose model could not be told
    ],
)
def test_the_profile_is_chosen_by_the_device(device: DeviceDescription, profile: str | None) -> None:
    assert choose_profile(OFFERED, device) == profile


def test_a_profile_named_on_the_command_line_is_used_whatever_the_device() -> None:
    cpu = DeviceDescription("cpu", threads=2)
    assert choose_profile(OFFERED, cpu, requested="h100") == "h100"
    assert choose_profile(OFFERED, cpu, requested="nope") is None


def test_default_profile_names_say_the_device() -> None:
    assert DeviceDescription("cpu", threads=1).default_profile_name() == "cpu-1thread"
    assert DeviceDescription("cpu", threads=4).default_profile_name() == "cpu-4threads"
    assert DeviceDescription("cuda", gpu_model="NVIDIA H200").default_profile_name() == "cuda-nvidia-h200"
    assert (
        DeviceDescription("cuda", gpu_model=H100, gpus=8).default_profile_name()
        == "cuda-8x-nvidia-h100-80gb-hbm3"
    )


def test_auto_threads_take_the_largest_cpu_profile_that_fits_the_share_of_the_cores() -> None:
    assert fitting_threads({1}, share=2) == 1  # the built-in profile, on this 2-core machine
    assert fitting_threads({1, 4}, share=8) == 4
    assert fitting_threads({4}, share=2) == 2  # none fits: the share, and then no profile matches


def test_calibrating_on_several_gpus_needs_one_device_for_both_frameworks() -> None:
    two = [Gpu("0", "NVIDIA H200"), Gpu("1", "NVIDIA H200")]
    with pytest.raises(ValueError, match="JAX trains on all 2 visible GPUs and PyTorch on one"):
        describe_calibration_device("cuda", 1, ["pytorch", "jax"], two)
    assert describe_calibration_device("cuda", 1, ["jax"], two).gpus == 2
    one = describe_calibration_device("cuda", 1, ["pytorch", "jax"], two[:1])
    assert (one.gpu_model, one.gpus) == ("NVIDIA H200", 1)


def test_a_missing_profile_is_an_error_that_names_the_device_the_profiles_and_how_to_make_one() -> None:
    offered = {("mnist", "pytorch"): OFFERED, ("tiny", "pytorch"): None}  # tiny's budget is its own
    devices = {"pytorch": DeviceDescription("cuda", gpu_model="NVIDIA L4")}
    with pytest.raises(NoProfileError) as error:
        resolve_profiles(offered, devices, requested=None)
    message = str(error.value)
    assert message.startswith("no hardware profile for pytorch on cuda on NVIDIA L4 for mnist; profiles: ")
    assert "cpu-1thread (cpu with 1 thread)" in message and "h100 (cuda on NVIDIA H100 80GB HBM3)" in message
    assert "will not borrow another's" in message
    assert "--algoperf-hardware-profile=NAME" in message
    assert "calibrate --derive-from cpu-1thread --device cuda --framework pytorch --workload mnist" in message
    assert "--keep-targets" in message and "--profile cuda-nvidia-l4 --write" in message
    cpu = {"pytorch": DeviceDescription("cpu", threads=1)}
    assert resolve_profiles(offered, cpu, None) == {
        ("mnist", "pytorch"): "cpu-1thread",
        ("tiny", "pytorch"): "",
    }


# ---- calibration files: shared targets, per-profile budgets -----------------------------------------------

ENTRIES = {
    "w": {
        "validation_target": 0.9,
        "test_target": 0.8,
        "step_hint": 500,
        "profiles": {
            "cpu-1thread": {**PROFILES["cpu-1thread"], "steps_in_budget": 400, "command": "calibrate w"},
            "h100": {**PROFILES["h100"], "steps_in_budget": 900, "derived": {"from": "cpu-1thread"}},
        },
    },
    "w_gelu": {"validation_target": 0.85, "test_target": 0.75},
}


def test_targets_are_shared_and_the_budget_and_step_rate_are_the_profiles(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(ENTRIES))
    cpu, gpu = load_calibration(path, "w"), load_calibration(path, "w", profile="h100")
    assert (cpu.hardware_profile, cpu.max_allowed_runtime_sec, cpu.steps_in_budget) == (
        "cpu-1thread",
        5.0,
        400,
    )
    assert (gpu.hardware_profile, gpu.max_allowed_runtime_sec, gpu.steps_in_budget) == ("h100", 2.5, 900)
    assert (gpu.validation_target, gpu.test_target, gpu.step_hint) == (0.9, 0.8, 500)
    variant = load_calibration(path, "w_gelu", "w", profile="h100")  # its own targets, its base's budget
    assert (variant.validation_target, variant.max_allowed_runtime_sec, variant.hardware_profile) == (
        0.85,
        2.5,
        "h100",
    )
    with pytest.raises(
        CalibrationError, match="entry 'w' has no hardware profile 'a100'; its profiles are cpu-1thread, h100"
    ):
        load_calibration(path, "w", profile="a100")


def test_a_framework_with_a_budget_of_its_own_uses_it_and_the_others_share_the_profiles(
    tmp_path: Path,
) -> None:
    """On a CPU where JAX steps slower than PyTorch, one budget cannot let each framework's baseline reach
    the target at 3/4 of it: ``by_framework`` gives PyTorch its own; JAX keeps the profile's."""
    entries = json.loads(json.dumps(ENTRIES))
    own = {"max_allowed_runtime_sec": 3.0, "eval_period_time_sec": 0.25, "steps_in_budget": 240}
    entries["w"]["profiles"]["cpu-1thread"]["by_framework"] = {"pytorch": own}
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(entries))
    pytorch, jax = (load_calibration(path, "w", framework=f) for f in ("pytorch", "jax"))
    assert (pytorch.max_allowed_runtime_sec, pytorch.eval_period_time_sec, pytorch.steps_in_budget) == (
        3.0,
        0.25,
        240,
    )
    assert (jax.max_allowed_runtime_sec, jax.steps_in_budget) == (5.0, 400)
    assert (pytorch.validation_target, pytorch.hardware_profile) == (0.9, "cpu-1thread")
    # A variant's targets were calibrated in runs limited by its base's shared budget, so it keeps that.
    assert load_calibration(path, "w_gelu", "w", framework="pytorch").max_allowed_runtime_sec == 5.0
    own["validation_target"] = 0.5  # a target is never a framework's own
    path.write_text(json.dumps(entries))
    with pytest.raises(
        CalibrationError, match=r"entry 'w', profile 'cpu-1thread' is malformed .*validation_target"
    ):
        load_calibration(path, "w", framework="pytorch")


def test_every_built_in_budget_is_in_the_cpu_profile_with_its_command_or_a_note() -> None:
    root = TESTS_DIR.parent / "workloads"
    budgets = 0
    for path in sorted(root.glob("*/calibration.json")):
        for name, entry in json.loads(path.read_text()).items():
            assert "max_allowed_runtime_sec" not in entry, f"{path}: {name} has a budget outside its profiles"
            for profile in entry.get("profiles", {}).values():
                budgets += 1
                assert (profile["device"], profile["threads"]) == ("cpu", 1)
                assert profile.get("command") or profile.get("note"), (
                    f"{path}: {name} says not where it came from"
                )
    assert budgets == 11  # the 9 mini workloads and cifar, and mnist's two data sources


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_each_scored_workloads_eval_period_is_at_most_4_percent_of_its_frameworks_budget(
    framework: str,
) -> None:
    # VALIDITY.md, rule 3: coarser evals cluster times to target at eval points and blur the ranking.
    too_coarse = {}
    for name in algoperf_board_workloads():
        calibration = load_calibration(
            TESTS_DIR.parent / "workloads" / name / "calibration.json", name, framework=framework
        )
        share = calibration.eval_period_time_sec / calibration.max_allowed_runtime_sec
        if share > 0.04:
            too_coarse[name] = (
                f"{calibration.eval_period_time_sec} s of {calibration.max_allowed_runtime_sec} s"
            )
    assert not too_coarse


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_each_scored_workloads_budget_holds_its_step_hint_in_both_frameworks(framework: str) -> None:
    # AlgoPerf's step_hint is the steps the baseline can take in the budget (VALIDITY.md, rule 2): a budget
    # that holds fewer cuts every schedule sized by step_hint before its end.
    short = {}
    for name in algoperf_board_workloads():
        calibration = load_calibration(
            TESTS_DIR.parent / "workloads" / name / "calibration.json", name, framework=framework
        )
        if calibration.steps_in_budget is None or calibration.steps_in_budget < calibration.step_hint:
            short[name] = (
                f"{calibration.steps_in_budget} steps in the budget, step_hint {calibration.step_hint}"
            )
    assert not short


# ---- a session picks its profile ------------------------------------------------------------------------

CALIBRATED_TINY = """\
import sys
from pathlib import Path

sys.path.insert(0, {tests!r})
from tiny import TinyWorkload  # noqa: E402

from pytest_algoperf.calibration import CalibratedWorkload  # noqa: E402


class CalibratedTiny(CalibratedWorkload, TinyWorkload):
    calibration_file = Path(__file__).with_name("calibration.json")


def pytest_algoperf_add_workloads(registry):
    registry.register("tiny", pytorch=CalibratedTiny)
"""


def calibrated_tiny_project(pytester: pytest.Pytester, *profiles: str) -> None:
    """The tiny workload with targets 0.9 / 0.85 and the named ``PROFILES`` as its calibration."""
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(CALIBRATED_TINY.format(tests=str(TESTS_DIR)))
    entry = {"validation_target": 0.9, "test_target": 0.85, "step_hint": 200}
    entry["profiles"] = {name: PROFILES[name] for name in profiles}
    (pytester.path / "calibration.json").write_text(json.dumps({"tiny": entry}))
    write_submission(pytester.path)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    common = ("--algoperf-submission=tinysgd", "--algoperf-workloads=tiny", "--algoperf-output=out")
    return pytester.runpytest(*QUIET_PLUGINS, *common, *args)


def test_a_session_uses_the_profile_matching_its_threads_says_so_and_records_it(
    pytester: pytest.Pytester,
) -> None:
    calibrated_tiny_project(pytester, "cpu-4threads", "cpu-1thread", "cuda-nvidia-h200")
    result = run(pytester, "--algoperf-threads=1")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["algoperf: hardware profile for pytorch: cpu-1thread (matches cpu with 1 thread)"]
    )
    recorded = only_run(pytester)
    assert (recorded["hardware_profile"], recorded["budget_sec"], recorded["threads"]) == (
        "cpu-1thread",
        5.0,
        1,
    )
    session = json.loads((pytester.path / "out" / "results.json").read_text())["session"]
    assert session["hardware"]["profiles"] == {"pytorch": {"tiny": "cpu-1thread"}}
    assert session["hardware"]["devices"] == {"pytorch": {"device": "cpu", "threads": 1}}


def test_a_session_gives_a_run_its_frameworks_own_budget_where_the_profile_has_one(
    pytester: pytest.Pytester,
) -> None:
    calibrated_tiny_project(pytester, "cpu-1thread")
    path = pytester.path / "calibration.json"
    calibration = json.loads(path.read_text())
    own = {"max_allowed_runtime_sec": 4.0, "steps_in_budget": 300}
    calibration["tiny"]["profiles"]["cpu-1thread"]["by_framework"] = {"pytorch": own}
    path.write_text(json.dumps(calibration))
    result = run(pytester, "--algoperf-threads=1")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    recorded = only_run(pytester)
    assert recorded["budget_sec"] == 4.0
    assert (
        recorded["calibration"]["max_allowed_runtime_sec"],
        recorded["calibration"]["steps_in_budget"],
    ) == (
        4.0,
        300,
    )


def test_auto_threads_are_the_cpu_profiles_so_its_budgets_apply(pytester: pytest.Pytester) -> None:
    calibrated_tiny_project(pytester, "cpu-1thread")
    result = run(pytester)  # no --algoperf-threads: on any machine the 1-thread profile fits
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["algoperf: 1 CPU threads per process; *"])
    assert only_run(pytester)["hardware_profile"] == "cpu-1thread"


def test_without_a_matching_profile_the_session_says_so_and_how_to_make_one(
    pytester: pytest.Pytester,
) -> None:
    calibrated_tiny_project(pytester, "cpu-4threads", "cuda-nvidia-h200")
    result = run(pytester, "--algoperf-threads=1")
    assert_usage_error(
        result,
        "no hardware profile for pytorch on cpu with 1 thread for tiny; profiles: ",
        "cpu-4threads (cpu with 4 threads)",
        "cuda-nvidia-h200 (cuda on NVIDIA H200)",
        "--derive-from cpu-4threads --device cpu --threads 1",
        "--profile cpu-1thread --write",
    )
    assert not (pytester.path / "out" / "results.json").exists()


def test_a_profile_borrowed_by_name_is_used_and_the_header_says_it_was_chosen(
    pytester: pytest.Pytester,
) -> None:
    calibrated_tiny_project(pytester, "cpu-4threads", "cuda-nvidia-h200")
    result = run(pytester, "--algoperf-threads=1", "--algoperf-hardware-profile=cuda-nvidia-h200")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    header = (
        "algoperf: hardware profile for pytorch: cuda-nvidia-h200 (chosen with --algoperf-hardware-profile; "
    )
    result.stdout.fnmatch_lines([header + "this session runs on cpu with 1 thread)"])
    assert (only_run(pytester)["hardware_profile"], only_run(pytester)["budget_sec"]) == (
        "cuda-nvidia-h200",
        2.0,
    )


# ---- the gate compares times only within one profile ------------------------------------------------------


def _result(profile: str, time_to_target: float) -> RunResult:
    return RunResult(
        "tinysgd-pytorch-tiny",
        "tinysgd",
        "pytorch",
        "tiny",
        seed=1,
        threads=1,
        hardware_profile=profile,
        eval_every_steps=1,
        steps_to_target=10,
        time_to_target=time_to_target,
        reached=True,
        global_step=10,
        submission_time=time_to_target,
    )


def _entry(profile: str | None) -> BaselineEntry:
    run = BaselineRun(0, 0, 1, True, True, 10, 1.0, 0.1)
    return BaselineEntry("tinysgd", "pytorch", "tiny", (run,), 1, 100, 1, "cpu", hardware_profile=profile)


def test_stored_times_from_another_hardware_profile_are_not_compared() -> None:
    slower = _result("cuda-nvidia-h200", time_to_target=9.0)  # 9x the baseline's second
    other = judge(
        slower,
        Baseline(Path("b.json"), {"tinysgd/pytorch/tiny": _entry("cpu-1thread")}),
        Tolerances(seconds=0.0),
    )
    assert other.status == "ok"
    stored = other.comparisons[-1]
    assert (stored.interval, stored.status) == ("not comparable", "ok")
    assert (
        stored.note
        == "hardware profile cpu-1thread vs cuda-nvidia-h200: times from different hardware are not compared"
    )
    same = judge(
        _result("cpu-1thread", 9.0),
        Baseline(Path("b.json"), {"tinysgd/pytorch/tiny": _entry("cpu-1thread")}),
        Tolerances(seconds=0.0),
    )
    assert same.status == "regressed"
    assert profile_difference(slower, _entry(None)) is None  # a baseline from before profiles: compared
