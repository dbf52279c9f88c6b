"""JAX-style random keys (``make``, ``fold_in``, ``split``) for frameworks without them, as AlgoPerf's
``prng`` module gives PyTorch submissions. A key is a pair of uint32. The first key comes from numpy's
SeedSequence; ``fold_in`` and ``split`` mix 64-bit words with SplitMix64's finaliser, vectorised, so the keys
of a block of steps cost one numpy call (``step_keys_block``) and are the same as one at a time, in every
process and on every platform."""

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
    return _key(_fold_in(_word(key), np.asarray([data]))[0])


def split(key: Key, num: int = 2) -> list[Key]:
    return list(_key(_split(_word(key), num)))


def step_keys_block(key: Key, first: int, count: int, num: int = 4) -> np.ndarray:
    """``split(fold_in(key, step), num)`` for steps ``first .. first + count - 1``: (count, num, 2) uint32."""
    steps = np.arange(first, first + count, dtype=np.uint64)
    return _key(_split(_fold_in(_word(key), steps), num))


def to_seed(key: Key) -> int:
    """A 31-bit integer seed for libraries that take one (torch.manual_seed, np.random.default_rng)."""
    return int(key[0] ^ (key[1] << 1)) & 0x7FFFFFFF
