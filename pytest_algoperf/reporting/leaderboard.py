"""The report on AlgoPerf's logs: what someone reading a leaderboard wants.

In the terminal and in ``report.md``: the rules applied, the board (rank, score, speedup), each workload's
time with a missed target and missing logs told apart, the performance-profile plot and one curve figure per
workload. The per-run and per-study detail goes to ``runs.csv`` and ``studies.csv``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from pytest_algoperf.reporting.tables import Table, as_markdown, as_text
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.boards import AlgoPerfRules, Scoreboard
from pytest_algoperf.score.logs import LoadedRuns
from pytest_algoperf.score.trials import evals_to_target, run_time

ABSENT = "no logs"
MISSED = "missed"


def rules_summary(rules: AlgoPerfRules, boards: Sequence[Scoreboard]) -> list[str]:
    """One line per rule applied, naming the AlgoPerf version it follows."""
    version = rules.version
    held_out = ", ".join(version.held_out)
    best = {
        "fewest-evals": "the trial that met the target at the fewest evals (AlgoPerf's scoring code)",
        "fastest": "the trial that met the target in the least time (AlgoPerf's documentation)",
    }[rules.best_trial]
    rulesets = ", ".join(sorted({b.ruleset for b in boards}))
    variants = (
        f"held-out {held_out}; a missed held-out variant makes its base workload missed"
        if held_out
        else "not scored"
    )
    boards_rule = "one across JAX and PyTorch" if rules.one_board else "one per framework"
    return [
        f"- Rules: AlgoPerf {version.name}; targets from each trial's meta data, else {version.name}'s.",
        f"- Variants: {variants}.",
        f"- A study's time: {best}; a workload's time: the median over studies.",
        f"- Boards: {boards_rule}, per ruleset ({rulesets}); "
        f"self-tuning budgets are {version.self_tuning_budget_factor:g}x the external ones.",
        "- A workload a submission has no logs for counts as not reached; the score divides by the number of "
        "base workloads.",
    ]


def _cell_time(board: Scoreboard, submission: str, workload: str) -> str:
    if workload in board.absent.get(submission, ()):
        return ABSENT
    time = board.times[submission][workload]
    return MISSED if math.isinf(time) else f"{time:,.1f}"


def _cell_ratio(board: Scoreboard, submission: str, workload: str) -> str:
    ratio = board.ratios[submission][workload]
    if math.isfinite(ratio):
        return f"{ratio:.2f}"
    if workload in board.absent.get(submission, ()):
        return ABSENT
    if math.isinf(board.times[submission][workload]):
        return MISSED
    variants = [v for v, b in board.held_out.items() if b == workload]
    if any(v in board.absent.get(submission, ()) for v in variants):
        return "variant: no logs"
    if any(math.isinf(board.times[submission][v]) for v in variants):
        return "variant missed"
    return ">4x best"


def _absent_for_all(board: Scoreboard) -> set[str]:
    return set.intersection(*(set(board.absent.get(s, ())) for s in board.times))


def board_table(board: Scoreboard) -> Table:
    """Rank, score, speedup over the reference, and each scored workload's ratio to the best (or why not);
    workloads nobody has logs for are left out (``absent_lines`` names them)."""
    hidden = _absent_for_all(board)
    workloads = [w for w in next(iter(board.ratios.values())) if w not in hidden]
    header = ["rank", "submission", "score"]
    if board.speedups:
        header.append(f"speedup vs {board.reference}")
    table = [header + workloads]
    ranked = sorted(board.scores.items(), key=lambda item: (-item[1], item[0]))
    for rank, (submission, score) in enumerate(ranked, start=1):
        row = [str(rank), submission, f"{score:.4f}"]
        if board.speedups:
            row.append(f"{board.speedups[submission]:.2f}x")
        table.append(row + [_cell_ratio(board, submission, w) for w in workloads])
    return table


def times_table(board: Scoreboard) -> Table:
    """Each workload's time in seconds (median over studies), ``missed`` or ``no logs``."""
    hidden = _absent_for_all(board)
    workloads = [w for w in next(iter(board.times.values())) if w not in hidden]
    table = [["submission", *workloads]]
    for submission in sorted(board.times):
        table.append([submission, *(_cell_time(board, submission, w) for w in workloads)])
    return table


def absent_lines(board: Scoreboard) -> list[str]:
    everyone = _absent_for_all(board)
    lines = []
    if everyone:
        lines.append(
            f"- No submission has logs for {', '.join(sorted(everyone))}: "
            "each counts as not reached for everyone."
        )
    for submission, workloads in sorted(board.absent.items()):
        own = [w for w in workloads if w not in everyone]
        if own:
            lines.append(f"- {submission} has no logs for {', '.join(own)} (counted as not reached)")
    return lines


def print_boards(boards: Sequence[Scoreboard], rules: AlgoPerfRules, loaded: LoadedRuns) -> list[str]:
    lines = [*rules_summary(rules, boards), *(f"- Note: {n}" for n in loaded.notes)]
    for board in boards:
        lines += ["", f"== {board.title}: {len(board.scores)} submissions =="]
        lines += as_text(board_table(board))
        lines += ["", "workload times (s, median over studies):", *as_text(times_table(board))]
        lines += absent_lines(board)
    return lines


def write_leaderboard_report(
    folder: Path, boards: Sequence[Scoreboard], rules: AlgoPerfRules, loaded: LoadedRuns
) -> Path:
    """report.md, runs.csv, studies.csv and the figures, in ``folder``; returns report.md's path."""
    from pytest_algoperf.reporting.plots import plot_best_trials, plot_performance_profile

    folder.mkdir(parents=True, exist_ok=True)
    runs = loaded.all_runs
    write_runs_csv(folder / "runs.csv", runs, loaded)
    write_studies_csv(folder / "studies.csv", boards)
    hardware = ", ".join(sorted(loaded.hardware)) or "not recorded"
    lines = [
        "# AlgoPerf leaderboard",
        "",
        f"{len(runs)} trials of {len({r.submission for r in runs})} submissions; hardware: {hardware}.",
        "",
        *rules_summary(rules, boards),
        *(f"- Note: {n}" for n in loaded.notes),
    ]
    for board in boards:
        profile = plot_performance_profile(board, folder / f"performance_profile_{board.slug}.png")
        curves = plot_best_trials(board, folder / "curves")
        lines += ["", f"## Board ({board.title})", "", *as_markdown(board_table(board)), ""]
        lines += [
            "Ratios to the best time after AlgoPerf's 4x cut-off; `missed`: the target was not met; "
            f"`{ABSENT}`: the submission has no logs for the workload.",
            "",
        ]
        lines += [f"![performance profile]({profile.relative_to(folder).as_posix()})", ""]
        lines += ["### Workload times (seconds)", "", *as_markdown(times_table(board)), ""]
        lines += absent_lines(board)
        lines += ["", "### Best trial of each study", ""]
        lines += [f"![{p.stem}]({p.relative_to(folder).as_posix()})" for p in curves]
    lines += [
        "",
        "<details><summary>Per-run and per-study detail</summary>",
        "",
        "- [runs.csv](runs.csv): every trial: reached, time and steps to target, evals, eval time, folder.",
        "- [studies.csv](studies.csv): every study: the trial it is scored by, and its time.",
        "",
        "</details>",
    ]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_runs_csv(path: Path, runs: Sequence[RunResult], loaded: LoadedRuns) -> None:
    columns = [
        "ruleset",
        "submission",
        "framework",
        "workload",
        "study",
        "trial",
        "reached",
        "time_to_target_s",
        "steps_to_target",
        "evals_to_target",
        "evals",
        "best_validation",
        "target",
        "submission_time_s",
        "eval_time_s",
        "budget_s",
        "folder",
    ]
    ruleset_of = {r.test_id: ruleset for ruleset, rs in loaded.runs.items() for r in rs}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for r in runs:
            index = evals_to_target(r)
            writer.writerow(
                [
                    ruleset_of.get(r.test_id, ""),
                    r.submission,
                    r.framework,
                    r.workload,
                    f"study_{r.study}",
                    f"trial_{r.trial + 1}",
                    r.reached,
                    "" if math.isinf(run_time(r)) else f"{run_time(r):.3f}",
                    "" if r.steps_to_target is None else r.steps_to_target,
                    "" if index is None else index + 1,
                    r.num_evals,
                    "" if r.best_validation is None else r.best_validation,
                    r.validation_target,
                    f"{r.submission_time:.3f}",
                    f"{r.eval_time:.3f}",
                    r.budget_sec,
                    loaded.folders.get(r.test_id, ""),
                ]
            )


def write_studies_csv(path: Path, boards: Sequence[Scoreboard]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["ruleset", "submission", "framework", "workload", "study", "trials", "chosen", "time_s"]
        )
        for board in boards:
            for c in board.choices:
                writer.writerow(
                    [
                        board.ruleset,
                        c.submission,
                        c.framework,
                        c.workload,
                        f"study_{c.study}",
                        len(c.trials),
                        "" if c.chosen is None else f"trial_{c.chosen.trial + 1}",
                        "" if math.isinf(c.time) else f"{c.time:.3f}",
                    ]
                )
