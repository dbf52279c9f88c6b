"""JAX-style random keys (``make``, ``fold_in``, ``split``) for frameworks without them, as AlgoPerf's
``prng`` module gives PyTorch submissions. A key is a pair of uint32; derivation uses numpy's SeedSequence,
so keys are reproducible across processes and platforms.

Each step's keys (``step_keys_block``) are derived differently, by SplitMix64's finaliser on 64-bit words,
because SeedSequence costs 15 us a step and cannot be vectorised: a block of steps then costs one numpy call.
A run's first keys (data order, initialisation) keep SeedSequence's derivation, so a seed gives the same data
and the same initial model as before; only what a step's key drives (dropout masks) follows the new keys."""

from __future__ import annotations

import numpy as np

Key = np.ndarray

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def make_key(seed: int) -> Key:
    return np.random.SeedSequence(seed).generate_state(2)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise on uint64 (wrapping arithmetic is the intent)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _word(key: Key) -> np.ndarray:
    key = np.asarray(key, dtype=np.uint32)
    return (key[..., 0].astype(np.uint64) << np.uint64(32)) | key[..., 1].astype(np.uint64)


def _key(word: np.ndarray) -> Key:
    return np.stack([(word >> np.uint64(32)).astype(np.uint32), word.astype(np.uint32)], axis=-1)


def _fold_in(word: np.ndarray, data: np.ndarray) -> np.ndarray:
    return _mix(word ^ _mix(np.asarray(data, dtype=np.uint64) * _GOLDEN + np.uint64(1)))


def _split(word: np.ndarray, num: int) -> np.ndarray:
    """Words of shape (..., num)."""
    counters = np.arange(1, num + 1, dtype=np.uint64) * _GOLDEN
    return _mix(word[..., None] + counters)


def fold_in(key: Key, data: int) -> Key:
    return np.random.SeedSequence([*key.tolist(), data]).generate_state(2)


def split(key: Key, num: int = 2) -> list[Key]:
    states = np.random.SeedSequence(key.tolist()).generate_state(2 * num)
    return [states[2 * i : 2 * i + 2] for i in range(num)]


def step_keys_block(key: Key, first: int, count: int, num: int = 4) -> np.ndarray:
    """``num`` keys for each of the steps ``first .. first + count - 1``, as (count, num, 2) uint32: a
    SplitMix64 fold-in of the step, then a split, on whole arrays."""
    steps = np.arange(first, first + count, dtype=np.uint64)
    return _key(_split(_fold_in(_word(key), steps), num))


def to_seed(key: Key) -> int:
    """A 31-bit integer seed for libraries that take one (torch.manual_seed, np.random.default_rng)."""
    return int(key[0] ^ (key[1] << 1)) & 0x7FFFFFFF
