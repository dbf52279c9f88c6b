"""Dropout's cost in the budget rule (``pytest_algoperf.dropout_cost``): a budget holds step_hint steps at the
baseline's step with AlgoPerf's baseline dropout of 0.1, which costs a step far more on a CPU than on
AlgoPerf's GPUs, measured in interleaved blocks. (test_calibrate's resume test keeps it with the runs.)"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tiny import TinyWorkload, load_tiny_submission, tiny_hyperparameters

from pytest_algoperf import dropout_cost
from pytest_algoperf.calibration_progress import Trial
from pytest_algoperf.calibration_rule import targets_from_reruns
from pytest_algoperf.hardware.profiles import HardwareProfile

RULE_ARGS = dict(target_quantile=0.0, budget_quantile=1.0, min_budget_sec=0.0, eval_period_sec=0.5, argv=[])


def test_the_cost_is_the_median_of_each_rounds_ratio_never_under_one() -> None:
    # Round 2 ran while the machine was busy: both of its blocks are slow, and its ratio is still 1.3.
    assert dropout_cost.step_cost([0.010, 0.020, 0.010], [0.013, 0.026, 0.014]) == 1.3
    # Dropout never makes a step cheaper: a ratio under 1 is noise, and a budget must not shrink by it.
    assert dropout_cost.step_cost([0.010, 0.010, 0.010], [0.0098, 0.0099, 0.0101]) == 1.0
    with pytest.raises(ValueError, match="one plain and one dropout block per round"):
        dropout_cost.step_cost([0.01, 0.01], [0.01])


def test_the_step_hint_floor_of_the_budget_is_stretched_by_the_cost_and_records_it() -> None:
    """A rerun met the target after 1 s at 100 steps/s; step_hint (200) steps take 2 s without dropout, 2.6 s
    with it at x1.3: the budget is 2.6 s, and holds 260 steps of the baseline's own step."""
    early = Trial("adamw", "pytorch", {}, 0, 0.9, 0.9, 100.0, [(1.0, 0.9)])
    args = SimpleNamespace(**RULE_ARGS)
    values = targets_from_reruns(args, TinyWorkload(), early, [early], [early], {"pytorch": 1.3})
    assert values["max_allowed_runtime_sec"] == pytest.approx(2.6)
    assert values["by_framework"]["pytorch"] == {
        "max_allowed_runtime_sec": pytest.approx(2.6),
        "steps_in_budget": 260,
        "dropout_step_cost": 1.3,
    }
    # A profile that records the cost still reads as a budget.
    profile = {"device": "cpu", "threads": 1, "eval_period_time_sec": 0.5, **values}
    assert HardwareProfile.from_json("cpu-1thread", profile, "pytorch").max_allowed_runtime_sec == 2.6
    # A budget set by the time to target, above the stretched floor, is unchanged.
    late = Trial("adamw", "pytorch", {}, 0, 0.9, 0.9, 100.0, [(3.0, 0.9)])
    values = targets_from_reruns(args, TinyWorkload(), late, [late], [late], {"pytorch": 1.3})
    assert values["max_allowed_runtime_sec"] == pytest.approx(4.0)
    # No cost, or a cost of 1: the budget of before, with nothing to record.
    for costs in (None, {"pytorch": 1.0}):
        values = targets_from_reruns(args, TinyWorkload(), early, [early], [early], costs)
        assert values["max_allowed_runtime_sec"] == pytest.approx(2.0) and "by_framework" not in values


def test_the_measurement_times_both_points_in_alternating_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of the point with dropout take twice as long here: the cost is 2, and the two points' blocks
    alternate which goes first, so neither always meets the machine in the same state."""
    order: list[float] = []

    def fake_block(trainer: Any, steps: int) -> float:
        rate = trainer.hyperparameters.dropout_rate
        order.append(rate)
        return 0.02 if rate else 0.01

    monkeypatch.setattr(dropout_cost, "_block", fake_block)
    args = SimpleNamespace(device="cpu", threads=1, data_dir=None)
    point = tiny_hyperparameters(dropout_rate=0.0)._asdict()
    submission = load_tiny_submission(tmp_path)
    assert dropout_cost.dropout_step_cost(TinyWorkload(), submission, point, args, rounds=2) == 2.0
    # The block size is timed first; then round 1 times the plain point first, round 2 the dropout one.
    assert order == [0.0, 0.0, 0.1, 0.1, 0.0]


def test_a_point_that_already_drops_out_as_much_is_not_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_train(*args: object) -> None:
        raise AssertionError("a point with AlgoPerf's baseline dropout was timed")

    monkeypatch.setattr(dropout_cost.Trainer, "start", must_not_train)
    args = SimpleNamespace(device="cpu", threads=1, data_dir=None)
    point = {"learning_rate": 0.1, "dropout_rate": 0.1}
    assert dropout_cost.dropout_step_cost(TinyWorkload(), None, point, args) == 1.0  # type: ignore[arg-type]
