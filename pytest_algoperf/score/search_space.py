"""Hyperparameter search spaces of the external-tuning ruleset (ALGOPERF.md section 4).

``tuning_search_space.json`` is either a dict ``{name: {"min", "max", "scaling"}}`` /
``{name: {"feasible_points": [...]}}`` sampled quasi-randomly, or a list of fixed points used in order.

The quasi-random points come from SciPy's scrambled Halton sequence (``scipy.stats.qmc.Halton``, random
digit permutations, seeded), as AlgoPerf's reference samples a Halton sequence too. Unlike the reference
code, which gives every study the same points, each study should pass its own seed (``study_seed``), so
studies are independent yet reproducible from one session seed.
"""

from __future__ import annotations

import json
import keyword
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc

FILE_NAME = "tuning_search_space.json"
_RANGE_FIELDS = ("min", "max", "scaling")
_EXAMPLE = '{"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"}}'


class SearchSpaceError(ValueError):
    """A missing or malformed tuning_search_space.json; the message names the file and the field."""


@dataclass(frozen=True)
class Hyperparameter:
    """One dimension of a dict-form search space: a log or linear range, or a list of feasible points."""

    name: str
    scaling: str  # "log", "linear" or "feasible"
    low: float = 0.0
    high: float = 0.0
    feasible_points: tuple[Any, ...] = ()

    def value_at(self, u: float) -> Any:
        """Maps u in [0, 1) to a value: log/linear interpolation, or feasible point floor(u * n)."""
        if self.scaling == "feasible":
            n = len(self.feasible_points)
            return self.feasible_points[min(int(u * n), n - 1)]
        if self.scaling == "log":
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return float(min(max(value, self.low), self.high))


@dataclass(frozen=True)
class SearchSpace:
    """A parsed search space: ``hyperparameters`` (dict form, sorted by name) or ``fixed_points`` (list)."""

    hyperparameters: tuple[Hyperparameter, ...] = ()
    fixed_points: tuple[dict[str, Any], ...] = ()
    source: str = FILE_NAME

    def points(self, num_trials: int, seed: int) -> list[dict[str, Any]]:
        """The hyperparameter points of one study's ``num_trials`` trials.

        List form: the first ``num_trials`` fixed points in order (``seed`` is unused). Dict form: the
        first ``num_trials`` points of the Halton sequence scrambled by ``seed``, dimensions in sorted
        name order; a longer study extends a shorter one with the same seed.
        """
        if num_trials < 1:
            raise ValueError(f"num_trials must be >= 1, got {num_trials}")
        if self.fixed_points:
            if num_trials > len(self.fixed_points):
                raise SearchSpaceError(
                    f"{self.source}: the list has only {len(self.fixed_points)} fixed points but "
                    f"{num_trials} trials were requested; add points to the list or run fewer trials"
                )
            return [dict(p) for p in self.fixed_points[:num_trials]]
        unit = scrambled_halton(num_trials, len(self.hyperparameters), seed)
        return [
            {h.name: h.value_at(float(u)) for h, u in zip(self.hyperparameters, row, strict=True)}
            for row in unit
        ]

    def first_point(self) -> dict[str, Any]:
        """The tuned default: the first fixed point, or, for the dict form, every dimension at u = 0.5.

        That is the midpoint of a linear range, the geometric midpoint sqrt(min * max) of a log range and
        the middle feasible point (index len // 2).
        """
        if self.fixed_points:
            return dict(self.fixed_points[0])
        return {h.name: h.value_at(0.5) for h in self.hyperparameters}


def scrambled_halton(num_points: int, num_dims: int, seed: int) -> np.ndarray:
    """Points 0..num_points-1 of a scrambled Halton sequence, shape (n, d), in [0, 1)."""
    return qmc.Halton(d=num_dims, scramble=True, seed=np.random.default_rng(seed)).random(num_points)


def study_seed(session_seed: int, study: int) -> int:
    """An independent, reproducible seed for one study, derived from the session seed."""
    if session_seed < 0 or study < 0:
        raise ValueError(f"session_seed and study must be >= 0, got {session_seed} and {study}")
    return int(np.random.SeedSequence([session_seed, study]).generate_state(1)[0])


def _check_name(name: str, source: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise SearchSpaceError(
            f"{source}: {name!r} is not a valid hyperparameter name; submissions read it as an attribute "
            "(hyperparameters.<name>), so use letters, digits and underscores, not starting with '_'"
        )


def _number(spec: dict[str, Any], field: str, name: str, source: str) -> float:
    value = spec[field]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SearchSpaceError(f"{source}: {name!r} {field!r} must be a finite number, got {value!r}")
    return float(value)


def _parse_hyperparameter(name: str, spec: Any, source: str) -> Hyperparameter:
    _check_name(name, source)
    if not isinstance(spec, dict):
        raise SearchSpaceError(
            f'{source}: {name!r} must be an object such as {{"min": 1e-4, "max": 1e-2, "scaling": "log"}} '
            f'or {{"feasible_points": [...]}}, got {spec!r}'
        )
    unknown = sorted(set(spec) - {*_RANGE_FIELDS, "feasible_points"})
    if unknown:
        raise SearchSpaceError(
            f"{source}: {name!r} has unknown field(s) {unknown}; "
            "allowed: min, max and scaling, or feasible_points"
        )
    if "feasible_points" in spec:
        points = spec["feasible_points"]
        if len(spec) > 1:
            raise SearchSpaceError(f"{source}: {name!r} mixes feasible_points with min/max/scaling; use one")
        if not isinstance(points, list) or not points:
            raise SearchSpaceError(
                f"{source}: {name!r} 'feasible_points' must be a non-empty list, got {points!r}"
            )
        return Hyperparameter(name, "feasible", feasible_points=tuple(points))
    for field in _RANGE_FIELDS:
        if field not in spec:
            raise SearchSpaceError(
                f"{source}: {name!r} is missing {field!r}; give min, max and scaling, or feasible_points"
            )
    low, high = (_number(spec, field, name, source) for field in ("min", "max"))
    scaling = spec["scaling"]
    if scaling not in ("log", "linear"):
        raise SearchSpaceError(f"{source}: {name!r} 'scaling' must be 'log' or 'linear', got {scaling!r}")
    if low > high:
        raise SearchSpaceError(f"{source}: {name!r} has min {low!r} greater than max {high!r}; swap them")
    if scaling == "log" and low <= 0:
        raise SearchSpaceError(
            f"{source}: {name!r} log scaling needs min > 0, got min {low!r}; use a positive min or 'linear'"
        )
    return Hyperparameter(name, scaling, low, high)


def parse_search_space(data: Any, source: str = FILE_NAME) -> SearchSpace:
    """Builds a SearchSpace from decoded JSON; ``source`` names the file in error messages."""
    if isinstance(data, dict):
        if not data:
            raise SearchSpaceError(f"{source}: defines no hyperparameters; add one, e.g. {_EXAMPLE}")
        params = tuple(_parse_hyperparameter(n, data[n], source) for n in sorted(data))
        return SearchSpace(hyperparameters=params, source=source)
    if isinstance(data, list):
        if not data:
            raise SearchSpaceError(
                f'{source}: the list of fixed points is empty; add e.g. {{"learning_rate": 1e-3}}'
            )
        for i, point in enumerate(data):
            if not isinstance(point, dict) or not point:
                problem = "is an empty object" if point == {} else f"is not an object (got {point!r})"
                raise SearchSpaceError(
                    f"{source}: a fixed point at index {i} {problem}; "
                    'write each point as {"name": value, ...}'
                )
            for name in point:
                _check_name(name, source)
        return SearchSpace(fixed_points=tuple(dict(p) for p in data), source=source)
    raise SearchSpaceError(
        f"{source}: the top level must be an object of ranges, e.g. {_EXAMPLE}, or a list of fixed points; "
        f"got {type(data).__name__}"
    )


def load_search_space(path: Path | str) -> SearchSpace:
    """Reads and validates a tuning_search_space.json; raises SearchSpaceError saying what to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SearchSpaceError(
            f"{path}: no such file; write a {FILE_NAME} there with ranges, e.g. {_EXAMPLE}, "
            "or a list of fixed points"
        ) from None
    except OSError as exc:
        raise SearchSpaceError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SearchSpaceError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return parse_search_space(data, source=str(path))
