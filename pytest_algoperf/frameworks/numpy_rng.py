"""JAX-style random keys (``make``, ``fold_in``, ``split``) for frameworks without them, as AlgoPerf's
``prng`` module gives PyTorch submissions. A key is a pair of uint32; derivation uses numpy's SeedSequence,
so keys are reproducible across processes and platforms."""

from __future__ import annotations

import numpy as np

Key = np.ndarray


def make_key(seed: int) -> Key:
    return np.random.SeedSequence(seed).generate_state(2)


def fold_in(key: Key, data: int) -> Key:
    return np.random.SeedSequence([*key.tolist(), data]).generate_state(2)


def split(key: Key, num: int = 2) -> list[Key]:
    states = np.random.SeedSequence(key.tolist()).generate_state(2 * num)
    return [states[2 * i : 2 * i + 2] for i in range(num)]


def to_seed(key: Key) -> int:
    """A 31-bit integer seed for libraries that take one (torch.manual_seed, np.random.default_rng)."""
    return int(key[0] ^ (key[1] << 1)) & 0x7FFFFFFF
