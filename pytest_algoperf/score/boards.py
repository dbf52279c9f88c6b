"""Boards: which submissions are compared with which, on which workloads (ALGOPERF.md section 5).

Two callers, two sets of defaults:

- the plugin at the end of a session (``scoreboards``): one board per framework, on the workloads every
  submission of that framework ran, each study scored by its fastest trial;
- ``python -m pytest_algoperf.score`` on AlgoPerf's logs (``leaderboards``, with ``AlgoPerfRules``): as
  AlgoPerf scores them, one board per ruleset across JAX and PyTorch (AlgoPerf strips the framework suffix),
  every base workload of the version counted for every submission (a workload a submission has no logs for
  counts as not reached), the version's variant rule, and AlgoPerf's code's best-trial rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pytest_algoperf.results import RunResult
from pytest_algoperf.score.profiles import (
    geometric_mean_speedup,
    per_workload_speedups,
    score_of_ratios,
    scored_ratios,
)
from pytest_algoperf.score.trials import StudyChoice, TimesByFramework, choose_trials, workload_time
from pytest_algoperf.score.trials import workload_times as workload_times
from pytest_algoperf.score.versions import V06, AlgoPerfVersion, variant_base


@dataclass(frozen=True)
class Scoreboard:
    """One comparison of several submissions."""

    framework: str  # "pytorch", "jax", or "jax+pytorch" for a board across frameworks
    times: Mapping[str, Mapping[str, float]]  # [submission][workload]
    scores: Mapping[str, float]
    ratios: Mapping[str, Mapping[str, float]]  # [submission][scored workload], as the profile counts them
    reference: str
    speedups: Mapping[str, float]  # geometric-mean speedup of each submission over the reference
    workload_speedups: Mapping[str, Mapping[str, float]]  # [submission][workload]
    ruleset: str = "external"
    absent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # [submission] -> workloads w/o logs
    held_out: Mapping[str, str] = field(default_factory=dict)  # variant -> base, when variants are coupled
    choices: tuple[StudyChoice, ...] = ()

    @property
    def title(self) -> str:
        ruleset = "self-tuning" if self.ruleset == "self" else "external tuning"
        return f"{ruleset}, {self.framework}"

    @property
    def slug(self) -> str:
        """A file-name-safe name of the board."""
        return self.framework if self.ruleset == "external" else f"{self.ruleset}_{self.framework}"


def budgets(results: Iterable[RunResult]) -> dict[str, float]:
    return {r.workload: r.budget_sec for r in results if math.isfinite(r.budget_sec)}


def variant_bases(results: Iterable[RunResult]) -> dict[str, str]:
    """Each variant workload that ran, mapped to its base workload."""
    return {r.workload: r.base_workload for r in results if r.base_workload}


def _speedups(
    table: Mapping[str, Mapping[str, float]], base: str, budget_of: Mapping[str, float], strict: bool = True
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Speedups over ``base``. A workload without a budget (no budget + 1 s to stand in for a miss) is an
    error when ``strict``, else there are no speedups."""
    workloads = next(iter(table.values()))
    if not strict and any(not 0 < budget_of.get(w, math.nan) < math.inf for w in workloads):
        return {}, {}
    return (
        {s: geometric_mean_speedup(table[s], table[base], budget_of) for s in table},
        {s: per_workload_speedups(table[s], table[base], budget_of) for s in table},
    )


def scoreboards(
    results: list[RunResult],
    reference: str | None = None,
    couple_variants: bool = False,
    rule: str = "fastest",
) -> list[Scoreboard]:
    """The plugin's boards: one per framework with at least two submissions, on their common workloads.

    ``reference`` (a submission name) makes ratios relative to it and is the base of the speedups; without
    it ratios are to the best submission per workload, and speedups are over the first submission.
    Variants are left out of the score (AlgoPerf v0.6) unless ``couple_variants`` applies v0.5's rule (see
    ``profiles.couple_variants``), for which each variant's base workload must have run too. ``rule`` picks
    each study's best trial (see ``trials``).
    """
    bases_of_variants = variant_bases(results)
    variants = bases_of_variants if couple_variants else None
    boards = []
    budget_of = budgets(results)
    for framework, table in workload_times(results, rule).items():
        if len(table) < 2:
            continue
        common = set.intersection(*(set(row) for row in table.values()))
        table = {s: {w: t for w, t in row.items() if w in common} for s, row in table.items()}
        if reference is not None and reference not in table:
            raise ValueError(
                f"reference submission {reference!r} has no {framework} runs; have {sorted(table)}"
            )
        base = reference or next(iter(table))
        scored = sorted(w for w in common if w not in bases_of_variants)
        ratios = scored_ratios(
            table, reference=reference, variants=variants or None, base_workloads=None if variants else scored
        )
        speedups, workload_speedups = _speedups(table, base, {w: budget_of.get(w, 0.0) for w in common})
        boards.append(
            Scoreboard(
                framework,
                table,
                {s: score_of_ratios(r, len(r)) for s, r in ratios.items()},
                ratios,
                base,
                speedups,
                workload_speedups,
                held_out=dict(variants or {}),
            )
        )
    return boards


@dataclass(frozen=True)
class AlgoPerfRules:
    """How ``leaderboards`` scores logs; the defaults are AlgoPerf's for its own logs."""

    version: AlgoPerfVersion = V06
    best_trial: str = "fewest-evals"
    one_board: bool = True
    reference: str | None = None


def _row_names(choices: Sequence[StudyChoice], one_board: bool) -> dict[tuple[str, str], str]:
    """Each (framework, submission)'s row: the submission's name, with the framework where a submission
    has runs in both frameworks on one board (AlgoPerf would refuse such logs)."""
    frameworks: dict[str, set[str]] = {}
    for c in choices:
        frameworks.setdefault(c.submission, set()).add(c.framework)
    return {
        (c.framework, c.submission): (
            f"{c.submission} [{c.framework}]"
            if one_board and len(frameworks[c.submission]) > 1
            else c.submission
        )
        for c in choices
    }


def leaderboard(
    results: Sequence[RunResult], rules: AlgoPerfRules, ruleset: str = "external", framework: str = ""
) -> Scoreboard:
    """One board of ``results`` (one ruleset; one framework, or all) under ``rules``.

    Every base workload of the version, and every base workload the logs hold that is no variant, is scored
    for every submission; so is each held-out variant of the version (v0.5). A workload a submission has
    no logs for counts as not reached (inf), as AlgoPerf's code treats its missing values, and is listed in
    ``absent``.
    """
    version = rules.version
    choices = choose_trials(results, rules.best_trial)
    if not choices:
        raise ValueError("no runs to score")
    rows = _row_names(choices, rules.one_board)
    study_times: dict[str, dict[str, list[float]]] = {}
    for c in choices:
        study_times.setdefault(rows[c.framework, c.submission], {}).setdefault(c.workload, []).append(c.time)
    logged = {w for row in study_times.values() for w in row}
    known_variants = {w: variant_base(w, version.base_workloads) for w in logged}
    bases = list(version.base_workloads) + sorted(
        w for w in logged if known_variants[w] is None and w not in version.base_workloads
    )
    held_out = {v: version.variant_of.get(v) or variant_base(v, bases) or v for v in version.held_out}
    columns = bases + sorted(held_out)
    table, absent = {}, {}
    for name, row in sorted(study_times.items()):
        table[name] = {w: workload_time(row[w]) if w in row else math.inf for w in columns}
        missing = tuple(w for w in columns if w not in row)
        if missing:
            absent[name] = missing
    if rules.reference is not None and rules.reference not in table:
        raise ValueError(
            f"reference submission {rules.reference!r} is not on this board; have {sorted(table)}"
        )
    ratios = scored_ratios(table, reference=rules.reference, variants=held_out or None, base_workloads=bases)
    base_name = rules.reference or next(iter(table))
    budget_of = {}
    for r in results:
        budget_of.setdefault(r.workload, r.budget_sec)
    scored_table = {s: {w: row[w] for w in bases} for s, row in table.items()}
    speedups, workload_speedups = _speedups(scored_table, base_name, budget_of, strict=False)
    frameworks = "+".join(sorted({c.framework for c in choices}))
    return Scoreboard(
        framework or frameworks,
        table,
        {s: score_of_ratios(r, len(bases)) for s, r in ratios.items()},
        ratios,
        base_name,
        speedups,
        workload_speedups,
        ruleset=ruleset,
        absent=absent,
        held_out=held_out,
        choices=tuple(choices),
    )


def leaderboards(
    runs_by_ruleset: Mapping[str, Sequence[RunResult]], rules: AlgoPerfRules
) -> list[Scoreboard]:
    """A board per ruleset (rulesets are never mixed), and per framework unless ``rules.one_board``."""
    boards = []
    for ruleset, runs in sorted(runs_by_ruleset.items()):
        if rules.one_board:
            boards.append(leaderboard(runs, rules, ruleset))
            continue
        for framework in sorted({r.framework for r in runs}):
            boards.append(
                leaderboard([r for r in runs if r.framework == framework], rules, ruleset, framework)
            )
    return boards


__all__ = [
    "AlgoPerfRules",
    "Scoreboard",
    "TimesByFramework",
    "leaderboard",
    "leaderboards",
    "scoreboards",
    "workload_times",
]
