"""Behaviour of pytest_algoperf.score.search_space: tuning_search_space.json (ALGOPERF.md section 4)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_algoperf.score.search_space import (
    SearchSpace,
    SearchSpaceError,
    load_search_space,
    parse_search_space,
    study_seed,
)

RANGES = {
    "learning_rate": {"min": 1e-5, "max": 1e-1, "scaling": "log"},
    "one_minus_beta1": {"min": 0.02, "max": 0.2, "scaling": "log"},
    "warmup_factor": {"min": 0.0, "max": 0.1, "scaling": "linear"},
    "weight_decay": {"feasible_points": [0.0, 0.01, 0.1]},
    "batch_size": {"feasible_points": [64, 128, 256]},
}
FIXED_POINTS = [
    {"learning_rate": 1e-3, "weight_decay": 0.1},
    {"learning_rate": 3e-3, "weight_decay": 0.01},
    {"learning_rate": 1e-2, "weight_decay": 0.0},
]


def write_space(tmp_path: Path, data: Any) -> Path:
    """Writes data (JSON-encoded unless it is already a string) to tmp_path/tuning_search_space.json."""
    path = tmp_path / "tuning_search_space.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def ranges(tmp_path: Path) -> SearchSpace:
    return load_search_space(write_space(tmp_path, RANGES))


# --- Dict form: quasi-random points ----------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(num_trials=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_points_stay_inside_the_ranges_and_feasible_points(num_trials: int, seed: int) -> None:
    space = parse_search_space(RANGES)
    points = space.points(num_trials, seed)
    assert len(points) == num_trials
    for point in points:
        assert set(point) == set(RANGES)
        for name in ("learning_rate", "one_minus_beta1", "warmup_factor"):
            assert RANGES[name]["min"] <= point[name] <= RANGES[name]["max"]
        assert point["weight_decay"] in RANGES["weight_decay"]["feasible_points"]
        assert point["batch_size"] in RANGES["batch_size"]["feasible_points"]


@pytest.mark.parametrize("seed", [0, 1, 12345])
@pytest.mark.parametrize("name", ["learning_rate", "one_minus_beta1"])
def test_log_scaling_is_uniform_in_log_space(ranges: SearchSpace, seed: int, name: str) -> None:
    low, high = math.log(RANGES[name]["min"]), math.log(RANGES[name]["max"])
    logs = np.array([math.log(p[name]) for p in ranges.points(256, seed)])
    quarters = np.floor((logs - low) / (high - low) * 4).clip(0, 3)
    fractions = np.bincount(quarters.astype(int), minlength=4) / len(logs)
    assert np.all((fractions >= 0.2) & (fractions <= 0.3)), fractions


def test_linear_scaling_is_uniform(ranges: SearchSpace) -> None:
    values = np.array([p["warmup_factor"] for p in ranges.points(256, seed=7)])
    fractions = np.histogram(values, bins=4, range=(0.0, 0.1))[0] / len(values)
    assert np.all((fractions >= 0.2) & (fractions <= 0.3)), fractions


def test_points_are_quasi_random_each_of_16_points_in_its_own_sixteenth() -> None:
    # The first dimension of a Halton sequence is base 2: any 2^k consecutive points from the start fill
    # the 2^k equal sub-intervals one each, which independent random draws almost never do.
    space = parse_search_space({"x": {"min": 0.0, "max": 1.0, "scaling": "linear"}})
    for seed in range(5):
        cells = sorted(int(p["x"] * 16) for p in space.points(16, seed))
        assert cells == list(range(16))


def test_the_same_seed_gives_the_same_points(ranges: SearchSpace) -> None:
    assert ranges.points(5, seed=3) == ranges.points(5, seed=3)


def test_a_longer_study_extends_a_shorter_one_with_the_same_seed(ranges: SearchSpace) -> None:
    assert ranges.points(8, seed=3)[:5] == ranges.points(5, seed=3)


def test_studies_get_different_points(ranges: SearchSpace) -> None:
    # The reference code hands every study the same points; here each study has its own seed.
    seeds = [study_seed(session_seed=2024, study=s) for s in range(3)]
    studies = [ranges.points(5, seed) for seed in seeds]
    learning_rates = [tuple(p["learning_rate"] for p in study) for study in studies]
    assert len(set(learning_rates)) == 3
    assert all(len(set(rates)) == 5 for rates in learning_rates)


def test_study_seeds_are_reproducible_and_depend_on_session_and_study() -> None:
    seeds = {(session, study): study_seed(session, study) for session in (0, 1, 2024) for study in range(3)}
    assert len(set(seeds.values())) == len(seeds)
    assert all(study_seed(session, study) == seed for (session, study), seed in seeds.items())
    with pytest.raises(ValueError, match=">= 0"):
        study_seed(-1, 0)


def test_feasible_points_yield_only_listed_values_and_keep_integers(ranges: SearchSpace) -> None:
    points = ranges.points(30, seed=5)
    batch_sizes = [p["batch_size"] for p in points]
    assert set(batch_sizes) == {64, 128, 256}  # every listed value shows up, and nothing else
    assert all(type(b) is int for b in batch_sizes)
    assert {p["weight_decay"] for p in points} == {0.0, 0.01, 0.1}


def test_points_are_plain_json_serialisable_values(ranges: SearchSpace) -> None:
    points = ranges.points(3, seed=0)
    assert json.loads(json.dumps(points)) == points
    assert all(type(p["learning_rate"]) is float for p in points)


def test_first_point_is_the_midpoint_geometric_for_log_scaling(ranges: SearchSpace) -> None:
    first = ranges.first_point()
    assert first["learning_rate"] == pytest.approx(math.sqrt(1e-5 * 1e-1))  # 1e-3
    assert first["one_minus_beta1"] == pytest.approx(math.sqrt(0.02 * 0.2))
    assert first["warmup_factor"] == pytest.approx(0.05)
    assert first["weight_decay"] == 0.01  # middle feasible point, index len // 2
    assert first["batch_size"] == 128


# --- List form: fixed points in order --------------------------------------------------------------


def test_fixed_points_are_taken_in_order_whatever_the_seed(tmp_path: Path) -> None:
    space = load_search_space(write_space(tmp_path, FIXED_POINTS))
    assert space.points(2, seed=0) == FIXED_POINTS[:2]
    assert space.points(3, seed=99) == FIXED_POINTS
    assert space.first_point() == FIXED_POINTS[0]


def test_asking_for_more_trials_than_fixed_points_is_an_error(tmp_path: Path) -> None:
    space = load_search_space(write_space(tmp_path, FIXED_POINTS))
    with pytest.raises(
        SearchSpaceError, match=r"tuning_search_space\.json: the list has only 3 fixed points"
    ):
        space.points(5, seed=0)


def test_returned_points_are_copies(tmp_path: Path) -> None:
    space = load_search_space(write_space(tmp_path, FIXED_POINTS))
    space.points(1, seed=0)[0]["learning_rate"] = 123.0
    assert space.first_point() == FIXED_POINTS[0]


# --- Malformed files -------------------------------------------------------------------------------

LR_LOG = {"min": 1e-4, "max": 1e-2, "scaling": "log"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            {"learning_rate": {"min": 1e-2, "max": 1e-3, "scaling": "log"}},
            "'learning_rate' has min 0.01 greater than max 0.001; swap them",
        ),
        (
            {"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "exp"}},
            "'learning_rate' 'scaling' must be 'log' or 'linear', got 'exp'",
        ),
        (
            {"weight_decay": {"min": 0.0, "max": 0.1, "scaling": "log"}},
            "'weight_decay' log scaling needs min > 0",
        ),
        ({"learning_rate": {"min": 1e-4, "scaling": "log"}}, "'learning_rate' is missing 'max'"),
        ({"learning_rate": {"min": "small", "max": 1e-2, "scaling": "log"}}, "'min' must be a finite number"),
        ({"learning_rate": {**LR_LOG, "step": 2}}, "'learning_rate' has unknown field(s) ['step']"),
        ({"learning_rate": 1e-3}, "'learning_rate' must be an object"),
        ({"beta1": {"feasible_points": []}}, "'beta1' 'feasible_points' must be a non-empty list"),
        ({"beta1": {"feasible_points": [0.9], "min": 0.8}}, "'beta1' mixes feasible_points with min/max"),
        ({"learning-rate": LR_LOG}, "'learning-rate' is not a valid hyperparameter name"),
        ({}, "defines no hyperparameters"),
        (
            [{"learning_rate": 1e-3}, {"learning_rate": 1e-2}, 0.1],
            "a fixed point at index 2 is not an object",
        ),
        ([{"learning_rate": 1e-3}, {}], "a fixed point at index 1 is an empty object"),
        ([], "the list of fixed points is empty"),
        ("3", "the top level must be an object of ranges"),
        ('{"learning_rate": {"min": 1e-4,', "not valid JSON (line 1"),
    ],
)
def test_a_malformed_file_names_the_file_and_the_field(tmp_path: Path, content: Any, expected: str) -> None:
    path = write_space(tmp_path, content)
    with pytest.raises(SearchSpaceError) as excinfo:
        load_search_space(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: ")
    assert "tuning_search_space.json" in message
    assert expected in message


def test_a_missing_file_names_the_path_it_looked_for(tmp_path: Path) -> None:
    path = tmp_path / "submission" / "tuning_search_space.json"
    with pytest.raises(SearchSpaceError, match="no such file") as excinfo:
        load_search_space(path)
    assert str(path) in str(excinfo.value)


def test_search_space_errors_are_value_errors() -> None:
    assert issubclass(SearchSpaceError, ValueError)
