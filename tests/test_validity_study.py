"""The validity study (``python -m pytest_algoperf.validity``): Kendall's tau and the disagreeing pairs as
pure functions, and the command that scores the panel's sessions beside AlgoPerf's published scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from pytest_algoperf.registry import default_suite
from pytest_algoperf.results import RunResult
from pytest_algoperf.session import run_seed
from pytest_algoperf.validity import __main__ as validity_main
from pytest_algoperf.validity.__main__ import Session, _complete_runs, algoperf_board_workloads, main, parser
from pytest_algoperf.validity.agreement import disagreements, kendall_tau, workload_pairs
from pytest_algoperf.validity.panel import member
from pytest_algoperf.validity.resume import next_resume_folder, recorded_runs

ALGOPERF = {"soap": 0.7784, "schedule_free_adamw": 0.7077, "nadamw": 0.5707}


def test_tau_is_one_for_the_same_order_and_minus_one_for_the_reverse() -> None:
    assert kendall_tau({"a": 3, "b": 2, "c": 1}, {"a": 0.9, "b": 0.5, "c": 0.1}) == 1.0
    assert kendall_tau({"a": 1, "b": 2, "c": 3}, {"a": 0.9, "b": 0.5, "c": 0.1}) == -1.0


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ([1, 2, 3, 4, 5, 6], [1, 3, 2, 4, 6, 5]),
        ([0.5, 0.5, 0.2, 0.9, 0.0], [0.7, 0.6, 0.6, 0.3, 0.1]),  # ties on both sides: tau-b
        ([0.0, 0.0, 0.1], [0.1, 0.2, 0.3]),
    ],
)
def test_tau_is_kendalls_tau_b_as_scipy_computes_it(ours: list[float], theirs: list[float]) -> None:
    names = [f"s{i}" for i in range(len(ours))]
    expected = stats.kendalltau(ours, theirs).statistic
    assert kendall_tau(
        dict(zip(names, ours, strict=True)), dict(zip(names, theirs, strict=True))
    ) == pytest.approx(expected)


def test_tau_uses_only_names_on_both_boards_and_is_nan_without_a_pair() -> None:
    assert kendall_tau({"a": 1, "b": 2, "adamw": 9}, {"a": 0.1, "b": 0.2}) == 1.0
    assert math.isnan(kendall_tau({"a": 1}, {"a": 0.3}))


def test_a_disagreement_is_a_pair_algoperf_separates_by_more_than_the_gap_in_the_other_order() -> None:
    ours = {"soap": 0.6, "schedule_free_adamw": 0.85, "nadamw": 0.95}
    found = disagreements(ours, ALGOPERF, min_gap=0.1)
    assert [(d.better, d.worse) for d in found] == [("soap", "nadamw"), ("schedule_free_adamw", "nadamw")]
    assert found[0].theirs_gap == pytest.approx(0.2077) and found[0].ours == (0.6, 0.95)
    assert len(disagreements(ours, ALGOPERF, min_gap=0.0)) == 3
    assert disagreements({"soap": 0.5, "nadamw": 0.5}, ALGOPERF)[0].worse == "nadamw", "a tie disagrees"


def test_workload_pairs_are_those_algoperf_timed_both_finite_and_apart_that_the_suite_does_not_tie() -> None:
    inf = math.inf
    theirs = {
        "a": {"w1": 0.5, "w2": 0.3, "w3": inf, "w4": 0.4, "w5": 0.2},
        "b": {"w1": 0.9, "w2": 0.6, "w3": 0.5, "w4": 0.4, "w5": 0.3},
    }
    ours = {
        "a": {"w1": 10.0, "w2": 30.0, "w3": 5.0, "w4": 1.0, "w5": 7.0},
        "b": {"w1": 20.0, "w2": inf, "w3": 9.0, "w4": 2.0, "w5": 7.0},
    }
    pairs = workload_pairs(ours, theirs)
    # w3: AlgoPerf's a missed; w4: AlgoPerf's times tie; w5: the suite's tie. A miss here is the slowest time.
    assert [(p.workload, p.faster, p.in_order) for p in pairs] == [("w1", "a", True), ("w2", "a", True)]
    assert pairs[0].theirs == (0.5, 0.9) and pairs[0].their_ratio == pytest.approx(1.8)
    ours["a"]["w1"] = 25.0
    assert not workload_pairs(ours, theirs)[0].in_order
    assert workload_pairs(ours, {"a": theirs["a"]}) == [], "a member AlgoPerf did not time orders nothing"


def test_the_study_reads_each_workload_against_algoperfs_published_times(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # AlgoPerf v0.5 (issue 836): Cyclic LR 0.49 and NAdamW 0.86 of wmt's budget, 0.25 and 0.23 of fastmri's.
    _results(tmp_path / "pytorch" / "nadamw", "nadamw", {"wmt_mini": 30.0, "fastmri_mini": 20.0})
    _results(
        tmp_path / "pytorch" / "nadamw_cyclic", "nadamw_cyclic", {"wmt_mini": 40.0, "fastmri_mini": 21.0}
    )
    assert main(["--output", str(tmp_path), "--score-only", "--submissions", "nadamw_cyclic,nadamw"]) == 0
    printed = capsys.readouterr().out
    assert (
        "pairs whose AlgoPerf v0.5 times were both published: 1 of 2 in AlgoPerf's order, 0 of 1 where"
        in printed
    )
    assert (
        "wmt: nadamw_cyclic before nadamw on AlgoPerf (0.49 vs 0.86 of the budget); here 40.0 s vs 30.0 s"
        in printed
    )
    saved = json.loads((tmp_path / "validity.json").read_text())["frameworks"]["pytorch"]["workload_pairs"]
    assert (saved["in_order"], saved["pairs"], saved["clear_in_order"], saved["clear_pairs"]) == (1, 2, 0, 1)


def _results(
    folder: Path,
    submission: str,
    times: dict[str, float | None],
    trial: int = 0,
    seed: int = 0,
    study: int = 0,
    **fields: object,
) -> None:
    runs = [
        RunResult(
            test_id=f"{submission}-{workload}", submission=submission, framework="pytorch", workload=workload,
            seed=seed, study=study, trial=trial, reached=time is not None, time_to_target=time,
            budget_sec=100.0, **fields,  # type: ignore[arg-type]
        ).to_json()
        for workload, time in times.items()
    ]  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"runs": runs}))


def test_the_study_scores_the_panels_sessions_beside_algoperfs_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Ratios to the best: soap 1 and 1.5, schedule_free_adamw 1.2 and 2, nadamw 1.1 and 1; w3 none reached.
    _results(tmp_path / "pytorch" / "soap", "soap", {"w1": 10.0, "w2": 15.0, "w3": None})
    _results(
        tmp_path / "pytorch" / "schedule_free_adamw",
        "schedule_free_adamw",
        {"w1": 12.0, "w2": 20.0, "w3": None},
    )
    _results(tmp_path / "pytorch" / "nadamw", "nadamw", {"w1": 11.0, "w2": 10.0, "w3": None})
    argv = ["--output", str(tmp_path), "--framework", "pytorch", "--score-only"]
    assert main([*argv, "--submissions", "soap,schedule_free_adamw,nadamw"]) == 0
    printed = capsys.readouterr().out
    # Here nadamw > soap > schedule_free_adamw: one pair of three in AlgoPerf's order, tau = (1 - 2) / 3.
    assert "Kendall's tau over the 3 on both boards: -0.333 (by steps: " in printed
    assert "soap over nadamw: AlgoPerf +0.2077; here 0.611 vs 0.655" in printed
    assert "schedule_free_adamw over nadamw" in printed and "soap over schedule_free_adamw" not in printed
    saved = json.loads((tmp_path / "validity.json").read_text())["frameworks"]["pytorch"]
    assert [m["submission"] for m in saved["members"]] == ["nadamw", "soap", "schedule_free_adamw"]
    assert (saved["members"][0]["reached"], saved["members"][0]["workloads"]) == (2, 3)


def test_with_several_studies_each_is_also_scored_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Study 1 puts soap first, as AlgoPerf does; study 2 puts nadamw first. The board of both takes the median
    # over studies (AlgoPerf's rule), so each study alone shows how far one study's order moves.
    for name, first, second in (
        ("soap", 10.0, 14.0),
        ("schedule_free_adamw", 12.0, 13.0),
        ("nadamw", 14.0, 10.0),
    ):
        _results(tmp_path / "pytorch" / name, name, {"w1": first})
        _results(tmp_path / "pytorch" / name / "resume-1", name, {"w1": second}, study=1)
    argv = ["--output", str(tmp_path), "--framework", "pytorch", "--score-only"]
    assert main([*argv, "--submissions", "soap,schedule_free_adamw,nadamw"]) == 0
    printed = capsys.readouterr().out
    assert "study 1 alone: tau +1.000; soap 1.000, schedule_free_adamw" in printed
    assert "study 2 alone: tau -1.000; nadamw 1.000, schedule_free_adamw" in printed
    saved = json.loads((tmp_path / "validity.json").read_text())["frameworks"]["pytorch"]
    assert [s["study"] for s in saved["per_study"]] == [1, 2]
    # Both studies: soap and nadamw 12 (the mean of two), schedule_free_adamw 12.5.
    assert saved["members"][-1]["submission"] == "schedule_free_adamw"


def test_a_pair_lost_where_algoperfs_published_runs_were_cut_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # lawa_queue beats nadamw here; AlgoPerf puts nadamw 0.20 above it, on lawa_queue runs that stopped early.
    _results(tmp_path / "pytorch" / "nadamw", "nadamw", {"w1": 12.0})
    _results(tmp_path / "pytorch" / "lawa_queue", "lawa_queue", {"w1": 11.0})
    assert main(["--output", str(tmp_path), "--framework", "pytorch", "--score-only"]) == 0
    printed = capsys.readouterr().out
    assert "nadamw over lawa_queue: AlgoPerf +0.2008" in printed
    assert (
        "AlgoPerf's published lawa_queue runs stopped short of the budget on criteo1tb, imagenet_resnet"
        in printed
    )
    saved = json.loads((tmp_path / "validity.json").read_text())["frameworks"]["pytorch"]
    assert saved["disagreements"][0]["algoperf_runs_cut"] == {
        "lawa_queue": list(member("lawa_queue").algoperf_runs_cut)
    }


def test_score_only_with_workloads_scores_only_those(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # soap is faster on w1, nadamw on w2: each workload alone orders the two its own way.
    _results(tmp_path / "pytorch" / "soap", "soap", {"w1": 10.0, "w2": 30.0})
    _results(tmp_path / "pytorch" / "nadamw", "nadamw", {"w1": 20.0, "w2": 15.0})
    argv = ["--output", str(tmp_path), "--score-only", "--submissions", "soap,nadamw"]
    assert main([*argv, "--workloads", "w2"]) == 0
    saved = json.loads((tmp_path / "validity.json").read_text())["frameworks"]["pytorch"]
    assert saved["workloads"] == ["w2"] and saved["members"][0]["submission"] == "nadamw"
    assert main([*argv, "--workloads", "w1"]) == 0
    assert "every pair AlgoPerf separates by more than 0.05 is in its order" in capsys.readouterr().out


def test_runs_recorded_without_a_step_cap_can_be_scored_as_if_capped_at_step_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # soap met its target first, but at step 120 of a step_hint of 100: AlgoPerf's scoring runs, which stop
    # at step_hint (--max_global_steps), would have ended it short of the target.
    hint = {"calibration": {"step_hint": 100}}
    _results(tmp_path / "pytorch" / "soap", "soap", {"w1": 10.0}, steps_to_target=120, **hint)
    _results(tmp_path / "pytorch" / "nadamw", "nadamw", {"w1": 12.0}, steps_to_target=90, **hint)
    argv = ["--output", str(tmp_path), "--score-only", "--submissions", "soap,nadamw"]
    assert main(argv) == 0
    assert "every pair AlgoPerf separates by more than 0.05 is in its order" in capsys.readouterr().out
    assert main([*argv, "--cap-recorded-runs"]) == 0
    printed = capsys.readouterr().out
    assert "soap over nadamw: AlgoPerf +0.2077; here 0.000 vs 1.000" in printed
    assert "targets met only after it, now missed: soap 1, nadamw 0" in printed
    saved = json.loads((tmp_path / "validity.json").read_text())["frameworks"]["pytorch"]
    assert saved["met_after_step_hint"] == {"soap": 1, "nadamw": 0}


def test_a_single_study_is_not_scored_again_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _results(tmp_path / "pytorch" / "soap", "soap", {"w1": 10.0})
    _results(tmp_path / "pytorch" / "nadamw", "nadamw", {"w1": 11.0})
    assert main(["--output", str(tmp_path), "--framework", "pytorch", "--score-only"]) == 0
    assert "alone" not in capsys.readouterr().out
    assert "per_study" not in json.loads((tmp_path / "validity.json").read_text())["frameworks"]["pytorch"]


def test_the_study_names_members_that_have_not_run_and_rejects_unknown_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _results(tmp_path / "pytorch" / "soap", "soap", {"w1": 10.0})
    _results(tmp_path / "pytorch" / "nadamw", "nadamw", {"w1": 11.0})
    argv = ["--output", str(tmp_path), "--framework", "pytorch", "--score-only"]
    assert main([*argv, "--submissions", "soap,nadamw,lawa_ema"]) == 0
    assert "not run yet: lawa_ema" in capsys.readouterr().out
    assert main([*argv, "--submissions", "mine"]) == 2
    assert "'mine' is not in the validity panel" in capsys.readouterr().err


def test_the_study_runs_the_workloads_on_algoperfs_board_by_default() -> None:
    """mnist is in the base suite, but AlgoPerf scores no mnist: a time there must not move a score."""
    board = algoperf_board_workloads()
    assert "mnist" not in board and "mnist" in default_suite()
    assert board == [name for name in default_suite() if name != "mnist"] and len(board) == 8


def test_noise_places_each_target_against_the_median_seed_of_its_calibration() -> None:
    from pytest_algoperf.validity.noise import noise_rows

    rows = noise_rows(["mnist"])
    assert {row["framework"] for row in rows} == {"pytorch", "jax"}
    for row in rows:
        assert row["one_example"] == pytest.approx(1 / 300) and row["seeds"] == 5
        assert row["target_in_std"] < 0, "mnist's target was set at the worst seed: below the median"


def test_noise_names_an_unknown_workload_and_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_algoperf.validity import noise

    with pytest.raises(SystemExit):
        noise.main(["--help"])
    assert "[workloads ...]" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        noise.main(["nope"])
    assert "unknown workload nope; built-in ones: cifar, criteo1tb_mini" in capsys.readouterr().err


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_the_gradient_only_submission_computes_gradients_and_changes_no_parameter(framework: str) -> None:
    from pytest_algoperf.loop import Trainer
    from pytest_algoperf.selfcheck.setup import make_bench
    from pytest_algoperf.validity.update_share import GRADIENT_ONLY

    bench = make_bench("mnist", framework, GRADIENT_ONLY)
    trainer = Trainer.start(bench.workload, bench.submission, bench.adapter, bench.settings)
    before = [np.asarray(p.detach() if hasattr(p, "detach") else p).copy() for p in _leaves(trainer.params)]
    for _ in range(3):
        trainer.step()
    after = [np.asarray(p.detach() if hasattr(p, "detach") else p) for p in _leaves(trainer.params)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    if framework == "pytorch":
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.params.parameters())


def _leaves(params: object) -> list:
    if hasattr(params, "parameters"):
        return list(params.parameters())
    import jax

    return jax.tree.leaves(params)


def test_the_study_runs_each_member_in_its_own_session_keeps_finished_ones_and_resumes_run_by_run(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # an --output relative to here, as a user types it: sessions run elsewhere
    monkeypatch.setattr(validity_main, "PROGRESS_EVERY_SEC", 0.0)  # a line a second, not every 10 min
    argv = [
        "--output",
        "study",
        "--framework",
        "pytorch",
        "--submissions",
        "schedule_free_adamw,nadamw",
    ]
    argv += [
        "--workloads",
        "mnist",
        "--trials",
        "1",
        "--studies",
        "1",
        "--parallel",
        "2",
        "--pytest-args",
        "-p no:hypothesispytest",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        "[2/2]" in printed and "done: nadamw (pytorch)" in printed and "Kendall's tau over the 2" in printed
    )
    progress = [line for line in printed.splitlines() if line.startswith("progress ")]
    assert progress and "nadamw (pytorch) 0/1 runs in 0 min" in progress[0]
    runs = json.loads((tmp_path / "study" / "pytorch" / "nadamw" / "results.json").read_text())["runs"]
    assert [(r["workload"], r["hyperparameters"]["learning_rate"]) for r in runs] == [
        ("mnist", pytest.approx(0.001308209823469072))  # the first of AlgoPerf's baseline points, not ours
    ]
    member = tmp_path / "study" / "pytorch" / "nadamw"
    assert "--algoperf-tuning-search-space=" in (member / "session.log").read_text()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("kept: ") == 2

    # Asked for a second trial, each member trains only that one, beside the first, which stays as it was.
    first = (tmp_path / "study" / "pytorch" / "nadamw" / "results.json").read_text()
    two_trials = list(argv)
    two_trials[two_trials.index("--trials") + 1] = "2"
    assert main(two_trials) == 0
    member = tmp_path / "study" / "pytorch" / "nadamw"
    assert (member / "results.json").read_text() == first
    resumed = json.loads((member / "resume-1" / "results.json").read_text())["runs"]
    assert [(r["trial"], r["hyperparameters"]["learning_rate"]) for r in resumed] == [
        (1, pytest.approx(0.0008445074561975979))  # the second of AlgoPerf's baseline points
    ]
    assert "1 deselected" in (member / "resume-1" / "session.log").read_text()
    printed = capsys.readouterr().out
    assert "done: nadamw (pytorch)" in printed and "warning" not in printed


def test_a_member_is_its_first_session_and_its_resumed_ones_each_run_counted_once(tmp_path: Path) -> None:
    member = tmp_path / "nadamw"
    _results(member, "nadamw", {"w1": 10.0, "w2": None})
    assert next_resume_folder(member).name == "resume-1"
    for k, trial in ((2, 1), (10, 2)):
        _results(member / f"resume-{k}", "nadamw", {"w1": 9.0 + trial}, trial=trial)
    _results(member / "resume-3", "nadamw", {"w1": 50.0})  # trial 0 again: the first record stands
    _results(member / "resume-old", "nadamw", {"w3": 1.0})  # not numbered: not the study's
    runs = recorded_runs(member)
    assert [(r.workload, r.trial, r.time_to_target) for r in runs] == [
        ("w1", 0, 10.0), ("w2", 0, None), ("w1", 1, 10.0), ("w1", 2, 11.0)
    ]  # fmt: skip
    assert next_resume_folder(member).name == "resume-1"


def test_a_run_that_was_interrupted_is_not_recorded_and_trains_again(tmp_path: Path) -> None:
    """Stopping a study (Ctrl-C) keeps the run that was training as ``interrupted``: not a result of its
    algorithm, so the resumed session trains it again and only that one is scored."""
    member = tmp_path / "nadamw"
    _results(member, "nadamw", {"w1": None}, stop_reason="interrupted")
    assert recorded_runs(member) == []
    _results(member / "resume-1", "nadamw", {"w1": 12.0}, stop_reason="targets reached")
    assert [(r.workload, r.time_to_target) for r in recorded_runs(member)] == [("w1", 12.0)]


def test_a_resumed_study_keeps_only_the_runs_its_seed_plans(tmp_path: Path) -> None:
    """A run trained under another ``--seed`` belongs to another study: it is not kept as this one's."""
    member = tmp_path / "nadamw"
    planned = run_seed(0, "w1", 0, 0)
    _results(member, "nadamw", {"w1": 10.0}, seed=planned)
    _results(member / "resume-1", "nadamw", {"w2": 12.0}, seed=planned + 1)
    assert [r.workload for r in recorded_runs(member, session_seed=0)] == ["w1"]
    assert [r.workload for r in recorded_runs(member)] == ["w1", "w2"]


def test_by_default_a_study_is_algoperfs_five_trials_in_three_studies() -> None:
    """One study ordered the panel by chance (tau +0.733, +0.333 and +0.067 in three, VALIDITY.md), so the
    one command runs AlgoPerf v0.6's three."""
    args = parser().parse_args([])
    assert (args.trials, args.studies) == (5, 3)


def test_a_member_counts_as_complete_only_with_the_runs_this_study_plans(tmp_path: Path) -> None:
    """Two runs of other workloads do not stand in for the one this study asks for."""
    folder = tmp_path / "pytorch" / "nadamw"
    _results(folder, "nadamw", {"w_other": 10.0}, seed=run_seed(0, "w_other", 0, 0))
    _results(folder / "resume-1", "nadamw", {"w_else": 10.0}, seed=run_seed(0, "w_else", 0, 0))
    session = Session(member("nadamw"), "pytorch", folder)
    args = parser().parse_args(["--trials", "1"])
    assert _complete_runs(session, args, ["w1"]) == 0
    assert _complete_runs(session, args, ["w_other", "w1"]) == 1
    assert _complete_runs(session, args, ["w_other", "w_else"]) == 2
