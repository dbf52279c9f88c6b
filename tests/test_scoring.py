"""Behaviour of pytest_algoperf.score.profiles and .trials: AlgoPerf's scoring rules (ALGOPERF.md 4, 5).

Times are seconds to reach the validation target, ``math.inf`` when the target was missed; tables are
keyed ``times[submission][workload]``.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_algoperf.score.profiles import (
    apply_cutoff,
    benchmark_scores,
    couple_variants,
    geometric_mean_speedup,
    per_workload_speedups,
    performance_profile,
    performance_ratios,
)
from pytest_algoperf.score.trials import study_time, workload_time

INF = math.inf
bounded = settings(max_examples=100, deadline=None)

finite_times = st.floats(min_value=1e-2, max_value=1e5, allow_nan=False, allow_infinity=False)
times_or_miss = st.one_of(finite_times, st.just(INF))


@st.composite
def times_tables(draw: st.DrawFn, max_submissions: int = 4, max_workloads: int = 4) -> dict:
    """A times[submission][workload] table with some missed targets (inf)."""
    num_submissions = draw(st.integers(1, max_submissions))
    num_workloads = draw(st.integers(1, max_workloads))
    return {
        f"s{i}": {f"w{j}": draw(times_or_miss) for j in range(num_workloads)} for i in range(num_submissions)
    }


# --- Section 4: a study's time and a workload's time ------------------------------------------------


def test_study_time_is_the_fastest_trial_that_reached_the_target() -> None:
    assert study_time([30.0, INF, 12.0, 50.0, INF]) == 12.0


def test_study_time_is_inf_when_no_trial_reached_the_target() -> None:
    assert study_time([INF] * 5) == INF


@pytest.mark.parametrize(
    ("study_times", "expected"),
    [
        ([1.0, INF, INF], INF),  # two of three studies missed: the median missed
        ([1.0, 2.0, INF], 2.0),  # one of three missed: the median is the middle finite time
        ([3.0, 1.0, 2.0], 2.0),
        ([1.0, 3.0], 2.0),  # even count: mean of the two middle values
        ([1.0, INF], INF),  # ... which is inf if either is inf
        ([7.0], 7.0),
    ],
)
def test_workload_time_is_the_median_over_studies_where_inf_counts(
    study_times: list[float], expected: float
) -> None:
    assert workload_time(study_times) == expected


@bounded
@given(st.lists(times_or_miss, min_size=1, max_size=7))
def test_workload_time_agrees_with_the_textbook_median(study_times: list[float]) -> None:
    assert workload_time(study_times) == statistics.median(study_times)


@bounded
@given(st.lists(times_or_miss, min_size=1, max_size=7))
def test_a_workload_is_missed_exactly_when_at_least_half_of_its_studies_missed(
    study_times: list[float],
) -> None:
    num_missed = sum(math.isinf(t) for t in study_times)
    assert math.isinf(workload_time(study_times)) == (2 * num_missed >= len(study_times))


# --- Section 5, step 1: the 4x cut-off ------------------------------------------------------------


@bounded
@given(finite_times)
def test_a_time_just_over_4x_the_best_is_a_miss_but_exactly_4x_is_not(best: float) -> None:
    times = {"best": {"w": best}, "at_4x": {"w": 4.0 * best}, "at_4_01x": {"w": 4.01 * best}}
    cut = apply_cutoff(times)
    assert cut["best"]["w"] == best
    assert cut["at_4x"]["w"] == 4.0 * best
    assert cut["at_4_01x"]["w"] == INF


def test_the_cutoff_is_per_workload_and_leaves_its_input_alone() -> None:
    times = {"a": {"w1": 10.0, "w2": 100.0}, "b": {"w1": 50.0, "w2": 30.0}}
    cut = apply_cutoff(times)
    assert cut == {"a": {"w1": 10.0, "w2": 100.0}, "b": {"w1": INF, "w2": 30.0}}
    assert times["b"]["w1"] == 50.0


# --- Section 5, steps 2 to 4: ratios, profile, score ----------------------------------------------


def test_the_profile_counts_workloads_with_ratio_at_most_tau_over_the_base_workloads() -> None:
    taus = np.array([1.0, 2.4, 2.5, 10.0])
    rho = performance_profile({"w1": 1.0, "w2": 2.5, "w3": INF}, taus, num_base_workloads=4)
    np.testing.assert_array_equal(rho, [0.25, 0.25, 0.5, 0.5])


@bounded
@given(times_tables())
def test_scores_lie_in_the_unit_interval(times: dict) -> None:
    assert all(0.0 <= score <= 1.0 for score in benchmark_scores(times).values())


@bounded
@given(times_tables())
def test_a_submission_best_on_every_workload_scores_one(times: dict) -> None:
    workloads = next(iter(times.values()))
    best = {
        w: min((row[w] for row in times.values() if math.isfinite(row[w])), default=1.0) for w in workloads
    }
    scores = benchmark_scores({**times, "champion": best})
    assert scores["champion"] == pytest.approx(1.0, abs=1e-12)


@bounded
@given(times_tables())
def test_a_submission_that_misses_every_target_scores_zero(times: dict) -> None:
    workloads = next(iter(times.values()))
    scores = benchmark_scores({**times, "dnf": {w: INF for w in workloads}})
    assert scores["dnf"] == 0.0


@bounded
@given(times_tables(), st.integers(-30, 30))
def test_scaling_every_time_by_the_same_factor_changes_no_score(times: dict, exponent: int) -> None:
    # A power of two scales floats exactly, so every ratio and every comparison is bit-for-bit the same;
    # the known-answer test below also checks arbitrary factors, away from the grid's jump points.
    factor = 2.0**exponent
    scaled = {s: {w: t * factor for w, t in row.items()} for s, row in times.items()}
    assert benchmark_scores(scaled) == benchmark_scores(times)


@bounded
@given(times_tables(), st.data())
def test_making_a_time_faster_never_lowers_that_submissions_score(times: dict, data: st.DataObject) -> None:
    submission = data.draw(st.sampled_from(sorted(times)))
    workload = data.draw(st.sampled_from(sorted(times[submission])))
    old = times[submission][workload]
    new = data.draw(finite_times) if math.isinf(old) else old * data.draw(st.floats(0.01, 1.0))
    faster = {**times, submission: {**times[submission], workload: new}}
    assert benchmark_scores(faster)[submission] >= benchmark_scores(times)[submission]


# Known answer, worked by hand.
#
# Times (seconds; inf = missed target):      Best   4x best
#            w1      w2      w3                w1: 10    40  -> C's 41 is cut off (41 > 40)
#     A      10      22      inf               w2: 10    40
#     B      12.5    10      20                w3: 20    80
#     C      41      35      30
#
# Ratios r = t / best after the cut-off:
#     A:  1     2.2   inf
#     B:  1.25  1     1
#     C:  inf   3.5   1.5
#
# Profiles rho(tau) on [1, 4], step functions (r <= tau counts, 3 base workloads):
#     A:  1/3 on [1, 2.2),   2/3 on [2.2, 4]
#     B:  2/3 on [1, 1.25),  1   on [1.25, 4]
#     C:  0   on [1, 1.5),   1/3 on [1.5, 3.5),  2/3 on [3.5, 4]
#
# Exact integrals over [1, 4], divided by 3:
#     A: (1/3 * 1.2 + 2/3 * 1.8) / 3           = 1.6 / 3             = 8/15   = 0.5333...
#     B: (2/3 * 0.25 + 1 * 2.75) / 3           = (35/12) / 3         = 35/36  = 0.9722...
#     C: (0 * 0.5 + 1/3 * 2 + 2/3 * 0.5) / 3   = 1 / 3               = 1/3
#
# Trapezoid rule on 100 points: tau_i = 1 + i*h with h = 3/99 = 1/33. It is exact on every interval
# without a jump. A jump of height J at c inside [tau_k, tau_k + h], with a = c - tau_k, contributes
# h * (lo + hi) / 2 instead of lo * a + hi * (h - a): an error of J * (a - h/2). Here a/h is the
# fractional part of (c - 1) * 33:
#     c = 2.2:  39.6 -> a = 0.6h, J = 1/3: error +(1/3)(0.1/33)  = +1/990
#     c = 1.25:  8.25 -> a = 0.25h, J = 1/3: error -(1/3)(0.25/33) = -1/396
#     c = 1.5:  16.5 -> a = h/2: no error;   c = 3.5: 82.5 -> a = h/2: no error
# (No jump sits on or near a grid point, so rounding in the grid cannot move a step.)
# Dividing by 3:
#     A: 8/15 + 1/2970   = 0.533670033670...
#     B: 35/36 - 1/1188  = 0.971380471380...
#     C: 1/3             = 0.333333333333...
KNOWN_TIMES = {
    "A": {"w1": 10.0, "w2": 22.0, "w3": INF},
    "B": {"w1": 12.5, "w2": 10.0, "w3": 20.0},
    "C": {"w1": 41.0, "w2": 35.0, "w3": 30.0},
}
KNOWN_RATIOS = {"A": [1.0, 2.2, INF], "B": [1.25, 1.0, 1.0], "C": [INF, 3.5, 1.5]}
KNOWN_SCORES = {"A": 8 / 15 + 1 / 2970, "B": 35 / 36 - 1 / 1188, "C": 1 / 3}


def _trapezoid_score_by_hand(ratios: list[float], num_points: int = 100, max_tau: float = 4.0) -> float:
    """The score from the written rule, in plain Python: step function on the grid, trapezoid rule."""
    taus = [1.0 + (max_tau - 1.0) * i / (num_points - 1) for i in range(num_points)]
    rho = [sum(r <= tau for r in ratios) / len(ratios) for tau in taus]
    area = sum((taus[i + 1] - taus[i]) * (rho[i] + rho[i + 1]) / 2 for i in range(num_points - 1))
    return area / (max_tau - 1.0)


def test_known_answer_ratios_after_the_cutoff() -> None:
    ratios = performance_ratios(apply_cutoff(KNOWN_TIMES))
    for submission, expected in KNOWN_RATIOS.items():
        assert list(ratios[submission].values()) == pytest.approx(expected)


@pytest.mark.parametrize("factor", [1.0, 1e-3, 7.3, 1e4])
def test_known_answer_scores_for_three_submissions_on_three_workloads(factor: float) -> None:
    times = {s: {w: t * factor for w, t in row.items()} for s, row in KNOWN_TIMES.items()}
    scores = benchmark_scores(times)
    for submission, ratios in KNOWN_RATIOS.items():
        assert _trapezoid_score_by_hand(ratios) == pytest.approx(KNOWN_SCORES[submission], abs=1e-12)
        assert scores[submission] == pytest.approx(_trapezoid_score_by_hand(ratios), abs=1e-9)
        assert scores[submission] == pytest.approx(KNOWN_SCORES[submission], abs=1e-9)


# --- Ratios against a named reference submission ---------------------------------------------------


def test_ratios_against_a_reference_submission() -> None:
    times = {
        "ref": {"w1": 10.0, "w2": 20.0, "w3": INF},
        "new": {"w1": 5.0, "w2": 45.0, "w3": 30.0},
    }
    ratios = performance_ratios(times, reference="ref")
    assert ratios["ref"] == {"w1": 1.0, "w2": 1.0, "w3": INF}
    # Faster than the reference gives a ratio below 1. Where the reference missed the target, every
    # ratio is inf: there is nothing to compare with, so that workload counts for nobody.
    assert ratios["new"] == {"w1": 0.5, "w2": 2.25, "w3": INF}


def test_a_reference_keeps_the_cutoff_relative_to_the_best_submission() -> None:
    times = {"ref": {"w": 20.0}, "best": {"w": 10.0}, "slow": {"w": 45.0}}
    # slow is 2.25x the reference but 4.5x the best, so the cut-off makes it a miss.
    scores = benchmark_scores(times, reference="ref")
    assert scores == {"ref": pytest.approx(1.0), "best": pytest.approx(1.0), "slow": 0.0}


def test_a_submission_ranks_lower_against_the_best_than_against_a_slower_reference() -> None:
    times = {
        "ref": {"w1": 20.0, "w2": 20.0},
        "best": {"w1": 10.0, "w2": 10.0},
        "mid": {"w1": 30.0, "w2": 30.0},
    }
    assert benchmark_scores(times, reference="ref")["mid"] > benchmark_scores(times)["mid"]


# --- Section 5, step 5: variants (v0.5 rule) -------------------------------------------------------

BASE_OF = {"w_gelu": "w", "w_tanh": "w"}


def test_couple_variants_keeps_only_base_workloads() -> None:
    times = {"w": 10.0, "w_gelu": 12.0, "w_tanh": 15.0, "u": 7.0}
    assert couple_variants(times, BASE_OF) == {"w": 10.0, "u": 7.0}


def test_a_missed_variant_makes_its_base_workload_a_miss() -> None:
    times = {"w": 10.0, "w_gelu": 12.0, "w_tanh": INF, "u": 7.0}
    assert couple_variants(times, BASE_OF) == {"w": INF, "u": 7.0}


def test_a_variant_of_a_missed_base_does_not_set_the_bar_for_the_cutoff() -> None:
    # A missed the base workload, so its (fast) variant time counts as inf before the 4x cut-off;
    # otherwise B's variant (5 s > 4 x 1 s) would be cut off and B would lose its base workload too.
    times = {"A": {"w": INF, "w_gelu": 1.0}, "B": {"w": 10.0, "w_gelu": 5.0}}
    assert benchmark_scores(times, variants={"w_gelu": "w"}) == {"A": 0.0, "B": pytest.approx(1.0)}
    # Without the variant rule both workloads are scored, and B loses its variant to the cut-off.
    assert benchmark_scores(times) == {"A": pytest.approx(0.5), "B": pytest.approx(0.5)}


def test_with_variants_the_profile_divides_by_the_number_of_base_workloads() -> None:
    times = {
        "fast": {"w": 10.0, "w_gelu": 10.0, "w_tanh": 10.0, "u": 10.0},
        "half": {"w": 10.0, "w_gelu": 10.0, "w_tanh": INF, "u": 10.0},
    }
    assert benchmark_scores(times, variants=BASE_OF) == {
        "fast": pytest.approx(1.0),
        "half": pytest.approx(0.5),
    }


def test_base_workloads_drop_variants_from_scoring_as_in_v0_6() -> None:
    times = {"a": {"w": 10.0, "w_gelu": INF, "u": 10.0}, "b": {"w": 25.0, "w_gelu": 5.0, "u": 10.0}}
    scores = benchmark_scores(times, base_workloads=["w", "u"])
    assert scores["a"] == pytest.approx(1.0)  # its missed variant is ignored
    # b: ratio 1 on u, 2.5 on w: rho = 1/2 on [1, 2.5), 1 on [2.5, 4]; (0.5 * 1.5 + 1 * 1.5) / 3 = 0.75.
    # (2.5 lies half-way between grid points, where the trapezoid rule is exact for a step.)
    assert scores["b"] == pytest.approx(0.75)


# --- Geometric-mean speedup ------------------------------------------------------------------------


def test_speedups_replace_a_miss_with_budget_plus_one_second() -> None:
    times_a = {"w1": 10.0, "w2": INF}
    times_b = {"w1": 40.0, "w2": 50.0}
    budgets = {"w1": 100.0, "w2": 99.0}
    assert per_workload_speedups(times_a, times_b, budgets) == {"w1": 4.0, "w2": 0.5}
    assert geometric_mean_speedup(times_a, times_b, budgets) == pytest.approx(math.sqrt(2.0))


def test_two_misses_are_a_speedup_of_one() -> None:
    assert geometric_mean_speedup({"w": INF}, {"w": INF}, {"w": 60.0}) == pytest.approx(1.0)


@bounded
@given(st.lists(st.tuples(times_or_miss, times_or_miss), min_size=1, max_size=5))
def test_the_speedup_of_a_over_b_is_the_inverse_of_b_over_a(pairs: list[tuple[float, float]]) -> None:
    times_a = {f"w{i}": a for i, (a, _) in enumerate(pairs)}
    times_b = {f"w{i}": b for i, (_, b) in enumerate(pairs)}
    budgets = {w: 1e5 for w in times_a}
    forward = geometric_mean_speedup(times_a, times_b, budgets)
    assert forward * geometric_mean_speedup(times_b, times_a, budgets) == pytest.approx(1.0)


# --- Malformed input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "kwargs", "message"),
    [
        ({}, {}, "times is empty"),
        ({"a": {}}, {}, "submission 'a' has no workload times"),
        ({"a": {"w": -1.0}}, {}, r"times\['a'\]\['w'\]: a time must be > 0"),
        ({"a": {"w": math.nan}}, {}, "a time must be > 0"),
        ({"a": {"w": "fast"}}, {}, "a time must be a number"),
        ({"a": {"w": 1.0}, "b": {"v": 1.0}}, {}, "every submission needs a time"),
        ({"a": {"w": 1.0}}, {"reference": "nobody"}, "unknown reference submission 'nobody'"),
        ({"a": {"w": 1.0}}, {"max_tau": 1.0}, "max_tau must be > 1"),
        ({"a": {"w": 1.0}}, {"num_points": 1}, "num_points must be >= 2"),
        ({"a": {"w": 1.0}}, {"base_workloads": ["x"]}, "base_workloads must name some of"),
        ({"a": {"w": 1.0}}, {"variants": {"w_v": "w"}}, "needs a time for workload 'w_v'"),
        ({"a": {"w": 1.0, "v": 1.0, "x": 1.0}}, {"variants": {"v": "x", "x": "w"}}, "must map to a base"),
    ],
)
def test_malformed_input_is_a_value_error_that_says_what_is_wrong(
    times: dict, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        benchmark_scores(times, **kwargs)


def test_malformed_aggregation_and_speedup_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        study_time([])
    with pytest.raises(ValueError, match="at least one study"):
        workload_time([])
    with pytest.raises(ValueError, match="max_ratio must be >= 1"):
        apply_cutoff({"a": {"w": 1.0}}, max_ratio=0.5)
    with pytest.raises(ValueError, match="only 1 base workloads"):
        performance_profile({"w": 1.0, "w_v": 1.0}, np.array([1.0]), num_base_workloads=1)
    with pytest.raises(ValueError, match=r"no budget for workload 'w'"):
        per_workload_speedups({"w": 1.0}, {"w": 2.0}, {})
    with pytest.raises(ValueError, match="times_a has workloads"):
        per_workload_speedups({"w": 1.0}, {"u": 2.0}, {"w": 1.0, "u": 1.0})
