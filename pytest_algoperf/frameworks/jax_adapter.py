"""JAX: the clock blocks on the step's outputs; devices are chosen with ``jax.default_device``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class JaxAdapter:
    name = "jax"

    def select_device(self, requested: str) -> str:
        has_gpu = any(d.platform == "gpu" for d in jax.devices()) if jax.default_backend() != "cpu" else False
        if requested == "auto":
            return "cuda" if has_gpu else "cpu"
        if requested == "cuda" and not has_gpu:
            raise ValueError("--algoperf-device=cuda, but JAX sees no GPU (jax.devices() has none)")
        return requested

    def activate(self, device: str, threads: int | None = None) -> None:
        # XLA's thread limit is set once in XLA_FLAGS before its backend starts (pytest_algoperf.threads).
        platform = "gpu" if device == "cuda" else "cpu"
        jax.config.update("jax_default_device", jax.devices(platform)[0])

    def make_rng(self, seed: int) -> Any:
        return jax.random.PRNGKey(seed)

    def fold_in(self, rng: Any, data: int) -> Any:
        return jax.random.fold_in(rng, data)

    def split(self, rng: Any, num: int) -> list[Any]:
        return list(jax.random.split(rng, num))

    def synchronize(self, outputs: Any) -> None:
        jax.block_until_ready(outputs)

    def versions(self) -> dict[str, str]:
        import flax
        import optax

        return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__}


ADAPTER = JaxAdapter()


class JaxArrays:
    """Mixin for an ``ArrayWorkload``: numpy arrays become arrays on JAX's default device."""

    def to_device(self, array: np.ndarray) -> jax.Array:
        return jnp.asarray(array)
