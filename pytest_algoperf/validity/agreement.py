"""How far two rankings agree: Kendall's tau-b and the pairs ordered differently, as pure functions."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Disagreement", "disagreements", "kendall_tau"]


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


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)
