"""From runs to workload times and scores, and the ``python -m pytest_algoperf.score`` command."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from pytest_algoperf.reporting.files import write_results
from pytest_algoperf.results import RunResult
from pytest_algoperf.score import command as score
from pytest_algoperf.score.boards import scoreboards, workload_times
from pytest_algoperf.score.logs import ResultsFileError, load_experiment_folder
from pytest_algoperf.score.search_space import parse_search_space
from pytest_algoperf.score.tuning import as_hyperparameters, budget_factor, study_points
from pytest_algoperf.score.versions import V06


def run(submission: str, workload: str, time: float | None, study: int = 0, trial: int = 0) -> RunResult:
    return RunResult(
        test_id=f"{submission}-{workload}-{study}-{trial}",
        submission=submission,
        framework="pytorch",
        workload=workload,
        seed=0,
        study=study,
        trial=trial,
        reached=time is not None,
        time_to_target=time,
        budget_sec=100.0,
    )


def test_a_workload_time_is_the_median_over_studies_of_each_studys_fastest_trial() -> None:
    runs = [
        run("a", "w", 5.0, study=0, trial=0),
        run("a", "w", 3.0, study=0, trial=1),  # study 0: 3
        run("a", "w", None, study=1, trial=0),
        run("a", "w", 9.0, study=1, trial=1),  # study 1: 9
        run("a", "w", None, study=2, trial=0),
        run("a", "w", None, study=2, trial=1),  # study 2: inf
    ]
    assert workload_times(runs) == {"pytorch": {"a": {"w": 9.0}}}


def test_a_workload_no_study_reached_has_an_infinite_time() -> None:
    assert (
        workload_times([run("a", "w", None), run("a", "w", None, study=1)])["pytorch"]["a"]["w"] == math.inf
    )


def test_scoreboards_compare_submissions_on_their_common_workloads() -> None:
    runs = [run("a", "w1", 10.0), run("a", "w2", 10.0), run("b", "w1", 20.0), run("b", "w2", 50.0)]
    (board,) = scoreboards(runs)
    assert board.scores["a"] == pytest.approx(1.0)
    # b: ratio 2 on w1 (counted for tau >= 2), 5 on w2 (beyond the 4x cut-off): rho = 0.5 on [2, 4].
    assert 0.3 < board.scores["b"] < 0.34
    assert board.ratios["b"] == {"w1": 2.0, "w2": math.inf}
    assert board.speedups["b"] == pytest.approx(math.sqrt(0.5 * 0.2))  # geometric mean of 10/20 and 10/50
    assert board.reference == "a"


def variant_runs() -> list[RunResult]:
    """b is fastest on the base workload w but misses its variant w_v; a meets both."""
    runs = [run("a", "w", 10.0), run("a", "w_v", 10.0), run("b", "w", 5.0), run("b", "w_v", None)]
    for result in runs:
        result.base_workload = "w" if result.workload == "w_v" else ""
    return runs


def test_variants_are_reported_but_not_scored_by_default_as_in_algoperf_v06() -> None:
    (board,) = scoreboards(variant_runs())
    assert board.times["b"]["w_v"] == math.inf
    assert set(board.ratios["a"]) == {"w"}
    assert board.scores["b"] == pytest.approx(1.0)  # best on the only scored workload


def test_v05_variant_coupling_makes_a_missed_variant_cost_its_base_workload() -> None:
    (board,) = scoreboards(variant_runs(), couple_variants=True)
    assert board.scores["b"] == 0.0  # its base time became inf
    assert board.scores["a"] == pytest.approx(1.0)


def test_a_single_submission_gets_no_scoreboard() -> None:
    assert scoreboards([run("a", "w", 1.0)]) == []


def test_an_unknown_reference_submission_is_an_error_that_names_it() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        scoreboards([run("a", "w", 1.0), run("b", "w", 2.0)], reference="nope")


def test_every_study_runs_a_fixed_list_from_its_first_point_as_algoperf_does() -> None:
    space = parse_search_space([{"learning_rate": lr} for lr in (1, 2, 3, 4, 5)])
    points = study_points(space, studies=3, trials=5, session_seed=0)
    assert [[p["learning_rate"] for p in study] for study in points] == [[1, 2, 3, 4, 5]] * 3


def test_more_trials_than_fixed_points_is_an_error_naming_the_counts() -> None:
    space = parse_search_space([{"learning_rate": 1.0}, {"learning_rate": 2.0}])
    with pytest.raises(ValueError, match="only 2 fixed points but 3 trials were requested"):
        study_points(space, studies=1, trials=3, session_seed=0)


def test_ranges_are_sampled_independently_per_study_and_reproducibly_from_the_session_seed() -> None:
    space = parse_search_space({"learning_rate": {"min": 1e-4, "max": 1e-1, "scaling": "log"}})
    first = study_points(space, studies=2, trials=3, session_seed=7)
    assert first == study_points(space, studies=2, trials=3, session_seed=7)
    assert first[0] != first[1]
    assert first != study_points(space, studies=2, trials=3, session_seed=8)


def test_self_tuning_passes_no_hyperparameters_and_has_one_and_a_half_times_the_budget() -> None:
    assert as_hyperparameters(None) is None
    assert budget_factor("self") == 1.5 and budget_factor("external") == 1.0
    assert as_hyperparameters({"learning_rate": 0.1}).learning_rate == 0.1


def write_algoperf_trial(folder: Path, metric: str, rows: list[tuple[int, float, float]]) -> None:
    """An ``eval_measurements.csv`` with the reference harness's columns: (global_step, score, metric)."""
    folder.mkdir(parents=True)
    columns = [
        "accumulated_eval_time",
        "accumulated_logging_time",
        "accumulated_submission_time",
        "global_step",
        "preemption_count",
        "score",
        "total_duration",
        f"train/{metric}",
        f"validation/{metric}",
    ]
    with (folder / "eval_measurements.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for step, time, value in rows:
            writer.writerow([1.0, 0.0, time, step, 0, time, time + 1, value, value])


def test_the_score_command_scores_algoperf_experiment_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Two submissions in AlgoPerf's layout on real workload names, timed against their real targets."""
    ogbg, wmt = V06.targets["ogbg"].validation, V06.targets["wmt"].validation
    for name, ogbg_time, wmt_time in (("fast", 100.0, 1000.0), ("slow", 200.0, 5000.0)):
        write_algoperf_trial(
            tmp_path / name / "study_0" / "ogbg_jax" / "trial_1",
            "mean_average_precision",
            [(10, ogbg_time / 2, ogbg - 0.05), (20, ogbg_time, ogbg + 0.01)],
        )
        write_algoperf_trial(
            tmp_path / name / "study_0" / "wmt_jax" / "trial_1", "bleu", [(10, wmt_time, wmt + 1.0)]
        )
    assert score.main([str(tmp_path), "--report", str(tmp_path / "report")]) == 0
    output = capsys.readouterr().out
    assert "fast" in output and "slow" in output
    # AlgoPerf's rule: the 6 base workloads without logs count as not reached, so being best on the other
    # two scores 2/8.
    fast_line = next(line for line in output.splitlines() if line.startswith("1 ") and "fast" in line)
    assert fast_line.split()[2] == "0.2500"
    slow = load_experiment_folder(tmp_path / "slow")
    assert sorted((r.workload, r.time_to_target, r.steps_to_target) for r in slow) == [
        ("ogbg", 200.0, 20),
        ("wmt", 5000.0, 10),
    ]
    assert (tmp_path / "report" / "report.md").read_text().count("| slow |") >= 1
    assert (tmp_path / "report" / "performance_profile_jax.png").stat().st_size > 0


def test_the_score_command_reads_our_results_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "results.json"
    write_results(path, {"session": {}}, [run("a", "w", 2.0), run("b", "w", 4.0)])
    assert score.main([str(path)]) == 0
    assert "scores (pytorch)" in capsys.readouterr().out


def test_the_score_command_explains_unreadable_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "results.json"
    broken.write_text("{not json")
    assert score.main([str(broken)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {broken}: not a pytest-algoperf results file")
    assert score.main([str(tmp_path / "missing")]) == 2
    assert "neither a results.json nor a folder" in capsys.readouterr().err


def test_an_unknown_workload_in_an_experiment_folder_asks_for_a_targets_file(tmp_path: Path) -> None:
    write_algoperf_trial(
        tmp_path / "sub" / "study_0" / "mystery_pytorch" / "trial_1", "accuracy", [(1, 1.0, 0.5)]
    )
    with pytest.raises(ResultsFileError, match="no target known for workload 'mystery'; pass --targets FILE"):
        load_experiment_folder(tmp_path / "sub")
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps({"mystery": {"metric": "accuracy", "validation": 0.4, "budget_sec": 10}}))
    assert score.main([str(tmp_path / "sub"), "--targets", str(targets)]) == 0
