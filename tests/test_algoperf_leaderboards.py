"""Scoring AlgoPerf's own logs as AlgoPerf does (``python -m pytest_algoperf.score --rules v0.5|v0.6``).

The fixtures are folders in AlgoPerf's layout (``{external,self}_tuning/[<team>/]<submission>/study_<s>/
<workload>_<framework>/trial_<t>/`` with ``eval_measurements.csv``, ``meta_data_0.json``, ``flags_0.json``)
whose expected scores are worked out by hand below, and random layouts scored both by our scorer and by a
plain re-implementation of AlgoPerf's rules in this file. ``tests/data/algoperf_v05`` holds one real study of
AlgoPerf's v0.5 logs (numbers copied from mlcommons/algorithms_results_v0.5, unused columns left out).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_algoperf.score import command
from pytest_algoperf.score.boards import AlgoPerfRules, leaderboards
from pytest_algoperf.score.logs import ResultsFileError, load
from pytest_algoperf.score.versions import V05, V06

INF = math.inf
REAL_V05 = Path(__file__).parent / "data" / "algoperf_v05"


def write_trial(
    folder: Path, workload: str, eval_times: list[float], reached_at: int | None, meta: bool = True
) -> None:
    """One trial: evals at ``eval_times``; the validation metric meets the workload's target from eval
    index ``reached_at`` on (never when None)."""
    target = V05.targets[workload]
    step = 0.01 * abs(target.validation) + 0.01
    good = target.validation + (step if target.higher_is_better else -step)
    bad = target.validation - (step if target.higher_is_better else -step)
    folder.mkdir(parents=True)
    column = f"validation/{target.metric}"
    with (folder / "eval_measurements.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["accumulated_eval_time", "accumulated_submission_time", "global_step", "score", column]
        )
        for i, time in enumerate(eval_times):
            value = good if reached_at is not None and i >= reached_at else bad
            writer.writerow([10.0 * (i + 1), time, 100 * (i + 1), time, value])
    if meta:
        (folder / "meta_data_0.json").write_text(
            json.dumps(
                {
                    "workload.target_metric_name": target.metric,
                    "workload.validation_target_value": target.validation,
                    "workload.max_allowed_runtime_sec": target.budget_sec,
                }
            )
        )
    (folder / "flags_0.json").write_text(json.dumps({"workload": workload, "tuning_ruleset": "external"}))


def reach(time: float, evals: int = 2) -> tuple[list[float], int]:
    """A trial that meets the target at eval ``evals`` (0-based), at ``time`` seconds."""
    return [time * (i + 1) / (evals + 1) for i in range(evals + 1)], evals


MISS = ([50.0, 100.0, 150.0], None)


def write_submission(root: Path, name: str, framework: str, studies: dict[str, list[list[tuple]]]) -> None:
    """``studies[workload][s]`` is study s's list of trials, each ``(eval_times, reached_at)``."""
    for workload, per_study in studies.items():
        for s, trials in enumerate(per_study):
            for t, (times, reached_at) in enumerate(trials, start=1):
                folder = root / name / f"study_{s}" / f"{workload}_{framework}" / f"trial_{t}"
                write_trial(folder, workload, times, reached_at, meta=workload != "wmt")


def hand_worked_logs(root: Path) -> Path:
    """Three submissions, both frameworks, teams and no team, 1-3 trials per study, 3 studies.

    Workload times (median over studies of each study's best trial; fewest evals, then first trial):

                   ogbg        ogbg_model_size  wmt             wmt_glu_tanh  criteo1tb  criteo1tb_embed_init
        alpha jax  120         150              1000 (950 *)    1200          675        700
        beta  pt   90          missed           2500            1300          400        no logs
        gamma jax  400         600              no logs         no logs       450        800

    (*) alpha's wmt study 0 has a trial that met the target at its 3rd eval at 1000 s and one at its 4th
    eval at 900 s: AlgoPerf's code takes the first (1000 s), the fastest-time rule the second (study times
    900, 950, 1100: median 950). alpha's ogbg_gelu (not held out in v0.5) is missed and must not matter.
    """
    ext = root / "external_tuning"
    write_submission(
        ext / "team_a",
        "alpha",
        "jax",
        {
            "ogbg": [[reach(150, 3), reach(100)], [reach(120)], [MISS, MISS, MISS]],
            "ogbg_model_size": [[reach(150)], [reach(140)], [reach(160)]],
            "ogbg_gelu": [[MISS], [MISS], [MISS]],
            "wmt": [
                [([0.0, 500.0, 1000.0], 2), ([0.0, 300.0, 600.0, 900.0], 3)],
                [reach(950)],
                [reach(1100), MISS],
            ],
            "wmt_glu_tanh": [[reach(1200)], [reach(1200)], [reach(1200)]],
            "criteo1tb": [[reach(675)], [reach(675)], [reach(700)]],
            "criteo1tb_embed_init": [[reach(700)], [reach(700)], [reach(700)]],
        },
    )
    write_submission(
        ext / "team_b",
        "beta",
        "pytorch",
        {
            "ogbg": [[reach(80)], [reach(90)], [reach(200)]],
            "ogbg_model_size": [[MISS], [reach(100)], [MISS, MISS]],
            "wmt": [[reach(2500)], [reach(2500)], [reach(2500)]],
            "wmt_glu_tanh": [[reach(1300)], [reach(1300)], [reach(1300)]],
            "criteo1tb": [[reach(400)], [reach(400)], [reach(400)]],
        },
    )
    write_submission(
        ext,
        "gamma",
        "jax",
        {
            "ogbg": [[reach(300)], [reach(400)], [reach(500)]],
            "ogbg_model_size": [[reach(600)], [reach(600)], [reach(600)]],
            "criteo1tb": [[reach(450)], [reach(450)], [reach(450)]],
            "criteo1tb_embed_init": [[reach(800)], [reach(800)], [reach(800)]],
        },
    )
    return root


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return hand_worked_logs(tmp_path / "logs")


def only_board(root: Path, rules: AlgoPerfRules):
    (board,) = leaderboards(load([root], rules.version).runs, rules)
    return board


def test_v05_scores_worked_by_hand(logs: Path) -> None:
    """AlgoPerf v0.5's order: held-out variants of missed bases become inf; the 4x cut-off on every column;
    bases whose held-out variant is inf (missed or no logs) become inf; ratios to the best; rho over the
    8 base workloads.

    ogbg: the cut-off uses beta's 90 s (4x = 360): gamma's 400 s is cut. Then beta's ogbg becomes inf (its
    ogbg_model_size missed), so alpha's 120 s is the best: alpha 1, beta missed, gamma cut.
    ogbg_model_size: best 150, gamma's 600 is exactly 4x and kept (so gamma is not punished twice).
    wmt: alpha 1000 (fewest evals), beta 2500: ratios 1 and 2.5; gamma has no logs.
    criteo1tb: beta's criteo1tb_embed_init has no logs, so beta's 400 s becomes inf after the cut-off;
    alpha 675 / gamma 450 = 1.5, gamma 1.
    The other five base workloads have no logs: not reached by anyone.

    Every ratio is 1, 1.5 or 2.5; a step at tau = 1 + (k + 1/2) / 33 is integrated exactly by the
    trapezoid rule on 100 points in [1, 4], so:
        alpha: 2/8 on [1, 1.5), 3/8 on [1.5, 4]: (0.25 * 0.5 + 0.375 * 2.5) / 3 = 0.3541666...
        beta:  1/8 on [2.5, 4]:                 (0.125 * 1.5) / 3           = 0.0625
        gamma: 1/8 on [1, 4]:                   (0.125 * 3) / 3             = 0.125
    """
    board = only_board(logs, AlgoPerfRules(version=V05))
    assert board.framework == "jax+pytorch"  # one board across frameworks
    assert board.scores == {
        "alpha": pytest.approx(0.25 * 0.5 / 3 + 0.375 * 2.5 / 3, abs=1e-12),
        "beta": pytest.approx(0.0625, abs=1e-12),
        "gamma": pytest.approx(0.125, abs=1e-12),
    }
    assert board.ratios["alpha"]["wmt"] == 1.0 and board.ratios["beta"]["wmt"] == 2.5
    assert board.ratios["alpha"]["criteo1tb"] == 1.5
    assert math.isinf(board.ratios["beta"]["ogbg"]) and math.isinf(board.ratios["gamma"]["ogbg"])
    assert board.times["alpha"]["wmt"] == 1000.0
    assert board.absent == {
        "alpha": ("fastmri", "imagenet_resnet", "imagenet_vit", "librispeech_conformer",
                  "librispeech_deepspeech", "fastmri_tanh", "imagenet_resnet_large_bn_init",
                  "librispeech_conformer_layernorm"),
        "beta": ("fastmri", "imagenet_resnet", "imagenet_vit", "librispeech_conformer",
                 "librispeech_deepspeech", "criteo1tb_embed_init", "fastmri_tanh",
                 "imagenet_resnet_large_bn_init", "librispeech_conformer_layernorm"),
        "gamma": ("fastmri", "imagenet_resnet", "imagenet_vit", "librispeech_conformer",
                  "librispeech_deepspeech", "wmt", "fastmri_tanh", "imagenet_resnet_large_bn_init",
                  "librispeech_conformer_layernorm", "wmt_glu_tanh"),
    }  # fmt: skip


def test_the_fastest_trial_rule_picks_another_trial_and_changes_the_workload_time(logs: Path) -> None:
    board = only_board(logs, AlgoPerfRules(version=V05, best_trial="fastest"))
    assert board.times["alpha"]["wmt"] == 950.0
    assert board.ratios["beta"]["wmt"] == pytest.approx(2500 / 950)
    (study_0,) = [c for c in board.choices if (c.submission, c.workload, c.study) == ("alpha", "wmt", 0)]
    assert study_0.chosen is not None and study_0.chosen.trial == 1  # trial_2, at 900 s


def test_v06_ignores_variants(logs: Path) -> None:
    """Without variants: ogbg alpha 120 / beta 90 (gamma 400 > 4 x 90 is cut), wmt 1 and 2.5, criteo1tb
    alpha 675, beta 400, gamma 450; still over 8 base workloads."""
    board = only_board(logs, AlgoPerfRules(version=V06))
    assert board.ratios["alpha"]["ogbg"] == pytest.approx(120 / 90)
    assert board.ratios["beta"]["criteo1tb"] == 1.0
    assert board.ratios["gamma"]["criteo1tb"] == pytest.approx(450 / 400)
    assert set(board.ratios["alpha"]) == set(V06.base_workloads)
    assert board.scores["gamma"] == pytest.approx(simple_score([450 / 400], 8))


def test_per_framework_boards_on_request(logs: Path) -> None:
    rules = AlgoPerfRules(version=V05, one_board=False)
    boards = leaderboards(load([logs], V05).runs, rules)
    assert [(b.framework, sorted(b.scores)) for b in boards] == [
        ("jax", ["alpha", "gamma"]),
        ("pytorch", ["beta"]),
    ]


def test_rulesets_are_kept_apart_and_self_tuning_gets_the_versions_budget(logs: Path) -> None:
    write_submission(logs / "self_tuning" / "team_a", "alpha", "jax", {"ogbg": [[reach(50)]]})
    runs = load([logs], V05).runs
    assert sorted(runs) == ["external", "self"]
    (self_run,) = runs["self"]
    # The budget its meta data carry (v0.5's 18,477 s for ogbg), times the version's self-tuning factor.
    assert self_run.budget_sec == 3 * 18477
    assert load([logs], V06).runs["self"][0].budget_sec == 1.5 * 18477
    boards = leaderboards(runs, AlgoPerfRules(version=V05))
    assert [(b.ruleset, sorted(b.scores)) for b in boards] == [
        ("external", ["alpha", "beta", "gamma"]),
        ("self", ["alpha"]),
    ]


def test_the_command_prints_the_board_and_writes_a_short_report(
    logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    report = tmp_path / "report"
    assert command.main([str(logs), "--rules", "v0.5", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "AlgoPerf v0.5" in out and "fewest evals" in out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line[:2] in ("1 ", "2 ", "3 ")}
    assert [rows[s][2] for s in ("alpha", "gamma", "beta")] == ["0.3542", "0.1250", "0.0625"]
    assert "beta has no logs for criteo1tb_embed_init" in out
    assert "variant missed" in out  # beta's ogbg, told apart from a miss and from missing logs
    text = (report / "report.md").read_text()
    assert len(text.splitlines()) < 80
    assert "(performance_profile_jax+pytorch.png)" in text and "(runs.csv)" in text
    with (report / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    assert {r["trial"] for r in runs} >= {"trial_1", "trial_2"}
    assert all(float(r["eval_time_s"]) > 0 for r in runs)
    curves = sorted(p.name for p in (report / "curves").iterdir())
    assert "curves_jax+pytorch_wmt.png" in curves and "curves_jax+pytorch_ogbg_gelu.png" in curves


def test_every_unknown_workload_is_named_in_one_message(tmp_path: Path) -> None:
    for name in ("mystery", "enigma"):
        folder = tmp_path / "sub" / "study_0" / f"{name}_jax" / "trial_1"
        folder.mkdir(parents=True)
        (folder / "eval_measurements.csv").write_text("global_step,score,validation/accuracy\n1,1.0,0.5\n")
    with pytest.raises(ResultsFileError, match=r"2 workload\(s\): 'enigma' .*; 'mystery' .*--targets FILE"):
        load([tmp_path])


def test_a_held_out_file_replaces_the_versions_draw(logs: Path, tmp_path: Path) -> None:
    held_out = tmp_path / "held_out.json"
    held_out.write_text(json.dumps(["ogbg_gelu"]))
    assert command.main([str(logs), "--rules", "v0.5", "--held-out", str(held_out)]) == 0
    board = only_board(logs, AlgoPerfRules(version=V05.with_held_out(["ogbg_gelu"])))
    assert math.isinf(board.ratios["alpha"]["ogbg"])  # its ogbg_gelu was missed
    assert board.ratios["beta"]["criteo1tb"] == 1.0  # criteo1tb_embed_init no longer counts


def test_a_real_v05_study_reads_the_target_from_meta_data_0() -> None:
    """Study 0 of AlgoPerf's v0.5 NAdamW baseline on criteo1tb_embed_init (JAX): target loss 0.129657 from
    meta_data_0.json. Trials 1, 2, 3 and 5 meet it at their 7th, 10th, 8th and 5th eval; trial 4 never does.
    Trial 5 is both the fewest-evals and the fastest: 488.3964619636536 s."""
    runs = load([REAL_V05], V05).runs["external"]
    assert {r.trial + 1: r.reached for r in runs} == {1: True, 2: True, 3: True, 4: False, 5: True}
    board = only_board(REAL_V05, AlgoPerfRules(version=V05))
    (choice,) = board.choices
    assert choice.chosen is not None and choice.chosen.trial + 1 == 5
    assert board.times["prize_qualification_baseline"]["criteo1tb_embed_init"] == 488.3964619636536
    assert runs[0].eval_time == 4468.800909757614  # accumulated_eval_time of trial 1's last eval


# --- Random layouts against a plain re-implementation ------------------------------------------------


def simple_score(ratios: list[float], num_base: int) -> float:
    taus = [float(t) for t in np.linspace(1.0, 4.0, 100)]  # AlgoPerf's grid
    rho = [sum(r <= tau for r in ratios) / num_base for tau in taus]
    return sum((taus[i + 1] - taus[i]) * (rho[i] + rho[i + 1]) / 2 for i in range(99)) / 3.0


def simple_algoperf(layout: dict, held_out: dict[str, str], bases: list[str]) -> dict[str, float]:
    """AlgoPerf's rules written out plainly: ``layout[sub][workload][study]`` is a list of trials, each
    ``(eval_times, reached_at)``."""
    times = {}
    for sub, workloads in layout.items():
        times[sub] = {}
        for w in bases + list(held_out):
            if w not in workloads:
                times[sub][w] = INF  # no logs: not reached
                continue
            study_times = []
            for trials in workloads[w]:
                reached = [(at, tr[at]) for tr, at in trials if at is not None]
                study_times.append(min(reached, key=lambda x: x[0])[1] if reached else INF)
            times[sub][w] = statistics.median(study_times)
    for sub in times:
        for v, b in held_out.items():
            if math.isinf(times[sub][b]):
                times[sub][v] = INF
    for w in bases + list(held_out):
        best = min(times[s][w] for s in times)
        for s in times:
            if times[s][w] > 4 * best:
                times[s][w] = INF
    for sub in times:
        for v, b in held_out.items():
            if math.isinf(times[sub][v]):
                times[sub][b] = INF
    scores = {}
    for sub in times:
        ratios = []
        for w in bases:
            best = min(times[s][w] for s in times)
            ratios.append(times[sub][w] / best if math.isfinite(best) else INF)
        scores[sub] = simple_score(ratios, len(bases))
    return scores


@st.composite
def layouts(draw: st.DrawFn) -> dict:
    workloads = ["ogbg", "ogbg_model_size", "wmt", "criteo1tb", "criteo1tb_embed_init"]
    trial = st.one_of(
        st.just(MISS),
        st.tuples(st.integers(1, 50), st.integers(0, 3)).map(lambda p: reach(float(p[0] * 10), p[1])),
    )
    layout = {}
    for i in range(draw(st.integers(2, 4))):
        chosen = draw(st.lists(st.sampled_from(workloads), min_size=1, unique=True))
        layout[f"s{i}"] = {
            w: draw(st.lists(st.lists(trial, min_size=1, max_size=3), min_size=1, max_size=3)) for w in chosen
        }
    return layout


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts(), st.booleans())
def test_random_layouts_score_as_a_plain_reimplementation(layout: dict, v05: bool) -> None:
    version = V05.with_held_out(["ogbg_model_size", "criteo1tb_embed_init"]) if v05 else V06
    held_out = {"ogbg_model_size": "ogbg", "criteo1tb_embed_init": "criteo1tb"} if v05 else {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (sub, studies) in enumerate(layout.items()):
            write_submission(root, sub, "jax" if i % 2 else "pytorch", studies)
        board = only_board(root, AlgoPerfRules(version=version))
    expected = simple_algoperf(layout, held_out, list(V05.base_workloads))
    assert board.scores == pytest.approx(expected, abs=1e-12)
