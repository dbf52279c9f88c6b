"""The target-setting tool (``python -m pytest_algoperf.calibrate``): runs of a fixed number of steps, the
rule that turns reruns into targets and a budget, resuming from the progress file, and quick mode on mnist
reproducing the committed mnist targets."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tiny import TinyWorkload, load_tiny_submission, tiny_hyperparameters

from pytest_algoperf import calibrate
from pytest_algoperf.calibration import CalibratedWorkload, load_calibration
from pytest_algoperf.calibration_progress import Trial
from pytest_algoperf.calibration_rule import capped_eval_period, targets_from_reruns
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.loop import RunSettings, run_benchmark
from pytest_algoperf.results import RunResult

ROOT = Path(__file__).resolve().parents[1]
QUICK_MNIST = (
    "--workload mnist --max-steps 600 --eval-every-steps 50 --eval-period-sec 0.05 --target-quantile 0"
)


class UnreachableTinyWorkload(TinyWorkload):
    validation_target_value = 1.01


def test_a_run_with_max_steps_trains_exactly_that_many_and_evaluates_the_last(tmp_path: Path) -> None:
    result = RunResult("tiny-steps", "tinysgd", "pytorch", "tiny", seed=0)
    settings = RunSettings(
        seed=0,
        hyperparameters=tiny_hyperparameters(),
        budget_sec=math.inf,
        eval_every_steps=5,
        step_budget=12,
    )
    submission = load_tiny_submission(tmp_path)
    run_benchmark(UnreachableTinyWorkload(), submission, get_adapter("pytorch"), settings, result)
    assert result.stop_reason == "step budget spent"
    assert result.global_step == 12
    assert result.evals[-1].global_step == 12


def trial(framework: str, seed: int, best: float, times_and_values: list[tuple[float, float]]) -> Trial:
    return Trial("adamw", framework, {"learning_rate": 0.1}, seed, best, best - 0.01, 100.0, times_and_values)


def test_targets_are_the_median_best_the_worst_test_that_met_it_and_4_3_of_the_slowest_median() -> None:
    reruns = [
        trial("pytorch", 0, 0.90, [(1.0, 0.5), (2.0, 0.90)]),
        trial("pytorch", 1, 0.80, [(1.0, 0.5), (3.0, 0.80)]),
        trial("pytorch", 2, 0.95, [(1.0, 0.5), (4.0, 0.95)]),
        trial("jax", 0, 0.92, [(3.5, 0.92)]),
        trial("jax", 1, 0.70, [(6.0, 0.70)]),
    ]
    args = SimpleNamespace(
        target_quantile=0.5,
        budget_quantile=0.5,
        min_budget_sec=0.0,
        eval_period_sec=0.5,
        argv=["--workload", "tiny"],
    )
    values = targets_from_reruns(args, TinyWorkload(), reruns[0], reruns[:1], reruns)
    assert values["validation_target"] == 0.90  # the median of 0.90, 0.80, 0.95, 0.92, 0.70
    assert values["test_target"] == pytest.approx(0.89)  # the worst best test value of the three that met it
    # pytorch meets 0.90 at 2.0 s and 4.0 s (median 3.0), jax at 3.5 s: the budget is 4/3 x 3.5
    assert values["max_allowed_runtime_sec"] == pytest.approx(4.67)
    # Each framework also gets its own budget by the same rule, with its steps in it (100 steps/s here).
    assert values["by_framework"] == {
        "jax": {"max_allowed_runtime_sec": pytest.approx(4.67), "steps_in_budget": 467},
        "pytorch": {"max_allowed_runtime_sec": pytest.approx(4.0), "steps_in_budget": 400},
    }
    assert values["command"] == "python -m pytest_algoperf.calibrate --workload tiny"
    args.budget_quantile = 1.0  # the slowest rerun that met the target: pytorch's 4.0 s
    assert targets_from_reruns(args, TinyWorkload(), reruns[0], reruns[:1], reruns)[
        "max_allowed_runtime_sec"
    ] == (pytest.approx(5.33))
    args.min_budget_sec = 10.0  # a floor for dev workloads, which train in less time than overheads take
    assert targets_from_reruns(args, TinyWorkload(), reruns[0], reruns[:1], reruns)[
        "max_allowed_runtime_sec"
    ] == (pytest.approx(10.0))


def test_a_rerun_slowed_by_another_process_counts_its_steps_not_its_seconds() -> None:
    """Two reruns take 300 steps to the target; one ran at half the step rate (a shared CPU) and took 6 s,
    not 3: the budget is 4/3 of 3 s."""
    quiet = Trial("adamw", "pytorch", {}, 0, 0.9, 0.9, 100.0, [(3.0, 0.9)])
    slowed = Trial("adamw", "pytorch", {}, 1, 0.9, 0.9, 50.0, [(6.0, 0.9)])
    args = SimpleNamespace(
        target_quantile=0.0, budget_quantile=1.0, min_budget_sec=0.0, eval_period_sec=0.5, argv=[]
    )
    values = targets_from_reruns(args, TinyWorkload(), quiet, [quiet], [quiet, slowed])
    assert values["max_allowed_runtime_sec"] == pytest.approx(4.0)
    assert "by_framework" not in values  # one framework: its budget is the shared one
    # The framework's step rate is its fastest rerun's, whether or not that rerun met the median target.
    fast_but_short = Trial("adamw", "pytorch", {}, 0, 0.5, 0.5, 100.0, [(3.0, 0.5)])
    args.target_quantile = 0.5
    values = targets_from_reruns(args, TinyWorkload(), slowed, [slowed], [fast_but_short, slowed])
    assert values["validation_target"] == 0.7 and values["max_allowed_runtime_sec"] == pytest.approx(4.0)


def test_the_budget_holds_step_hint_steps_where_the_reruns_met_the_target_early() -> None:
    """AlgoPerf's step_hint is the steps the baseline can take in the budget. A rerun that met the target
    after 1 s (100 steps at 100 steps/s) would make 4/3 s; the budget holds TinyWorkload's 200 steps instead,
    so a submission's step_hint-long schedule is not cut."""
    early = Trial("adamw", "pytorch", {}, 0, 0.9, 0.9, 100.0, [(1.0, 0.9)])
    args = SimpleNamespace(
        target_quantile=0.0, budget_quantile=1.0, min_budget_sec=0.0, eval_period_sec=0.5, argv=[]
    )
    values = targets_from_reruns(args, TinyWorkload(), early, [early], [early])
    assert values["max_allowed_runtime_sec"] == pytest.approx(2.0)
    assert values["measured"]["steps_in_budget"] == TinyWorkload.step_hint


def test_an_eval_period_over_4_percent_of_a_frameworks_budget_is_cut_to_the_half_second_grid() -> None:
    """VALIDITY.md, rule 3: coarser periods cluster times to target at eval points. JAX steps slower here, so
    its budget is longer and keeps the requested period; PyTorch's shorter budget gets a period of its own."""
    assert capped_eval_period(3.0, 88.39) == 3.0  # 3.4% of it
    assert capped_eval_period(3.0, 50.87) == 2.0  # 4% is 2.03 s
    assert capped_eval_period(1.0, 17.41) == 0.5  # never under 0.5 s
    assert capped_eval_period(0.05, 10.0) == 0.05  # mnist's period, far under 4%
    assert capped_eval_period(0.05, 1.24) == 0.05  # over 4% of a fast machine's budget: kept
    assert capped_eval_period(0.7, 10.0) == 0.5  # 4% is 0.4 s: the grid's floor, still shorter than asked
    # PyTorch's reruns meet the target after 40 s, JAX's after 80 s: budgets of 53.33 s and 106.67 s.
    pytorch = [Trial("nadamw", "pytorch", {}, seed, 0.9, 0.9, 100.0, [(40.0, 0.9)]) for seed in (0, 1)]
    jax = [Trial("nadamw", "jax", {}, seed, 0.9, 0.9, 50.0, [(80.0, 0.9)]) for seed in (0, 1)]
    args = SimpleNamespace(
        target_quantile=0.5, budget_quantile=1.0, min_budget_sec=0.0, eval_period_sec=3.0, argv=[]
    )
    values = targets_from_reruns(args, TinyWorkload(), pytorch[0], pytorch, pytorch + jax)
    assert values["eval_period_time_sec"] == 3.0  # the shared budget is JAX's
    assert "eval_period_time_sec" not in values["by_framework"]["jax"]
    assert values["by_framework"]["pytorch"]["eval_period_time_sec"] == 2.0
    assert "rule 3" in values["by_framework"]["pytorch"]["eval_period_note"]


def test_a_calibration_run_schedules_over_3_4_of_step_hint_and_then_step_hint_is_back(
    tmp_path: Path,
) -> None:
    """AlgoPerf's target-setting baselines schedule over 0.75 x step_hint, its scored ones over step_hint."""
    path = tmp_path / "calibration.json"
    budget = {"max_allowed_runtime_sec": 5.0, "eval_period_time_sec": 0.0, "step_hint": 400}
    path.write_text(json.dumps({"tiny": {"validation_target": 0.9, "test_target": 0.85, **budget}}))

    class CalibratedTiny(CalibratedWorkload, TinyWorkload):
        calibration_file = path

    workload = CalibratedTiny()
    with workload.without_target():
        during = (workload.step_hint, workload.validation_target_value)
    assert during == (300, math.inf)  # nothing stops the run, and its schedule is the target-setting one
    assert workload.step_hint == 400


def test_a_rerun_that_falls_short_of_the_median_is_recorded_with_no_time_to_target() -> None:
    """Half the reruns miss a median target; JSON has no infinity, so their time is null."""
    reruns = [trial("pytorch", 0, 0.90, [(2.0, 0.90)]), trial("pytorch", 1, 0.80, [(3.0, 0.80)])]
    args = SimpleNamespace(
        target_quantile=0.5, budget_quantile=1.0, min_budget_sec=0.0, eval_period_sec=0.5, argv=[]
    )
    values = targets_from_reruns(args, TinyWorkload(), reruns[0], reruns[:1], reruns)
    assert values["validation_target"] == 0.85
    recorded = values["measured"]["reruns"]
    assert [r["time_to_target"] for r in recorded] == [2.0, None]
    json.dumps(values, allow_nan=False)  # what --write does: it would raise on an infinity


def test_a_loaded_entry_knows_its_reruns_seed_spread_and_none_without_two_reruns(tmp_path: Path) -> None:
    """The spread a single run's miss is judged against (RunResult.missed_within_seed_noise)."""
    budget = {"max_allowed_runtime_sec": 10.0, "eval_period_time_sec": 1.0, "step_hint": 100}
    reruns = [
        {"framework": "pytorch", "seed": s, "best_validation": v} for s, v in enumerate((0.7, 0.8, 0.9))
    ]
    entries = {
        "w": {"validation_target": 0.8, "test_target": 0.8, **budget, "measured": {"reruns": reruns}},
        "once": {"validation_target": 0.8, "test_target": 0.8, **budget, "measured": {"reruns": reruns[:1]}},
    }
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(entries))
    assert load_calibration(path, "w").seed_std == pytest.approx(0.1)
    assert load_calibration(path, "once").seed_std is None


def test_written_targets_are_rounded_towards_the_side_the_reruns_met() -> None:
    reruns = [trial("pytorch", 0, 0.9123459, [(1.0, 0.9123459)]), trial("jax", 0, 0.95, [(1.0, 0.95)])]
    args = SimpleNamespace(
        target_quantile=0.0, budget_quantile=1.0, min_budget_sec=0.0, eval_period_sec=0.5, argv=[]
    )
    values = targets_from_reruns(args, TinyWorkload(), reruns[0], reruns[:1], reruns)
    assert values["validation_target"] == 0.912345  # not 0.912346, which the pytorch rerun did not reach
    assert values["test_target"] == 0.902345  # its best test value, 0.9023459, rounded down too


def test_quick_mode_on_mnist_reproduces_the_committed_targets_within_two_percent(tmp_path: Path) -> None:
    output = tmp_path / "calibration.json"
    argv = [*QUICK_MNIST.split(), "--quick", "--write", "--output", str(output)]
    argv += ["--progress", str(tmp_path / "p.json")]
    assert calibrate.main(argv) == 0
    written = json.loads(output.read_text())["digits"]
    committed = json.loads((ROOT / "workloads" / "mnist" / "calibration.json").read_text())["digits"]
    for name in ("validation_target", "test_target"):
        assert written[name] == pytest.approx(committed[name], rel=0.02)
    assert written["step_hint"] == committed["step_hint"]
    assert written["measured"]["point"]["learning_rate"] == 0.002  # adamw's tuned default: a one-point sweep


def test_a_second_run_of_the_same_command_resumes_from_the_progress_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    progress = tmp_path / "p.json"
    argv = [*QUICK_MNIST.split(), "--quick", "--progress", str(progress)]
    calibrate.main(argv)
    first = json.loads(capsys.readouterr().out)
    saved = json.loads(progress.read_text())
    assert len(saved["trials"]) == 3  # one sweep point, two seeds
    assert list(saved["measures"]) == ["dropout_step_cost/pytorch"]  # what dropout costs a step (rule 2)

    def must_not_train(*args: object) -> Trial:
        raise AssertionError("a finished run was trained again")

    def must_not_measure(*args: object) -> float:
        raise AssertionError("a kept measurement was taken again")

    monkeypatch.setattr(calibrate, "train_without_target", must_not_train)
    monkeypatch.setattr(calibrate, "winner_dropout_step_cost", must_not_measure)
    calibrate.main(argv)
    captured = capsys.readouterr()
    assert "resuming from" in captured.err and "3 runs already done" in captured.err
    assert f"x{saved['measures']['dropout_step_cost/pytorch']} in pytorch" in captured.err
    resumed = json.loads(captured.out)
    assert resumed["validation_target"] == first["validation_target"]
    assert resumed["measured"]["reruns"] == first["measured"]["reruns"]

    with pytest.raises(AssertionError, match="trained again"):  # other run arguments: nothing is reused
        calibrate.main([*argv, "--threads", "2"])
    # ... and nothing is lost: the other calibration's runs are kept aside, and the message says where.
    assert "runs kept in" in capsys.readouterr().err
    assert len(json.loads((tmp_path / "p.1.json").read_text())["trials"]) == 3


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(framework, seed) of each run that calibrate trains from now on, in order; the runs still train."""
    runs: list[tuple[str, int]] = []
    train = calibrate.train_without_target

    def counting(workload: Any, submission: str, framework: str, point: Any, seed: int, args: Any) -> Trial:
        runs.append((framework, seed))
        return train(workload, submission, framework, point, seed, args)

    monkeypatch.setattr(calibrate, "train_without_target", counting)
    return runs


def test_the_sweep_run_is_reused_as_the_first_frameworks_seed_0_rerun(
    tmp_path: Path, trained: list[tuple[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    calibrate.main([*QUICK_MNIST.split(), "--quick", "--progress", str(tmp_path / "p.json")])
    assert trained == [("pytorch", 0), ("pytorch", 1)]  # the sweep, then seed 1: seed 0 is the sweep's run
    reruns = json.loads(capsys.readouterr().out)["measured"]["reruns"]
    assert [(r["framework"], r["seed"]) for r in reruns] == [("pytorch", 0), ("pytorch", 1)]


def test_more_seeds_resume_the_runs_already_made_and_train_only_the_new_seeds(
    tmp_path: Path, trained: list[tuple[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    one_point = [*QUICK_MNIST.split(), "--trials", "1", "--progress", str(tmp_path / "p.json")]
    calibrate.main([*one_point, "--seeds", "1"])
    capsys.readouterr()
    trained.clear()
    calibrate.main([*one_point, "--seeds", "2"])
    assert trained == [("pytorch", 1)]  # seed 0 came from the progress file
    reruns = json.loads(capsys.readouterr().out)["measured"]["reruns"]
    assert [(r["framework"], r["seed"]) for r in reruns] == [("pytorch", 0), ("pytorch", 1)]


def test_an_unknown_workload_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match=r"unknown workload 'nope'; built-in ones: .*mnist"):
        calibrate.main(["--workload", "nope", "--max-steps", "1", "--eval-period-sec", "1"])


# ---- hardware profiles (issue 18) ------------------------------------------------------------------------


# Long enough for the committed mnist target (0.963333), which 600 steps may not reach.
KEEP_TARGETS_MNIST = (
    "--workload mnist --max-steps 2000 --eval-every-steps 20 --eval-period-sec 0.05 --keep-targets"
)


def test_keep_targets_writes_only_a_profile_measured_against_the_committed_targets(tmp_path: Path) -> None:
    output = tmp_path / "calibration.json"
    argv = [*KEEP_TARGETS_MNIST.split(), "--quick", "--profile", "cpu-here", "--write"]
    assert calibrate.main([*argv, "--output", str(output), "--progress", str(tmp_path / "p.json")]) == 0
    written = json.loads(output.read_text())["digits"]
    committed = json.loads((ROOT / "workloads" / "mnist" / "calibration.json").read_text())["digits"]
    assert {k: v for k, v in written.items() if k != "profiles"} == {
        k: v for k, v in committed.items() if k != "profiles"
    }  # the targets and what set them: untouched
    assert written["profiles"]["cpu-1thread"] == committed["profiles"]["cpu-1thread"]
    profile = written["profiles"]["cpu-here"]
    assert (profile["device"], profile["threads"], profile["eval_period_time_sec"]) == ("cpu", 1, 0.05)
    assert profile["max_allowed_runtime_sec"] > 0 and profile["steps_in_budget"] > 0
    assert "--keep-targets" in profile["command"] and len(profile["reruns"]) == 2  # quick: two seeds


def test_a_profile_whose_reruns_miss_the_committed_target_is_not_written(tmp_path: Path) -> None:
    output = tmp_path / "calibration.json"
    argv = [*KEEP_TARGETS_MNIST.split(), "--max-steps", "30", "--quick", "--write", "--output", str(output)]
    with pytest.raises(
        SystemExit, match=r"no pytorch rerun reached the committed validation target 0.963333 on cpu"
    ):
        calibrate.main([*argv, "--progress", str(tmp_path / "p.json")])
    assert not output.exists()


def test_calibrating_on_a_device_that_is_not_there_says_so(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit, match=r"calibrate: --device cuda: --algoperf-device=cuda, but torch.cuda"):
        calibrate.main([*QUICK_MNIST.split(), "--device", "cuda", "--progress", str(tmp_path / "p.json")])


def test_a_derived_profile_scales_the_budget_by_the_step_rate_and_keeps_the_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_algoperf.hardware import derive

    committed = load_calibration(ROOT / "workloads" / "criteo1tb_mini" / "calibration.json", "criteo1tb_mini")
    assert committed.steps_in_budget is not None
    reference_rate = committed.steps_in_budget / committed.max_allowed_runtime_sec
    # Here twice as fast as the committed cpu-1thread profile: half the budget.
    rates = iter([reference_rate * 2, reference_rate * 1.5])
    monkeypatch.setattr(derive, "measure_step_rate", lambda *args: next(rates))
    output = tmp_path / "calibration.json"
    argv = ["--derive-from", "cpu-1thread", "--workload", "criteo1tb_mini", "--framework", "pytorch,jax"]
    assert calibrate.main([*argv, "--profile", "fast-cpu", "--write", "--output", str(output)]) == 0
    # the faster framework counts
    assert f"criteo1tb_mini: jax {reference_rate * 1.5:.1f} steps/s" in capsys.readouterr().err
    derived = load_calibration(output, "criteo1tb_mini", profile="fast-cpu")
    reference = load_calibration(output, "criteo1tb_mini", profile="cpu-1thread")
    # to the hundredth of a second, as budgets are written (a half that ends in 5 may round either way: the
    # measured rate's ratio is not exactly 2 in floating point)
    assert derived.max_allowed_runtime_sec == pytest.approx(reference.max_allowed_runtime_sec / 2, abs=0.0051)
    assert derived.eval_period_time_sec == pytest.approx(reference.eval_period_time_sec / 2, abs=0.005)
    assert derived.steps_in_budget == reference.steps_in_budget == committed.steps_in_budget
    assert derived.validation_target == reference.validation_target
    record = json.loads(output.read_text())["criteo1tb_mini"]["profiles"]["fast-cpu"]
    assert record["derived"] == {
        "from": "cpu-1thread",
        "reference_steps_per_sec": pytest.approx(reference_rate, abs=0.01),
        "steps_per_sec": pytest.approx(reference_rate * 2, abs=0.01),
        "scale": 0.5,
    }


def test_the_step_rate_is_timed_after_untimed_warmup_steps(tmp_path: Path) -> None:
    from pytest_algoperf.hardware.derive import step_rate
    from pytest_algoperf.loop import Trainer

    settings = RunSettings(seed=0, hyperparameters=tiny_hyperparameters())
    trainer = Trainer.start(TinyWorkload(), load_tiny_submission(tmp_path), get_adapter("pytorch"), settings)
    assert step_rate(trainer, steps=20, warmup=3) > 0
    assert trainer.global_step == 23
