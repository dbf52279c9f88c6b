"""The paired throughput measurement (``gate.paired``): interleaved blocks of the candidate's and the baseline
code's steps, a median ratio with a distribution-free interval, and its false-alarm rate. Timings are never
asserted: only ratios, against the interval the measurement itself gives."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tiny import held_submission, read_results, run_tiny, write_submission, write_tiny_project

from pytest_algoperf.gate.paired import (
    MIN_PAIRS,
    PAIRS,
    binomial_tail,
    measure_paired,
    median,
    median_interval,
    ratio_estimate,
)

# ---- the interval --------------------------------------------------------------------------------------


def test_the_interval_of_15_pairs_is_the_4th_to_12th_ratio_with_96_5_percent_coverage() -> None:
    low, high, coverage = median_interval([float(i) for i in range(1, 16)])
    assert (low, high) == (4.0, 12.0)
    assert coverage == pytest.approx(1 - 2 * binomial_tail(15, 3)) == pytest.approx(0.9648, abs=1e-4)


@given(st.lists(st.floats(0.1, 10.0), min_size=1, max_size=40))
def test_the_interval_always_holds_the_median(values: list[float]) -> None:
    low, high, coverage = median_interval(values)
    assert low <= median(values) <= high
    assert 0 <= coverage <= 1


def simulated_lower_ends(
    true_ratio: float, noise: float, sessions: int = 4000, pairs: int = PAIRS
) -> np.ndarray:
    """Lower interval ends of many simulated measurements whose pair ratios scatter lognormally."""
    generator = np.random.default_rng(0)
    ratios = true_ratio * np.exp(generator.normal(0.0, noise, size=(sessions, pairs)))
    return np.array([ratio_estimate(list(row))[1] for row in ratios])


def test_unchanged_code_puts_the_lower_end_above_1_in_at_most_the_sign_tests_tail() -> None:
    """With pair ratios as likely above 1 as below, the false-alarm rate at a threshold of 1 is at most
    P(Bin(25, 1/2) <= 7) = 2.2%; at the default threshold of 1.1, with 10% noise per pair, it is ~0."""
    lower_ends = simulated_lower_ends(1.0, noise=0.1)
    assert np.mean(lower_ends > 1.0) <= binomial_tail(25, 7) + 0.007  # 3 sigma of 4000 draws
    assert np.mean(lower_ends > 1.1) < 0.001


def test_a_25_percent_slower_step_is_caught_at_a_10_percent_tolerance_despite_10_percent_noise() -> None:
    assert np.mean(simulated_lower_ends(1.25, noise=0.1) > 1.1) > 0.99


# ---- the measurement, on a fake clock ------------------------------------------------------------------


@dataclass
class FakeTrainer:
    """Each step advances a shared fake clock by ``step_sec`` (plus the clock's noise)."""

    clock: FakeClock
    step_sec: float
    outputs: tuple[()] = ()

    def step(self) -> bool:
        self.clock.advance(self.step_sec)
        return False


class FakeClock:
    def __init__(self, noise: float = 0.0) -> None:
        self.time = 0.0
        self.noise = noise
        self.generator = np.random.default_rng(1)

    def advance(self, seconds: float) -> None:
        self.time += seconds * math.exp(self.generator.normal(0.0, self.noise)) if self.noise else seconds

    def now(self) -> float:
        return self.time


def measure(baseline_sec: float, candidate_sec: float, noise: float = 0.0) -> Callable[[], object]:
    clock = FakeClock(noise)
    return lambda: measure_paired(
        lambda: FakeTrainer(clock, baseline_sec),  # type: ignore[arg-type,return-value]
        lambda: FakeTrainer(clock, candidate_sec),  # type: ignore[arg-type,return-value]
        synchronize=lambda outputs: None,
        seconds=3.0,
        now=clock.now,
    )


def test_without_noise_the_measurement_is_the_exact_ratio() -> None:
    paired = measure(0.010, 0.013)()
    assert paired is not None
    assert (paired.low, paired.ratio, paired.high) == pytest.approx((1.3, 1.3, 1.3))
    assert (paired.baseline_step_sec, paired.candidate_step_sec) == pytest.approx((0.010, 0.013))
    # Blocks are sized by the slower side's step: 3 s / 50 blocks / 13 ms = 4.6 steps.
    assert paired.steps_per_block == 5 and paired.pairs == PAIRS == 25


def test_injected_noise_widens_the_interval_around_the_true_ratio() -> None:
    """With 30% noise on every step the interval straddles 1.1 for a true ratio of 1.1: inconclusive."""
    paired = measure(0.010, 0.011, noise=0.3)()
    assert paired is not None
    assert paired.low < 1.1 < paired.high


def test_a_submission_that_ends_training_too_soon_gives_no_measurement() -> None:
    class Ending(FakeTrainer):
        def step(self) -> bool:
            super().step()
            return True

    clock = FakeClock()
    paired = measure_paired(
        lambda: Ending(clock, 0.01),  # type: ignore[arg-type,return-value]
        lambda: FakeTrainer(clock, 0.01),  # type: ignore[arg-type,return-value]
        synchronize=lambda outputs: None,
        now=clock.now,
    )
    assert paired is None and MIN_PAIRS == 6


# ---- the measurement, end to end -----------------------------------------------------------------------


def test_a_step_that_sleeps_half_as_long_again_is_measured_as_such(pytester: pytest.Pytester) -> None:
    """The baseline's steps last 10 ms, the candidate's 15 ms, each sleeping what its update left of that (the
    tiny update takes ~0.3 ms, a wake-up up to ~0.5 ms more): the true ratio lies in [1.45, 1.5]."""
    write_tiny_project(pytester)
    write_submission(pytester.path, "base", source=held_submission(0.010, busy=False))
    write_submission(pytester.path, "slower", source=held_submission(0.015, busy=False))
    result = run_tiny(
        pytester, "--algoperf-baseline-code=base", "--algoperf-paired-sec=1.5", submission="slower"
    )
    result.assert_outcomes(passed=1)
    paired = read_results(pytester)["runs"][0]["paired"]
    assert paired["low"] <= 1.5 and paired["high"] >= 1.45, paired
    assert paired["baseline_code"].endswith("base/pytorch.py")
