"""Profiles and scores: AlgoPerf's scoring formulas as small pure functions (ALGOPERF.md section 5).

A time is the submission time in seconds to reach the validation target; ``math.inf`` marks a missed
target. A times table is keyed ``times[submission][workload]``; every submission must list the same
workloads. Nothing here mutates its inputs: every function returns new dicts or arrays.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import numpy as np

Times = Mapping[str, Mapping[str, float]]


def check_time(value: float, where: str) -> float:
    """Returns ``value`` as a float, or raises if it is not a positive number or ``math.inf``."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: a time must be a number, got {value!r}") from None
    if math.isnan(t) or t <= 0:
        raise ValueError(f"{where}: a time must be > 0 seconds (math.inf for a missed target), got {t!r}")
    return t


def _check_table(times: Times) -> dict[str, dict[str, float]]:
    """Validates a times table and returns a plain-dict copy of it."""
    if not times:
        raise ValueError("times is empty: expected times[submission][workload] for at least one submission")
    table: dict[str, dict[str, float]] = {}
    expected: set[str] | None = None
    for sub, row in times.items():
        if not row:
            raise ValueError(f"submission {sub!r} has no workload times")
        if expected is None:
            expected = set(row)
        elif set(row) != expected:
            raise ValueError(
                f"submission {sub!r} has workloads {sorted(row)} but the first submission has "
                f"{sorted(expected)}; every submission needs a time (math.inf if missed) on every workload"
            )
        table[sub] = {w: check_time(t, f"times[{sub!r}][{w!r}]") for w, t in row.items()}
    return table


def _best_times(table: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The best (smallest) time of any submission on each workload."""
    workloads = next(iter(table.values()))
    return {w: min(row[w] for row in table.values()) for w in workloads}


def apply_cutoff(times: Times, max_ratio: float = 4.0) -> dict[str, dict[str, float]]:
    """Sets times above ``max_ratio`` x the workload's best time to inf (ALGOPERF.md section 5, step 1).

    A time of exactly ``max_ratio`` x the best is kept.
    """
    if not max_ratio >= 1:
        raise ValueError(f"max_ratio must be >= 1, got {max_ratio!r}")
    table = _check_table(times)
    best = _best_times(table)
    return {
        s: {w: math.inf if t > max_ratio * best[w] else t for w, t in row.items()} for s, row in table.items()
    }


def performance_ratios(times: Times, reference: str | None = None) -> dict[str, dict[str, float]]:
    """r[s, w] = t[s, w] / min_s t[s, w], or / t[reference, w] (ALGOPERF.md section 5, step 2).

    A missed target (inf) gives ratio inf. When the denominator is inf on a workload (nobody, or the
    reference, reached the target) every ratio on that workload is inf: such a workload then counts for
    no submission. (The reference code would divide and get 0 for finite times, nan for inf ones.)
    """
    table = _check_table(times)
    if reference is not None and reference not in table:
        raise ValueError(f"unknown reference submission {reference!r}; known: {sorted(table)}")
    denominators = _best_times(table) if reference is None else table[reference]
    return {
        s: {w: t / denominators[w] if math.isfinite(denominators[w]) else math.inf for w, t in row.items()}
        for s, row in table.items()
    }


def performance_profile(
    ratios_of_one_submission: Mapping[str, float], taus: np.ndarray, num_base_workloads: int
) -> np.ndarray:
    """rho(tau) = (# workloads with r <= tau) / num_base_workloads per tau (ALGOPERF.md section 5, step 3)."""
    if num_base_workloads < 1:
        raise ValueError(f"num_base_workloads must be >= 1, got {num_base_workloads}")
    if len(ratios_of_one_submission) > num_base_workloads:
        raise ValueError(
            f"{len(ratios_of_one_submission)} ratios but only {num_base_workloads} base workloads; "
            "drop the variant workloads first (couple_variants) so that rho stays within [0, 1]"
        )
    ratios = np.asarray([float(r) for r in ratios_of_one_submission.values()], dtype=float)
    if np.isnan(ratios).any():
        raise ValueError("performance ratios must not be nan")
    taus = np.asarray(taus, dtype=float)
    return (ratios[None, :] <= taus[:, None]).sum(axis=1) / num_base_workloads


def _inf_variants_of_inf_bases(
    times_of_one_submission: Mapping[str, float], base_of: Mapping[str, str]
) -> dict[str, float]:
    """Section 5, step 5, first half: a variant's time is inf if its base time is inf."""
    for variant, base in base_of.items():
        if variant == base or base in base_of:
            raise ValueError(f"variant {variant!r} must map to a base workload, not to {base!r}")
        for name in (variant, base):
            if name not in times_of_one_submission:
                raise ValueError(f"variant coupling needs a time for workload {name!r}, which is missing")
    return {
        w: math.inf if w in base_of and math.isinf(times_of_one_submission[base_of[w]]) else check_time(t, w)
        for w, t in times_of_one_submission.items()
    }


def couple_variants(
    times_of_one_submission: Mapping[str, float], base_of: Mapping[str, str]
) -> dict[str, float]:
    """Applies the v0.5 variant rule and keeps only the base workloads (ALGOPERF.md section 5, step 5).

    ``base_of`` maps each variant workload to its base workload. A variant's time is inf if its base time
    is inf; a base workload's time becomes inf if any of its variants' times is inf. Returns the times
    of the base workloads (every workload that is not a key of ``base_of``).
    """
    times = _inf_variants_of_inf_bases(times_of_one_submission, base_of)
    missed = {base for variant, base in base_of.items() if math.isinf(times[variant])}
    return {w: math.inf if w in missed else t for w, t in times.items() if w not in base_of}


def scored_ratios(
    times: Times,
    *,
    reference: str | None = None,
    base_workloads: Collection[str] | None = None,
    variants: Mapping[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """The ratios the profile counts: ALGOPERF.md section 5, steps 1, 2 and 5, in AlgoPerf's order.

    With ``variants`` (v0.5 rule, see couple_variants) variants of missed bases become inf; the 4x cut-off
    on every workload; then bases with a missed variant become inf and variants are dropped; ratios to the
    best, or to ``reference``. ``base_workloads`` names the scored workloads (others are ignored, as v0.6
    does with variants); by default every non-variant workload is scored.
    """
    table = _check_table(times)
    if variants:
        table = {s: _inf_variants_of_inf_bases(row, variants) for s, row in table.items()}
    table = apply_cutoff(table)
    if variants:
        table = {s: couple_variants(row, variants) for s, row in table.items()}
    if base_workloads is not None:
        scored = list(dict.fromkeys(base_workloads))
        known = next(iter(table.values()))
        unknown = [w for w in scored if w not in known]
        if not scored or unknown:
            raise ValueError(
                f"base_workloads must name some of the base workloads {sorted(known)}; got {sorted(scored)}"
            )
        table = {s: {w: row[w] for w in scored} for s, row in table.items()}
    return performance_ratios(table, reference)


def score_of_ratios(
    ratios: Mapping[str, float], num_base_workloads: int, max_tau: float = 4.0, num_points: int = 100
) -> float:
    """B_s: the profile on ``np.linspace(1, max_tau, num_points)``, integrated by the trapezoid rule,
    divided by ``max_tau - 1`` (ALGOPERF.md section 5, steps 3 and 4)."""
    taus = np.linspace(1.0, max_tau, num_points)
    profile = performance_profile(ratios, taus, num_base_workloads)
    return float(np.trapezoid(profile, taus) / (max_tau - 1))


def benchmark_scores(
    times: Times,
    *,
    reference: str | None = None,
    max_tau: float = 4.0,
    num_points: int = 100,
    base_workloads: Collection[str] | None = None,
    variants: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """The benchmark score B_s in [0, 1] of every submission (ALGOPERF.md section 5, steps 1 to 5).

    See scored_ratios for the steps before the profile; rho is divided by the number of scored base
    workloads.
    """
    if not max_tau > 1:
        raise ValueError(f"max_tau must be > 1, got {max_tau!r}")
    if num_points < 2:
        raise ValueError(f"num_points must be >= 2, got {num_points}")
    ratios = scored_ratios(times, reference=reference, base_workloads=base_workloads, variants=variants)
    num_base = len(next(iter(ratios.values())))
    return {s: score_of_ratios(r, num_base, max_tau, num_points) for s, r in ratios.items()}


def per_workload_speedups(
    times_a: Mapping[str, float], times_b: Mapping[str, float], budgets: Mapping[str, float]
) -> dict[str, float]:
    """Speedup of submission a over b on each workload: t_b / t_a, with inf replaced by budget + 1 s.

    These are the factors of geometric_mean_speedup (ALGOPERF.md section 5, "Also reported").
    """
    if not times_a:
        raise ValueError("times_a is empty")
    if set(times_a) != set(times_b):
        raise ValueError(f"times_a has workloads {sorted(times_a)} but times_b has {sorted(times_b)}")
    speedups = {}
    for w in times_a:
        if w not in budgets:
            raise ValueError(f"no budget for workload {w!r}; pass budgets[{w!r}] in seconds")
        budget = check_time(budgets[w], f"budgets[{w!r}]")
        if math.isinf(budget):
            raise ValueError(f"budgets[{w!r}] must be finite")
        a = check_time(times_a[w], f"times_a[{w!r}]")
        b = check_time(times_b[w], f"times_b[{w!r}]")
        cap = budget + 1.0
        speedups[w] = (cap if math.isinf(b) else b) / (cap if math.isinf(a) else a)
    return speedups


def geometric_mean_speedup(
    times_a: Mapping[str, float], times_b: Mapping[str, float], budgets: Mapping[str, float]
) -> float:
    """Speedup of a over b: geometric mean over workloads of t_b / t_a, inf replaced by budget + 1 s.

    ALGOPERF.md section 5, "Also reported". Above 1 means a is faster.
    """
    speedups = per_workload_speedups(times_a, times_b, budgets)
    return float(np.exp(np.mean(np.log(list(speedups.values())))))
