"""The end of a session, from its runs alone: gate verdicts, baseline files, workload times, scores, the
report files, the terminal summary and the exit status.

Two callers share it, so a merged set of shards ends exactly as one session would: the recorder at the end of
a pytest session (``pytest_algoperf.recorder``), and ``python -m pytest_algoperf.merge`` on the shards'
``results.json`` files. Each run is judged against the baseline with the machine it ran on.

A shard's own session (``partial``) judges its runs and fails on their failures and regressions, but leaves
what depends on runs of other shards to the merge: workload times over studies, the "every study missed"
failure, and scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_algoperf.gate.baseline_file import Baseline, save_baseline
from pytest_algoperf.gate.verdicts import Tolerances, Verdict, judge
from pytest_algoperf.options import Settings
from pytest_algoperf.reporting.markdown import render_report, write_report
from pytest_algoperf.reporting.plots import plot_learning_curves, plot_performance_profile
from pytest_algoperf.reporting.tables import gate_table, runs_table, scores_table, workload_times_table
from pytest_algoperf.reporting.terminal import write_table
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.boards import Scoreboard, TimesByFramework, scoreboards, workload_times

STATUSES = ("regressed", "refused", "inconclusive", "ok", "new")
WorkloadKey = tuple[str, str, str]  # (framework, submission, workload)


class Terminal(Protocol):
    """What the summary writes to: pytest's terminal reporter, or ``PrintedTerminal``."""

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


@dataclass(frozen=True)
class ConclusionSettings:
    """The options that decide how a session ends, as a session had them or as its results file records."""

    output: Path
    studies: int = 1
    trials: int = 1
    reference_submission: str | None = None
    variant_scoring: str = "v0.6"
    tolerances: Tolerances = field(default_factory=Tolerances)
    baseline_path: Path | None = None
    update_baseline: bool = False
    save_baseline: Path | None = None
    partial: bool = False  # one shard of a session: no workload times, scores or every-study-missed failure

    @classmethod
    def of(cls, settings: Settings) -> ConclusionSettings:
        return cls(
            settings.output,
            settings.studies,
            settings.trials,
            settings.reference_submission,
            settings.variant_scoring,
            settings.tolerances,
            settings.baseline,
            settings.update_baseline,
            settings.save_baseline,
            partial=settings.shard is not None,
        )

    def to_json(self) -> dict[str, Any]:
        """What ``python -m pytest_algoperf.merge`` needs to end the merged session as this one would."""
        return {
            "reference_submission": self.reference_submission,
            "variant_scoring": self.variant_scoring,
            "tolerance": {
                "default": self.tolerances.default,
                "per_workload": dict(self.tolerances.per_workload),
                "seconds": self.tolerances.seconds,
            },
            "baseline": str(self.baseline_path) if self.baseline_path else None,
            "update_baseline": self.update_baseline,
            "save_baseline": str(self.save_baseline) if self.save_baseline else None,
        }


@dataclass
class Conclusion:
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    times: TimesByFramework = field(default_factory=dict)
    missed: list[WorkloadKey] = field(default_factory=list)  # workloads whose time is inf
    met_past_budget: set[WorkloadKey] = field(default_factory=set)  # of those, met within the step budget
    missed_within_noise: set[WorkloadKey] = field(default_factory=set)  # of those, short by seed noise only
    boards: list[Scoreboard] = field(default_factory=list)
    scoring_error: str | None = None

    @property
    def regressed(self) -> bool:
        return any(v.status == "regressed" for v in self.verdicts.values())

    @property
    def every_study_missed(self) -> bool:
        """A workload none of whose studies met the target at all (not even past the time budget), nor came
        within the baseline's seed noise of it."""
        return bool(set(self.missed) - self.met_past_budget - self.missed_within_noise)

    def exit_status(self, tests_status: int, settings: ConclusionSettings) -> int:
        """The session's exit status: its tests' status, failed further by a regression (unless accepted with
        --algoperf-update-baseline) or by a workload that every study missed."""
        status = tests_status
        if self.regressed and status == pytest.ExitCode.OK and not settings.update_baseline:
            status = pytest.ExitCode.TESTS_FAILED
        if self.every_study_missed and status == pytest.ExitCode.OK:
            status = pytest.ExitCode.TESTS_FAILED
        return status


def conclude(
    results: Sequence[RunResult],
    settings: ConclusionSettings,
    baseline: Baseline | None,
    environment: Mapping[str, Any],
    document: Mapping[str, Any],
    machine_of: Callable[[RunResult], Mapping[str, Any]] | None = None,
) -> Conclusion:
    """Judge, save baselines, time, score and write the report; ``machine_of`` gives the machine a run ran on
    (default: ``environment``'s)."""
    conclusion = Conclusion()
    if baseline is not None:
        machine = machine_of or (lambda _: environment.get("machine", {}))
        conclusion.verdicts = {
            r.test_id: judge(r, baseline, settings.tolerances, machine(r)) for r in results
        }
    if settings.save_baseline is not None:
        save_baseline(settings.save_baseline, results, environment)
    if settings.update_baseline and settings.baseline_path is not None:
        kept = baseline.entries if baseline is not None else {}
        save_baseline(settings.baseline_path, results, environment, keep=kept)
    if not results:
        return conclusion
    if not settings.partial:
        _time_and_score(conclusion, results, settings)
    write_report_files(conclusion, results, settings.output, document)
    return conclusion


def _time_and_score(
    conclusion: Conclusion, results: Sequence[RunResult], settings: ConclusionSettings
) -> None:
    conclusion.times = workload_times(results)
    conclusion.missed = [
        (f, s, w)
        for f, subs in conclusion.times.items()
        for s, row in subs.items()
        for w, t in row.items()
        if math.isinf(t)
    ]
    # Every trial of a tuning study missed. In step mode, a target met within the step budget but past the
    # time budget is no such miss: its time is the gate's to judge, not a load's to decide.
    met = {(r.framework, r.submission, r.workload) for r in results if r.met_target}
    conclusion.met_past_budget = set(conclusion.missed) & met
    # A workload missed only within the baseline's seed noise (AlgoPerf's median targets make one run of
    # the baseline miss half the time) scores inf but does not fail the session.
    near = {(r.framework, r.submission, r.workload) for r in results if r.missed_within_seed_noise}
    conclusion.missed_within_noise = set(conclusion.missed) & near
    try:
        conclusion.boards = scoreboards(
            results, settings.reference_submission, couple_variants=settings.variant_scoring == "v0.5"
        )
    except ValueError as error:
        conclusion.scoring_error = str(error)


def write_report_files(
    conclusion: Conclusion, results: Sequence[RunResult], output: Path, document: Mapping[str, Any]
) -> None:
    """report.md with the scores, times and runs, and the PNG figures it shows."""
    figures = [
        plot_performance_profile(b, output / f"performance_profile_{b.framework}.png")
        for b in conclusion.boards
    ]
    figures += plot_learning_curves(results, output / "curves")
    text = render_report(
        document, results, conclusion.times, conclusion.boards, conclusion.verdicts, figures, output
    )
    write_report(output / "report.md", text)


def write_summary(
    terminal: Terminal,
    conclusion: Conclusion,
    results: Sequence[RunResult],
    settings: ConclusionSettings,
    baseline: Baseline | None,
) -> None:
    """One table of every run, workload times, misses, scores, then the regression gate's decisions and where
    the files are."""
    if not results:
        return
    write_table(terminal, "algoperf summary", runs_table(results, conclusion.verdicts))
    if (settings.studies > 1 or settings.trials > 1) and not settings.partial:
        write_table(terminal, "algoperf workload times", workload_times_table(conclusion.times))
    for framework, submission, workload in conclusion.missed:
        key = (framework, submission, workload)
        over_budget, near = key in conclusion.met_past_budget, key in conclusion.missed_within_noise
        why = (
            "met only past the time budget (step mode)"
            if over_budget
            else "short of the target by the baseline's seed noise only (scored as missed; not a failure)"
            if near
            else "no study reached the target"
        )
        terminal.write_line(
            f"MISSED {workload} ({submission}, {framework}): {why}", red=not (over_budget or near)
        )
    for board in conclusion.boards:
        write_table(terminal, f"algoperf scores ({board.framework})", scores_table(board))
    if conclusion.scoring_error:
        terminal.write_line(f"scores not computed: {conclusion.scoring_error}", red=True)
    if conclusion.verdicts:
        write_table(terminal, "algoperf regression gate", gate_table(conclusion.verdicts.values()))
    _write_verdicts(terminal, conclusion)
    if baseline is not None:
        counts = {s: sum(v.status == s for v in conclusion.verdicts.values()) for s in STATUSES}
        accepted = " (accepted: --algoperf-update-baseline)" if settings.update_baseline else ""
        terminal.write_line(
            f"baseline {baseline.path}: "
            + ", ".join(f"{n} {status}" for status, n in counts.items() if n or status == "regressed")
            + f"{accepted}; tolerance {settings.tolerances.describe()}"
            f" + {settings.tolerances.seconds:g} s on stored times; steps exact"
        )
    if settings.update_baseline:
        terminal.write_line(f"baseline updated: {settings.baseline_path}")
    if settings.save_baseline is not None:
        terminal.write_line(f"baseline saved to {settings.save_baseline}")
    terminal.write_line(
        f"results: {settings.output / 'results.json'}; report: {settings.output / 'report.md'}"
    )


def _write_verdicts(terminal: Terminal, conclusion: Conclusion) -> None:
    for verdict in conclusion.verdicts.values():
        if verdict.status in ("regressed", "refused", "inconclusive"):
            result = verdict.result
            terminal.write_line(
                f"{verdict.status.upper()} {result.workload} ({result.test_id}): {verdict.detail}",
                red=verdict.status != "inconclusive",
                yellow=verdict.status == "inconclusive",
            )
        elif verdict.status == "new":
            terminal.write_line(f"new: {verdict.result.test_id} has no baseline entry", yellow=True)


class PrintedTerminal:
    """A ``Terminal`` that prints plain lines, for commands outside pytest."""

    def __init__(self, width: int = 80) -> None:
        self.width = width

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None:
        if title is None:
            print(sep * self.width)
            return
        side = max(1, (self.width - len(title) - 2) // (2 * len(sep)))
        print(f"{sep * side} {title} {sep * side}")

    def write_line(self, line: str, **markup: bool) -> None:
        print(line)
