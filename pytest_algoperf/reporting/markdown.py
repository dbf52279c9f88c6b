"""The Markdown report: what a person reads after a session, also appended to ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_algoperf.gate.verdicts import Verdict
from pytest_algoperf.reporting.tables import (
    as_markdown,
    gate_table,
    runs_table,
    scores_table,
    workload_times_table,
)
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.boards import Scoreboard, TimesByFramework


def render_report(
    document: Mapping[str, Any],
    results: Sequence[RunResult],
    times: TimesByFramework,
    boards: Sequence[Scoreboard],
    verdicts: Mapping[str, Verdict],
    figures: Sequence[Path],
    folder: Path,
) -> str:
    session, machine = document["session"], document["machine"]
    lines = [
        "# pytest-algoperf report",
        "",
        f"Seed {session['seed']}, ruleset {session.get('ruleset', 'external')}, "
        f"{session.get('studies', 1)} studies x {session.get('trials', 1)} trials; "
        f"{machine.get('processor')} ({machine.get('cpu_count')} CPUs); pytest-algoperf "
        f"{document.get('plugin_version', '-')}, commit {document.get('commit') or '-'}.",
        "",
    ]
    if verdicts:
        lines += ["## Regression gate", "", *as_markdown(gate_table(verdicts.values())), ""]
        lines += [f"- **{v.status}** {v.result.test_id}: {v.detail}" for v in verdicts.values() if v.detail]
        lines.append("")
    for board in boards:
        lines += [f"## Scores ({board.framework})", "", *as_markdown(scores_table(board)), ""]
    lines += ["## Workload times", "", "Median over studies of each study's fastest trial to target.", ""]
    lines += [
        *as_markdown(workload_times_table(times)),
        "",
        "## Runs",
        "",
        *as_markdown(runs_table(results, verdicts)),
    ]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{path.stem}]({path.relative_to(folder).as_posix()})" for path in figures]
    return "\n".join(lines) + "\n"


def write_report(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a") as handle:
            handle.write(text)
