"""``gate.verdicts.judge`` on hand-made runs: steps are compared exactly, times against the tolerance, the
recorded spread and the machine's load; only a difference that noise cannot explain is a regression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_algoperf.gate.baseline_file import (
    Baseline,
    BaselineEntry,
    BaselineRun,
    load_baseline,
    save_baseline,
)
from pytest_algoperf.gate.paired import PairedMeasurement
from pytest_algoperf.gate.verdicts import Tolerances, judge, parse_tolerances
from pytest_algoperf.results import RunResult

MACHINE = {"processor": "AMD EPYC", "cpu_count": 2}
QUIET = {"other_cpus": 0.0, "contended": False}
BUSY = {"other_cpus": 0.97, "steal_fraction": 0.0, "cpu_count": 2, "contended": True}


def make_result(
    steps: int | None = 100,
    time: float | None = 10.0,
    submission: str = "sgd",
    schedule: tuple[int | None, int | None] = (10, 1000),
    threads: int = 1,
    load: dict[str, Any] | None = None,
    paired: PairedMeasurement | None = None,
) -> RunResult:
    eval_every_steps, step_budget = schedule
    return RunResult(
        test_id=f"{submission}-pytorch-tiny",
        submission=submission,
        framework="pytorch",
        workload="tiny",
        seed=0,
        eval_every_steps=eval_every_steps,
        step_budget=step_budget,
        threads=threads,
        budget_sec=20.0,
        reached=steps is not None,
        steps_to_target=steps,
        time_to_target=time if steps is not None else None,
        global_step=steps or step_budget or 500,
        load=load or QUIET,
        paired=None if paired is None else paired.to_json(),
    )


def make_entry(
    *times: float,
    steps: int | None = 100,
    submission: str = "sgd",
    schedule: tuple[int | None, int | None] = (10, 1000),
    contended: bool = False,
) -> BaselineEntry:
    """An entry with one run per time (study 0, trials 0..n); each run's step time is its time / steps."""
    runs = tuple(
        BaselineRun(
            0, trial, 0, steps is not None, steps is not None, steps, t if steps else None, t / 100, contended
        )
        for trial, t in enumerate(times or (10.0,))
    )
    return BaselineEntry(submission, "pytorch", "tiny", runs, *schedule, threads=1, device="cpu")


def make_baseline(*entries: BaselineEntry, machine: dict[str, Any] = MACHINE) -> Baseline:
    keyed = {f"{e.submission}/{e.framework}/{e.workload}": e for e in entries}
    return Baseline(Path("baseline.json"), keyed, machine)


def verdict_of(result: RunResult, *entries: BaselineEntry, tolerance: float = 0.1, **kwargs: Any) -> Any:
    return judge(result, make_baseline(*entries, **kwargs), Tolerances(tolerance, {}, 1.0), MACHINE)


def paired(ratio: float, low: float, high: float) -> PairedMeasurement:
    return PairedMeasurement(0.010, 0.010 * ratio, ratio, low, high, 0.965, 15, 4)


# ---- steps: exact --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "status"), [(90, "ok"), (100, "ok"), (101, "regressed"), (300, "regressed")]
)
def test_steps_to_target_on_the_same_schedule_are_compared_exactly(steps: int, status: str) -> None:
    verdict = verdict_of(make_result(steps=steps, time=10.0), make_entry(10.0), tolerance=10.0)
    assert verdict.status == status
    assert verdict.comparisons[0].measure == "steps to target"
    assert verdict.comparisons[0].interval == "exact"


def test_missing_the_target_within_the_step_budget_regresses_whatever_the_load() -> None:
    verdict = verdict_of(make_result(steps=None, load=BUSY), make_entry(10.0))
    assert verdict.status == "regressed"
    assert verdict.detail == "target: missed the target in 1000 steps; the baseline met it at 100"


def test_a_miss_in_time_mode_under_contention_is_inconclusive_and_on_a_quiet_machine_regressed() -> None:
    time_mode = (None, None)
    busy = verdict_of(make_result(steps=None, load=BUSY, schedule=time_mode), make_entry(schedule=time_mode))
    quiet = verdict_of(make_result(steps=None, schedule=time_mode), make_entry(schedule=time_mode))
    assert (busy.status, quiet.status) == ("inconclusive", "regressed")
    assert "under contention (other processes used 0.97 of 2 CPUs)" in busy.detail


def test_a_miss_in_time_mode_by_the_targets_seed_noise_only_is_inconclusive() -> None:
    """Time-based evals give a rerun another trajectory; a shortfall a baseline seed also shows is no
    evidence. Beyond the noise, or in step mode (exact), a miss still regresses."""
    time_mode = (None, None)

    def missed_by(shortfall: float, schedule: tuple[int | None, int | None]) -> str:
        result = make_result(steps=None, schedule=schedule)
        result.validation_target, result.best_validation = 0.8, 0.8 - shortfall
        result.calibration = {"target_seed_std": 0.01}
        return verdict_of(result, make_entry(schedule=schedule)).status

    assert missed_by(0.02, time_mode) == "inconclusive"
    assert missed_by(0.05, time_mode) == "regressed"
    assert missed_by(0.02, (10, 1000)) == "regressed"


def test_a_miss_at_the_step_cap_of_a_target_the_baseline_met_after_it_is_inconclusive() -> None:
    """A time-mode baseline saved without the cap met the target at step 100; a run capped at step 80 could
    not: that says which cap each ran under, not that the code got slower. Under the cap it met it by, a miss
    still regresses."""
    time_mode = (None, None)

    def missed_with_cap(cap: int) -> Any:
        result = make_result(steps=None, schedule=time_mode)
        result.max_global_steps = cap
        return verdict_of(result, make_entry(steps=100, schedule=time_mode))

    capped_before = missed_with_cap(80)
    assert capped_before.status == "inconclusive"
    assert "met the target at step 100, after this run's step cap of 80" in capped_before.detail
    assert missed_with_cap(120).status == "regressed"


@pytest.mark.parametrize(
    ("result_schedule", "entry_schedule"),
    [((None, None), (None, None)), ((5, 1000), (10, 1000)), ((10, 1000), (None, None))],
    ids=["both-time-based", "other-eval-period", "baseline-time-based"],
)
def test_steps_on_different_schedules_are_not_comparable(
    result_schedule: tuple[int | None, int | None], entry_schedule: tuple[int | None, int | None]
) -> None:
    verdict = verdict_of(
        make_result(steps=300, schedule=result_schedule), make_entry(schedule=entry_schedule)
    )
    steps = verdict.comparisons[0]
    assert (steps.interval, steps.status) == ("not comparable", "ok")


def test_more_steps_with_another_thread_count_is_inconclusive_not_a_regression() -> None:
    """PyTorch's numbers change with its thread count, so the same seed may take another path."""
    result = make_result(steps=120, threads=2)
    verdict = verdict_of(result, make_entry(10.0), tolerance=10.0)
    assert verdict.status == "inconclusive"
    assert verdict.detail.endswith("but with different threads 1 vs 2")


def test_a_baseline_that_never_met_the_target_cannot_be_regressed_against() -> None:
    assert verdict_of(make_result(steps=None), make_entry(steps=None)).status == "ok"


def test_a_single_submission_baseline_is_the_reference_for_any_submission_name() -> None:
    assert verdict_of(make_result(submission="sgd_copy"), make_entry(submission="sgd")).status == "ok"


def test_with_several_submissions_in_the_baseline_only_the_same_name_matches() -> None:
    entries = (make_entry(submission="sgd"), make_entry(submission="adam"))
    assert verdict_of(make_result(submission="sgd_copy"), *entries).status == "new"
    assert verdict_of(make_result(submission="adam", steps=200), *entries).status == "regressed"


# ---- times: paired -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "status"),
    [((1.0, 0.97, 1.04), "ok"), ((1.2, 1.05, 1.3), "inconclusive"), ((1.25, 1.15, 1.33), "regressed")],
    ids=["below", "straddles", "above"],
)
def test_a_paired_interval_regresses_only_when_it_lies_wholly_above_the_threshold(
    interval: tuple[float, float, float], status: str
) -> None:
    verdict = verdict_of(make_result(paired=paired(*interval)), make_entry(10.0), tolerance=0.1)
    row = verdict.comparisons[1]
    assert (row.measure, row.threshold, row.status) == ("time to target (paired)", "1.10", status)
    assert row.baseline == "100 x 10.00 ms = 1.00s"


def test_a_paired_time_to_target_is_steps_times_the_paired_step_time() -> None:
    """Fewer steps scale the whole interval: 80 steps at 1.2x the step time is 0.96x the time."""
    verdict = verdict_of(make_result(steps=80, paired=paired(1.2, 1.15, 1.25)), make_entry(10.0))
    row = verdict.comparisons[1]
    assert row.ratio == pytest.approx(0.96)
    assert row.interval.startswith("[0.920, 1.000]")
    assert row.now == "80 x 12.00 ms = 0.96s" and verdict.status == "ok"


def test_paired_times_ignore_the_load_both_sides_shared_it() -> None:
    verdict = verdict_of(make_result(load=BUSY, paired=paired(1.3, 1.2, 1.4)), make_entry(10.0))
    assert verdict.status == "regressed"


# ---- times: stored -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("time", "status"), [(11.0, "ok"), (12.0, "ok"), (12.01, "regressed")])
def test_a_stored_time_may_exceed_the_baseline_by_the_tolerance_plus_the_seconds(
    time: float, status: str
) -> None:
    """The limit is 10 s x 1.1 + 1 s = 12 s with one baseline run (no recorded spread)."""
    verdict = verdict_of(make_result(time=time), make_entry(10.0))
    row = verdict.comparisons[1]
    assert (row.measure, row.threshold, row.status) == ("time to target (stored)", "1.20", status)
    assert row.interval == "no spread (1 run)"
    if status == "regressed":
        assert verdict.detail.endswith("over 1.20x with no recorded spread (one baseline run)")


def test_the_recorded_spread_widens_the_allowance() -> None:
    """Two baseline runs whose step times differ by 20%: the limit is 1.1 x 1.2 + 0.1 = 1.42."""
    entry = make_entry(10.0, 12.0)
    assert verdict_of(make_result(time=14.1), entry).status == "ok"
    verdict = verdict_of(make_result(time=14.3), entry)
    assert verdict.status == "regressed"
    assert verdict.comparisons[1].interval == "spread 20.0% (2 runs)"


@pytest.mark.parametrize(
    ("result_load", "baseline_contended", "machine", "excuse"),
    [
        (BUSY, False, MACHINE, "measured under contention (other processes used 0.97 of 2 CPUs)"),
        (QUIET, True, MACHINE, "the baseline was measured under contention"),
        (QUIET, False, {"processor": "Intel Xeon", "cpu_count": 2}, "another machine (processor Intel Xeon"),
    ],
    ids=["contended-now", "contended-baseline", "other-machine"],
)
def test_a_slower_stored_time_that_noise_explains_is_inconclusive(
    result_load: dict[str, Any], baseline_contended: bool, machine: dict[str, Any], excuse: str
) -> None:
    entry = make_entry(10.0, contended=baseline_contended)
    verdict = verdict_of(make_result(time=20.0, load=result_load), entry, machine=machine)
    assert verdict.status == "inconclusive"
    assert excuse in verdict.detail


# ---- tolerances and the file ---------------------------------------------------------------------------


def test_tolerances_have_a_default_and_per_workload_values() -> None:
    tolerances = parse_tolerances("0.05, ogbg_mini:0.3 criteo1tb_mini:0.25", seconds=2.0)
    assert (tolerances.of("ogbg_mini"), tolerances.of("criteo1tb_mini"), tolerances.of("mnist")) == (
        0.3,
        0.25,
        0.05,
    )
    assert parse_tolerances("ogbg_mini:0.3").of("mnist") == 0.1
    assert tolerances.seconds == 2.0


@pytest.mark.parametrize("text", ["x", "ogbg:", "ogbg:-0.1", "-1"])
def test_a_malformed_tolerance_names_the_item(text: str) -> None:
    with pytest.raises(ValueError, match=r"tolerance|WORKLOAD:FRACTION"):
        parse_tolerances(text)


def test_save_then_load_round_trips_one_entry_per_workload_and_leaves_out_runs_that_errored(
    tmp_path: Path,
) -> None:
    ok, other_trial = make_result(time=1.5), make_result(steps=120, time=2.0)
    other_trial.trial = 1
    errored = make_result(submission="broken")
    errored.stop_reason = "error"
    path = tmp_path / "nested" / "baseline.json"
    save_baseline(path, [ok, other_trial, errored], {"machine": MACHINE, "software": {"torch": "2.13"}})
    loaded = load_baseline(path)
    assert set(loaded.entries) == {"sgd/pytorch/tiny"}
    entry = loaded.entries["sgd/pytorch/tiny"]
    assert (entry.eval_every_steps, entry.step_budget, entry.threads) == (10, 1000, 1)
    assert [(r.trial, r.steps_to_target, r.time_to_target) for r in entry.runs] == [
        (0, 100, 1.5),
        (1, 120, 2.0),
    ]
    assert entry.run_for(0, 1).steps_to_target == 120
    assert loaded.machine == MACHINE and loaded.software == {"torch": "2.13"}


def test_saving_with_kept_entries_adds_this_sessions_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    kept = {"adam/pytorch/tiny": make_entry(5.0, submission="adam"), "sgd/pytorch/tiny": make_entry(99.0)}
    save_baseline(path, [make_result(time=1.5)], {}, keep=kept)
    entries = load_baseline(path).entries
    assert entries["adam/pytorch/tiny"] == kept["adam/pytorch/tiny"]
    assert entries["sgd/pytorch/tiny"].runs[0].time_to_target == 1.5
