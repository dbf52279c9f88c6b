"""Throughput, paired: the candidate's and the baseline code's step time, measured interleaved.

Two stored times from different moments of a shared machine differ by whatever else ran meanwhile (up to
41% on this project's 2-core machine). Measured in the same process, in short alternating blocks, both see the
same machine state, and their ratio keeps only what the code changed. The design follows the A/B benchmark
tools that interleave their measurements (asv's ``continuous``, ``hyperfine`` with alternating runs):

1. Two trainers start from fresh states (same seed, model init, optimizer init, input queue): one runs the
   baseline's code, one the candidate's. Each takes ``WARMUP_STEPS`` untimed steps first (JAX compiles, caches
   fill).
2. Blocks of ``k`` steps alternate in ABBA order (A B, B A, A B ...), so a drift in machine speed over the
   measurement weighs on both alike. ``k`` makes a block last about ``seconds / (2 x pairs)``; every block
   ends with the accelerator synchronised.
3. Each pair gives a ratio r_i = (candidate block time) / (baseline block time). The estimate is their
   median, and its confidence interval is distribution-free: the order statistics [r_(j), r_(n+1-j)] with the
   largest j whose binomial tail P(Bin(n, 1/2) < j) is at most (1 - confidence) / 2 (the sign test's
   interval).

The gate calls a throughput regression only when the whole interval lies above 1 + tolerance, and
inconclusive when it straddles it. False alarms: if the code did not change, each pair's ratio is as likely to
fall above 1 as below (the blocks are exchangeable), so the interval's lower end exceeds 1 with probability at
most P(Bin(n, 1/2) < j) (2.2% for the default 25 pairs), and exceeds 1 + tolerance far more rarely still.
The sign test assumes only independent pairs with a common median, not normal noise: a neighbour's burst
that slows a few blocks moves the median little. Power, simulated with lognormal noise per pair: a true ratio
of 1.25 puts the interval above 1.1 in 99.8% of measurements with 10% noise, 69% with 20% (25 pairs; 15 pairs
give 94% and 43%).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pytest_algoperf.loop import Trainer

PAIRS = 25
CONFIDENCE = 0.95
WARMUP_STEPS = 3
DEFAULT_SECONDS = 6.0
MIN_PAIRS = 6


@dataclass(frozen=True)
class PairedMeasurement:
    baseline_step_sec: float  # median block time per step of the baseline's code
    candidate_step_sec: float
    ratio: float  # median over pairs of candidate / baseline block time
    low: float
    high: float
    confidence: float  # the interval's exact coverage
    pairs: int
    steps_per_block: int
    baseline_code: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PairedMeasurement | None:
        """None when nothing was measured, or the measurement failed (``{"error": ...}``)."""
        if data is None or "error" in data:
            return None
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def binomial_tail(n: int, k: int) -> float:
    """P(Bin(n, 1/2) <= k)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Distribution-free interval for the median: (low, high, exact coverage). Needs at least 6 values for
    95%; with fewer the interval is the whole range, with its (lower) coverage."""
    ordered = sorted(values)
    n = len(ordered)
    j = 1  # 1-based rank of the lower end
    while j + 1 <= n // 2 and binomial_tail(n, j) <= (1 - confidence) / 2:
        j += 1
    coverage = 1 - 2 * binomial_tail(n, j - 1)
    return ordered[j - 1], ordered[n - j], coverage


def ratio_estimate(
    pair_ratios: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float, float]:
    """Median ratio and its interval: (ratio, low, high, coverage)."""
    low, high, coverage = median_interval(pair_ratios, confidence)
    return median(pair_ratios), low, high, coverage


def measure_paired(
    start_baseline: Callable[[], Trainer],
    start_candidate: Callable[[], Trainer],
    synchronize: Callable[[Any], None],
    seconds: float = DEFAULT_SECONDS,
    pairs: int = PAIRS,
    baseline_code: str = "",
    now: Callable[[], float] = time.perf_counter,
) -> PairedMeasurement | None:
    """Interleave blocks of steps of two fresh trainers; None when a submission ends training too early to
    give ``MIN_PAIRS`` pairs."""
    baseline, candidate = start_baseline(), start_candidate()
    timer = _BlockTimer(synchronize, now)
    block_times: list[tuple[float, float]] = []  # (baseline, candidate) seconds per pair
    steps_per_block = 1
    try:
        for trainer in (baseline, candidate):
            timer.run(trainer, WARMUP_STEPS)
        probe = max(timer.run(baseline, 2), timer.run(candidate, 2)) / 2
        steps_per_block = max(1, round(seconds / (2 * pairs) / max(probe, 1e-6)))
        for pair in range(pairs):
            block_times.append(timer.pair(baseline, candidate, steps_per_block, baseline_first=pair % 2 == 0))
    except _TrainingEnded:
        pass
    if len(block_times) < MIN_PAIRS:
        return None
    ratio, low, high, coverage = ratio_estimate([c / b for b, c in block_times])
    return PairedMeasurement(
        baseline_step_sec=median([b for b, _ in block_times]) / steps_per_block,
        candidate_step_sec=median([c for _, c in block_times]) / steps_per_block,
        ratio=ratio,
        low=low,
        high=high,
        confidence=coverage,
        pairs=len(block_times),
        steps_per_block=steps_per_block,
        baseline_code=baseline_code,
    )


class _TrainingEnded(Exception):
    """A submission raised TrainingCompleteError during the measurement."""


class _BlockTimer:
    def __init__(self, synchronize: Callable[[Any], None], now: Callable[[], float]) -> None:
        self.synchronize = synchronize
        self.now = now

    def run(self, trainer: Trainer, steps: int) -> float:
        """Seconds ``steps`` steps took, the accelerator synchronised at both ends."""
        self.synchronize(trainer.outputs)
        begin = self.now()
        for _ in range(steps):
            if trainer.step():
                raise _TrainingEnded
        self.synchronize(trainer.outputs)
        return self.now() - begin

    def pair(
        self, baseline: Trainer, candidate: Trainer, steps: int, baseline_first: bool
    ) -> tuple[float, float]:
        """One block of each, in the given order; returns (baseline seconds, candidate seconds)."""
        if baseline_first:
            return self.run(baseline, steps), self.run(candidate, steps)
        candidate_time = self.run(candidate, steps)
        return self.run(baseline, steps), candidate_time
