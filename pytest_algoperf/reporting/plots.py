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

from pytest_algoperf.aggregate import Scoreboard
from pytest_algoperf.results import RunResult
from pytest_algoperf.scoring import performance_profile


def plot_performance_profile(board: Scoreboard, path: Path, max_tau: float = 4.0) -> Path:
    """rho_s(tau), the share of workloads each submission solves within tau times the best (section 5)."""
    taus = np.linspace(1.0, max_tau, 100)
    figure = Figure(figsize=(6, 4))
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
    axes.legend()
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


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
