"""The tuning rulesets (ALGOPERF.md section 4): which hyperparameters each (study, trial) run gets.

External tuning: every study draws its own trials from the submission's search space. A dict space is
sampled by a Halton sequence scrambled with a per-study seed derived from the session seed, so studies are
independent and reproducible (the reference code gives every study the same points; we do not). A list of
fixed points is a set of published configurations: as in AlgoPerf, where each study is one run of the
submission runner over the same list, every study takes its first ``trials`` points, and studies differ by
their seeds. So a list of five points runs AlgoPerf's 3 studies x 5 trials.

Self-tuning: no search space; ``hyperparameters`` is None, one run per study, 1.5x the budget.
"""

from __future__ import annotations

import collections
import math
from typing import Any

from pytest_algoperf.score.search_space import SearchSpace, study_seed

RULESETS = ("external", "self")
SELF_TUNING_BUDGET_FACTOR = 1.5


def budget_factor(ruleset: str) -> float:
    return SELF_TUNING_BUDGET_FACTOR if ruleset == "self" else 1.0


def step_cap(step_hint: int, ruleset: str) -> int:
    """AlgoPerf's scoring runs stop at ``--max_global_steps``, which its workload metadata sets to step_hint
    under external tuning and scales with the budget under self-tuning (3x steps for v0.5's 3x budget)."""
    return math.ceil(step_hint * budget_factor(ruleset))


def trials_per_study(ruleset: str, trials: int) -> int:
    return 1 if ruleset == "self" else trials


def study_points(
    space: SearchSpace, studies: int, trials: int, session_seed: int
) -> list[list[dict[str, Any]]]:
    """``points[study][trial]``: the hyperparameter point of every external-tuning run."""
    if space.fixed_points:
        return [space.points(trials, seed=0) for _ in range(studies)]
    return [space.points(trials, seed=study_seed(session_seed, s)) for s in range(studies)]


def as_hyperparameters(point: dict[str, Any] | None) -> Any:
    """The namedtuple a submission receives (``hyperparameters.learning_rate``), or None for self-tuning."""
    if point is None:
        return None
    return collections.namedtuple("Hyperparameters", sorted(point))(**point)
