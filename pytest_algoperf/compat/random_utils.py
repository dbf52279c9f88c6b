"""AlgoPerf's ``random_utils`` (imported as ``prng``): ``PRNGKey``, ``split`` and ``fold_in``.

AlgoPerf picks JAX's or numpy's keys by its ``--framework`` flag; here a JAX array is a JAX key, and a numpy
key pair is one when the run training now is a JAX run (``active_framework``; the harness hands each step's
keys over as numpy pairs in both frameworks, see :mod:`pytest_algoperf.frameworks.step_keys`), else a
:mod:`pytest_algoperf.frameworks.numpy_rng` key; each function keeps the kind it was given.
``PRNGKey(seed)`` makes a numpy key pair, as AlgoPerf does for PyTorch, unless ``framework="jax"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_algoperf.frameworks import active_framework, numpy_rng


def _is_jax_key(rng: Any) -> bool:
    if isinstance(rng, np.ndarray):  # the harness hands JAX runs their step keys as numpy pairs too
        return active_framework() == "jax"
    return type(rng).__module__.startswith("jax")


def PRNGKey(seed: int, framework: str = "pytorch") -> Any:
    if framework == "jax":
        import jax

        return jax.random.PRNGKey(seed)
    return numpy_rng.make_key(seed)


def split(rng: Any, num: int = 2) -> Any:
    if _is_jax_key(rng):
        import jax

        return jax.random.split(rng, num)
    return numpy_rng.split(np.asarray(rng), num)


def fold_in(rng: Any, data: Any) -> Any:
    if _is_jax_key(rng):
        import jax

        return jax.random.fold_in(rng, data)
    return numpy_rng.fold_in(np.asarray(rng), int(data))
