"""PNG figures: performance profiles, and validation metric against submission time per workload.

Figures are built with matplotlib's object-oriented API (``Figure``, no pyplot), which renders with the
non-interactive Agg backend and touches no global state, so plots work on machines without a display.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pytest_algoperf.results import RunResult
from pytest_algoperf.score.boards import Scoreboard
from pytest_algoperf.score.profiles import performance_profile
from pytest_algoperf.score.trials import StudyChoice


def plot_performance_profile(board: Scoreboard, path: Path, max_tau: float = 4.0) -> Path:
    """rho_s(tau), the share of workloads each submission solves within tau times the best (section 5)."""
    taus = np.linspace(1.0, max_tau, 100)
    figure = Figure(figsize=(7, 4.5) if len(board.ratios) > 4 else (6, 4))
    axes = figure.subplots()
    num_workloads = len(next(iter(board.ratios.values())))
    for submission, row in board.ratios.items():
        profile = performance_profile(row, taus, num_workloads)
        axes.step(taus, profile, where="post", label=f"{submission} (score {board.scores[submission]:.3f})")
    axes.set(
        xlabel="tau (time / best time)",
        ylabel="share of workloads",
        ylim=(-0.02, 1.02),
        title=f"Performance profiles ({board.framework})",
    )
    axes.legend(fontsize="small" if len(board.ratios) > 4 else None, loc="best")
    return _save(figure, path)


def plot_learning_curves(results: Sequence[RunResult], folder: Path) -> list[Path]:
    """One figure per (workload, framework): validation metric against submission time, one line per run."""
    groups: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for result in results:
        if result.evals:
            groups[result.workload, result.framework].append(result)
    paths = []
    for (workload, framework), runs in sorted(groups.items()):
        figure = Figure(figsize=(6, 4))
        axes = figure.subplots()
        metric = f"validation/{runs[0].target_metric}"
        for run in runs:
            times = [record.score for record in run.evals]
            values = [record.metrics.get(metric, np.nan) for record in run.evals]
            label = (
                run.submission
                if run.study == run.trial == 0
                else f"{run.submission} s{run.study} t{run.trial}"
            )
            axes.plot(times, values, marker=".", label=label)
        axes.axhline(runs[0].validation_target, color="grey", linestyle="--", label="target")
        axes.set(xlabel="submission time (s)", ylabel=metric, title=f"{workload} ({framework})")
        axes.legend(fontsize="small")
        paths.append(_save(figure, folder / f"curves_{workload}_{framework}.png"))
    return paths


def plot_best_trials(board: Scoreboard, folder: Path) -> list[Path]:
    """One figure per workload of a board: the validation metric against submission time of each study's
    best trial, one colour per submission. A study that missed shows its trial with the best value, dashed."""
    by_workload: dict[str, list[StudyChoice]] = defaultdict(list)
    for choice in board.choices:
        by_workload[choice.workload].append(choice)
    submissions = sorted({c.submission for c in board.choices})
    colours = {s: f"C{i % 10}" for i, s in enumerate(submissions)}
    styles = {s: "-" if i < 10 else "-." for i, s in enumerate(submissions)}
    paths = []
    for workload, choices in sorted(by_workload.items()):
        first = choices[0].trials[0]
        metric = f"validation/{first.target_metric}"
        figure = Figure(figsize=(7, 4.5))
        axes = figure.subplots()
        labelled: set[str] = set()
        for choice in choices:
            run = choice.chosen or _closest_trial(choice.trials)
            if run is None or not run.evals:
                continue
            label = choice.submission if choice.submission not in labelled else None
            labelled.add(choice.submission)
            axes.plot(
                [record.score for record in run.evals],
                [record.metrics.get(metric, np.nan) for record in run.evals],
                color=colours[choice.submission],
                linestyle=styles[choice.submission] if choice.chosen else ":",
                linewidth=1.2,
                alpha=0.85,
                label=label,
            )
        axes.axhline(first.validation_target, color="grey", linestyle="--", linewidth=1, label="target")
        axes.set(
            xlabel="submission time (s)",
            ylabel=metric,
            title=f"{workload}: best trial of each study ({board.title})",
        )
        axes.legend(fontsize="x-small", ncol=2 if len(labelled) > 6 else 1, loc="best")
        paths.append(_save(figure, folder / f"curves_{board.slug}_{workload}.png"))
    return paths


def _closest_trial(trials: Sequence[RunResult]) -> RunResult | None:
    """The trial whose best validation value came closest to the target."""
    with_values = [t for t in trials if t.best_validation is not None]
    if not with_values:
        return trials[0] if trials else None
    pick = max if with_values[0].higher_is_better else min
    return pick(with_values, key=lambda t: t.best_validation)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
