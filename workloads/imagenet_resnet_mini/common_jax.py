"""JAX pieces shared by the two image workloads: parameter bookkeeping, the loss and jitted eval.

imagenet_vit_mini imports this module too, so the loss and the eval outputs are written once.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pytest_algoperf.frameworks.jax_adapter import JaxArrays
from pytest_algoperf.spec import ForwardPassMode

Path = tuple[str, ...]


def init_key(rng: jax.Array) -> jax.Array:
    """An RBG key for parameter initialisation, derived deterministically from the run's (threefry) key.

    XLA compiles the threefry draws of these models' initialisers in 4-7 s of CPU, an RBG key's in about
    2 s. Initialisation is setup, outside the clock, but the tests and the calibration sweeps run it often.
    """
    data = jax.random.key_data(rng) if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
    data = jnp.asarray(data, jnp.uint32).reshape(-1)[:2]
    return jax.random.wrap_key_data(jnp.concatenate([data, data ^ jnp.uint32(0x9E3779B9)]), impl="rbg")


class JaxImageClassifier(JaxArrays):
    """Mixin for a ``BaseImageWorkload`` in JAX: parameter bookkeeping, loss, jitted eval outputs.

    A subclass sets ``_param_shapes`` in ``init_model_fn`` and implements ``param_type(names)``."""

    output_layer = "head"

    def is_output_params(self, param_name: str) -> bool:
        return param_name.split("/")[0].split(".")[0] == self.output_layer

    def loss_fn(
        self,
        label_batch: jax.Array,
        logits_batch: jax.Array,
        mask_batch: jax.Array | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        one_hot = optax.smooth_labels(jax.nn.one_hot(label_batch, logits_batch.shape[-1]), label_smoothing)
        per_example = optax.softmax_cross_entropy(logits_batch, one_hot)
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = jnp.asarray(len(label_batch))
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    @cached_property
    def _eval_logits_jit(self) -> Any:
        def logits(params: Any, model_state: Any, batch: dict[str, Any]) -> jax.Array:
            return self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)[0]

        return jax.jit(logits)

    def eval_batch(self, params: Any, model_state: Any, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """The logits and labels on the host; ``summarize_eval`` computes the metrics from them in numpy."""
        logits = self._eval_logits_jit(params, model_state, {"inputs": batch["inputs"]})
        return {"logits": np.asarray(logits), "targets": np.asarray(batch["targets"])}
