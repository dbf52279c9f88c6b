"""How far two rankings agree: Kendall's tau-b and the pairs ordered differently, over the scores or workload
by workload over the times, as pure functions."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Disagreement", "WorkloadPair", "disagreements", "kendall_tau", "workload_pairs"]


def kendall_tau(ours: Mapping[str, float], theirs: Mapping[str, float]) -> float:
    """Kendall's tau-b over the names both score: +1 the same order, -1 the reverse; ties count neither
    way and shrink the denominator (tau-b). NaN with fewer than two names or when either side is all tied."""
    names = sorted(set(ours) & set(theirs))
    concordant = discordant = tied_ours = tied_theirs = 0
    for a, b in itertools.combinations(names, 2):
        sign = _sign(ours[a] - ours[b]) * _sign(theirs[a] - theirs[b])
        if ours[a] == ours[b]:
            tied_ours += 1
        if theirs[a] == theirs[b]:
            tied_theirs += 1
        concordant += sign > 0
        discordant += sign < 0
    pairs = math.comb(len(names), 2)
    denominator = math.sqrt((pairs - tied_ours) * (pairs - tied_theirs))
    return (concordant - discordant) / denominator if denominator else math.nan


@dataclass(frozen=True)
class Disagreement:
    """A pair that AlgoPerf orders ``better`` over ``worse`` and the suite does not."""

    better: str
    worse: str
    theirs_gap: float  # AlgoPerf's score of better minus worse's
    ours: tuple[float, float]  # the suite's scores of better and worse


def disagreements(
    ours: Mapping[str, float], theirs: Mapping[str, float], min_gap: float = 0.0
) -> list[Disagreement]:
    """The pairs AlgoPerf separates by more than ``min_gap`` that the suite ties or orders the other way,
    widest gap first."""
    found = []
    for a, b in itertools.combinations(sorted(set(ours) & set(theirs)), 2):
        better, worse = (a, b) if theirs[a] >= theirs[b] else (b, a)
        gap = theirs[better] - theirs[worse]
        if gap > min_gap and ours[better] <= ours[worse]:
            found.append(Disagreement(better, worse, gap, (ours[better], ours[worse])))
    return sorted(found, key=lambda d: -d.theirs_gap)


@dataclass(frozen=True)
class WorkloadPair:
    """Two members on one workload where AlgoPerf's times are both finite and differ: ``faster`` is faster
    there. ``theirs`` and ``ours`` are the two members' times, faster's first (``inf``: missed here)."""

    workload: str
    faster: str
    slower: str
    theirs: tuple[float, float]
    ours: tuple[float, float]

    @property
    def in_order(self) -> bool:
        return self.ours[0] < self.ours[1]

    @property
    def their_ratio(self) -> float:
        """How many times faster AlgoPerf's faster member was."""
        return self.theirs[1] / self.theirs[0]


def workload_pairs(
    ours: Mapping[str, Mapping[str, float]], theirs: Mapping[str, Mapping[str, float]]
) -> list[WorkloadPair]:
    """Per workload, every pair of members whose times AlgoPerf published, both finite and different, and that
    the suite does not tie (a tie, both missed included, orders nothing). ``ours`` and ``theirs``: member ->
    workload -> time; only the members and workloads both hold count."""
    found = []
    for a, b in itertools.combinations(sorted(set(ours) & set(theirs)), 2):
        for workload in sorted(set(ours[a]) & set(ours[b]) & set(theirs[a]) & set(theirs[b])):
            their_a, their_b = theirs[a][workload], theirs[b][workload]
            if not (math.isfinite(their_a) and math.isfinite(their_b)) or their_a == their_b:
                continue
            if ours[a][workload] == ours[b][workload]:
                continue
            faster, slower = (a, b) if their_a < their_b else (b, a)
            found.append(
                WorkloadPair(
                    workload,
                    faster,
                    slower,
                    (theirs[faster][workload], theirs[slower][workload]),
                    (ours[faster][workload], ours[slower][workload]),
                )
            )
    return found


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)
