"""Learning-rate schedules shared by the PyTorch baselines, and the numpy random keys of the PyTorch side."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pytest_algoperf.frameworks import numpy_rng
from pytest_algoperf.schedules import warmup_cosine_factor

optax = pytest.importorskip("optax")


@pytest.mark.parametrize(("warmup", "decay"), [(0, 10), (1, 10), (5, 50), (10, 11), (50, 200), (3, 4)])
def test_warmup_cosine_factor_matches_optax_at_every_step(warmup: int, decay: int) -> None:
    """The PyTorch AdamW baseline and the JAX one (optax) follow the same schedule, step for step."""
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=1.0, warmup_steps=warmup, decay_steps=decay, end_value=0.0
    )
    steps = range(decay + 11)
    ours = [warmup_cosine_factor(step, warmup, decay) for step in steps]
    theirs = [float(schedule(step)) for step in steps]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_warmup_cosine_factor_rises_linearly_peaks_at_warmup_then_decays_to_zero() -> None:
    factors = [warmup_cosine_factor(step, 4, 12) for step in range(16)]
    assert factors[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(a > b for a, b in itertools.pairwise(factors[4:13]))
    assert factors[12:] == pytest.approx([0.0] * 4, abs=1e-12)


def test_keys_are_deterministic_pairs_of_uint32() -> None:
    key = numpy_rng.make_key(42)
    assert key.shape == (2,) and key.dtype == np.uint32
    np.testing.assert_array_equal(key, numpy_rng.make_key(42))
    assert not np.array_equal(key, numpy_rng.make_key(43))


def test_fold_in_is_deterministic_and_distinct_per_step() -> None:
    key = numpy_rng.make_key(0)
    folded = [tuple(numpy_rng.fold_in(key, step)) for step in range(1000)]
    assert len(set(folded)) == 1000
    assert tuple(key) not in folded
    assert folded == [tuple(numpy_rng.fold_in(numpy_rng.make_key(0), step)) for step in range(1000)]


def test_split_gives_distinct_deterministic_keys() -> None:
    key = numpy_rng.make_key(7)
    keys = numpy_rng.split(key, 4)
    assert len(keys) == 4 and all(k.shape == (2,) for k in keys)
    assert len({tuple(k) for k in keys} | {tuple(key)}) == 5
    np.testing.assert_array_equal(np.stack(keys), np.stack(numpy_rng.split(numpy_rng.make_key(7), 4)))
    assert len({tuple(k) for k in numpy_rng.split(key)}) == 2  # two keys by default


def test_split_of_distinct_steps_gives_distinct_keys() -> None:
    """The loop's ``split(fold_in(rng, step), 4)``: no key repeats across steps or within one."""
    rng = numpy_rng.make_key(0)
    keys = [tuple(k) for step in range(250) for k in numpy_rng.split(numpy_rng.fold_in(rng, step), 4)]
    assert len(set(keys)) == len(keys) == 1000


def test_to_seed_is_a_31_bit_integer_that_follows_the_key() -> None:
    seeds = {numpy_rng.to_seed(numpy_rng.make_key(i)) for i in range(200)}
    assert len(seeds) == 200
    assert all(isinstance(seed, int) and 0 <= seed < 2**31 for seed in seeds)
