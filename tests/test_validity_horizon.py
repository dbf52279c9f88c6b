"""The schedule-length comparison (``python -m pytest_algoperf.validity.horizon``): each point trains by steps
over schedules of each length, the runs are kept as JSON lines and resumed, and the table ranks the points
per length."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_algoperf.validity import horizon


def test_each_point_trains_each_schedule_length_and_a_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "horizon.jsonl"
    argv = ["--workload", "mnist", "--points", "adamw:0,1", "--steps", "10,20", "--output", str(output)]
    assert horizon.main(argv) == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["label"], r["steps"]) for r in records] == [
        ("adamw[0]", 10), ("adamw[1]", 10), ("adamw[0]", 20), ("adamw[1]", 20),
    ]  # fmt: skip
    assert all(r["curve"][-1][0] == r["steps"] for r in records)  # each run ends with its schedule
    assert {r["parameter_scale"] for r in records} == {1.0}  # mnist's own scale, recorded with each run
    table = capsys.readouterr().out.splitlines()[-4:]
    assert table[0] == "| point | 10 steps | 20 steps |"

    def must_not_train(*args: object) -> list:
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(horizon, "train_by_steps", must_not_train)
    assert horizon.main(argv) == 0


def test_a_run_counts_as_done_only_at_the_parameter_scale_it_trained_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A label names a scale only where it is not the workload's own, and a recalibration can change a
    workload's own scale: a record of another scale, or of none (files written before runs recorded it), is
    not the run asked for, so it trains again and stays out of the table."""
    output = tmp_path / "horizon.jsonl"
    stale = {"label": "adamw[0]", "steps": 10, "seed": 0, "curve": [[10, 0.01]]}
    other_scale = {**stale, "parameter_scale": 4.0}
    output.write_text(json.dumps(stale) + "\n" + json.dumps(other_scale) + "\n")
    argv = ["--workload", "mnist", "--points", "adamw:0", "--steps", "10", "--output", str(output)]
    assert horizon.main(argv) == 0
    out = capsys.readouterr().out
    assert "runs recorded without a parameter scale (written before runs recorded it): 1;" in out
    assert "adamw[0] 10 steps seed 0: best" in out  # trained again
    assert "0.0100" not in out  # neither stale value reaches the table
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r.get("parameter_scale") for r in records] == [None, 4.0, 1.0]


def test_the_table_ranks_points_per_schedule_length_by_the_metrics_direction() -> None:
    records = [
        {"label": "short_winner", "steps": 100, "curve": [[100, 0.40]]},
        {"label": "long_winner", "steps": 100, "curve": [[100, 0.45]]},
        {"label": "short_winner", "steps": 800, "curve": [[800, 0.38]]},
        {"label": "long_winner", "steps": 800, "curve": [[800, 0.35]]},
    ]
    lines = horizon.table(records, higher_is_better=False)  # a loss: lower ranks first
    assert lines[2:] == [
        "| short_winner | 0.4000 (1) | 0.3800 (2) |",
        "| long_winner | 0.4500 (2) | 0.3500 (1) |",
    ]


def test_over_several_seeds_the_table_ranks_the_mean_and_shows_the_seeds_range() -> None:
    records = [
        {"label": "steady", "steps": 100, "curve": [[100, 0.50]]},
        {"label": "steady", "steps": 100, "curve": [[100, 0.52]]},
        {"label": "lucky_once", "steps": 100, "curve": [[100, 0.40]]},
        {"label": "lucky_once", "steps": 100, "curve": [[100, 0.70]]},
    ]
    assert horizon.table(records, higher_is_better=True)[2:] == [
        "| steady | 0.5100 (2) [0.5000-0.5200] |",
        "| lucky_once | 0.5500 (1) [0.4000-0.7000] |",
    ]


def test_a_panel_member_brings_the_search_space_the_study_gives_it() -> None:
    # nadamw's panel points are AlgoPerf v0.5's five, not the built-in nadamw's own list.
    points = horizon.member_points("nadamw:3", "pytorch")
    assert points[0][1] == "nadamw[3]" and points[0][2]["beta2"] == pytest.approx(0.6291854735396584)


def test_learning_rate_factors_and_overrides_vary_each_point_under_its_own_label() -> None:
    configs = [("nadamw", "nadamw[3]", {"learning_rate": 0.005, "beta2": 0.63})]
    varied = horizon.with_variations(configs, [1, 4], {"beta2": 0.998})
    assert [(label, point) for _, label, point in varied] == [
        ("nadamw[3] beta2=0.998", {"learning_rate": 0.005, "beta2": 0.998}),
        ("nadamw[3] beta2=0.998 lr x4", {"learning_rate": 0.02, "beta2": 0.998}),
    ]
    assert configs[0][2]["beta2"] == 0.63  # the search space's point is left as it was


def test_a_malformed_override_or_factor_is_refused_with_the_expected_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--workload", "mnist", "--points", "adamw:0", "--steps", "10", "--output", "x.jsonl"]
    with pytest.raises(SystemExit):
        horizon.main([*argv, "--override", "beta2"])
    assert "--override takes key=value, got 'beta2'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        horizon.main([*argv, "--override", "beta2=high"])
    assert "the value is not JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        horizon.main([*argv, "--lr-factors", "2,x"])
    assert "--lr-factors takes positive numbers like 2,4,8, got '2,x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        horizon.main([*argv, "--lr-factors", "2,inf"])
    assert "--lr-factors takes positive numbers like 2,4,8, got '2,inf'" in capsys.readouterr().err


def test_scaling_a_point_without_a_learning_rate_names_the_point() -> None:
    with pytest.raises(SystemExit, match=r"sgd\[0\] has no learning_rate to scale"):
        horizon.with_variations([("sgd", "sgd[0]", {"lr": 0.1})], [1.0, 2.0], {})
