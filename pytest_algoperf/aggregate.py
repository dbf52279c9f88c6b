"""From individual runs to workload times, scores and speedups (ALGOPERF.md sections 4-5).

Used by the plugin at the end of a session and by ``python -m pytest_algoperf.score`` alike; both hand in
``RunResult`` objects, whether they come from this session, a ``results.json`` or AlgoPerf's own logs.
Submissions are compared within one framework: a PyTorch run and a JAX run are different hardware/software
stacks, as AlgoPerf scores them separately.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pytest_algoperf.results import RunResult
from pytest_algoperf.scoring import (
    apply_cutoff,
    benchmark_scores,
    geometric_mean_speedup,
    per_workload_speedups,
    performance_ratios,
    study_time,
)
from pytest_algoperf.scoring import workload_time as median_over_studies

# times[framework][submission][workload]
TimesByFramework = dict[str, dict[str, dict[str, float]]]


def run_time(result: RunResult) -> float:
    """A run's time to target; inf when it missed."""
    return result.time_to_target if result.reached and result.time_to_target else math.inf


def workload_times(results: Iterable[RunResult]) -> TimesByFramework:
    """Per (framework, submission, workload): the median over studies of each study's fastest trial."""
    trials: dict[tuple[str, str, str, int], list[float]] = defaultdict(list)
    for result in results:
        trials[result.framework, result.submission, result.workload, result.study].append(run_time(result))
    studies: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for (framework, submission, workload, _), times in sorted(trials.items()):
        studies[framework, submission, workload].append(study_time(times))
    table: TimesByFramework = defaultdict(lambda: defaultdict(dict))
    for (framework, submission, workload), times in studies.items():
        table[framework][submission][workload] = median_over_studies(times)
    return {f: {s: dict(w) for s, w in subs.items()} for f, subs in table.items()}


def budgets(results: Iterable[RunResult]) -> dict[str, float]:
    return {r.workload: r.budget_sec for r in results if math.isfinite(r.budget_sec)}


@dataclass(frozen=True)
class Scoreboard:
    """One framework's comparison of several submissions."""

    framework: str
    times: Mapping[str, Mapping[str, float]]  # [submission][workload]
    scores: Mapping[str, float]
    ratios: Mapping[str, Mapping[str, float]]  # [submission][scored workload], after the 4x cut-off
    reference: str
    speedups: Mapping[str, float]  # geometric-mean speedup of each submission over the reference
    workload_speedups: Mapping[str, Mapping[str, float]]  # [submission][workload]


def variant_bases(results: Iterable[RunResult]) -> dict[str, str]:
    """Each variant workload that ran, mapped to its base workload."""
    return {r.workload: r.base_workload for r in results if r.base_workload}


def scoreboards(
    results: list[RunResult], reference: str | None = None, couple_variants: bool = False
) -> list[Scoreboard]:
    """Scores for every framework with at least two submissions that ran the same workloads.

    ``reference`` (a submission name) makes ratios relative to it and is the base of the speedups; without
    it ratios are to the best submission per workload, and speedups are over the first submission.
    Variants are left out of the score (AlgoPerf v0.6) unless ``couple_variants`` applies v0.5's rule (see
    ``scoring.couple_variants``), for which each variant's base workload must have run too.
    """
    bases_of_variants = variant_bases(results)
    variants = bases_of_variants if couple_variants else None
    boards = []
    budget_of = budgets(results)
    for framework, table in workload_times(results).items():
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
        scores = benchmark_scores(
            table, reference=reference, variants=variants or None, base_workloads=None if variants else scored
        )
        speedup_budgets = {w: budget_of.get(w, 0.0) for w in common}
        scored_table = {s: {w: row[w] for w in scored} for s, row in table.items()}
        boards.append(
            Scoreboard(
                framework,
                table,
                scores,
                performance_ratios(apply_cutoff(scored_table), reference),
                base,
                {s: geometric_mean_speedup(table[s], table[base], speedup_budgets) for s in table},
                {s: per_workload_speedups(table[s], table[base], speedup_budgets) for s in table},
            )
        )
    return boards
