"""mnist in JAX/Flax: the MLP, its loss and jitted batched evaluation."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from algoperf_workloads.mnist.workload import HIDDEN_UNITS, NUM_CLASSES, BaseMnistWorkload
from pytest_algoperf.frameworks.jax_adapter import JaxArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType


class MLP(nn.Module):
    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        hidden = nn.sigmoid(nn.Dense(HIDDEN_UNITS, name="hidden")(inputs))
        return nn.Dense(NUM_CLASSES, name="output")(hidden)


class MnistWorkload(JaxArrays, BaseMnistWorkload):
    @cached_property
    def _model(self) -> MLP:
        return MLP()

    def init_model_fn(self, rng: Any) -> tuple[Any, None]:
        params = self._model.init(rng, jnp.zeros((1, self.data.num_features), jnp.float32))["params"]
        self.record_param_shapes(params)
        return params, None

    def param_type(self, names: tuple[str, ...]) -> ParameterType:
        return ParameterType.BIAS if names[-1] == "bias" else ParameterType.WEIGHT

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith("output")

    def model_fn(
        self,
        params: Any,
        augmented_and_preprocessed_input_batch: dict[str, Any],
        model_state: Any,
        mode: ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[jax.Array, Any]:
        return self._model.apply(
            {"params": params}, augmented_and_preprocessed_input_batch["inputs"]
        ), model_state

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
    def _eval_batch_jit(self) -> Any:
        def evaluate(params: Any, model_state: Any, batch: dict[str, Any]) -> dict[str, jax.Array]:
            logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
            loss = self.loss_fn(batch["targets"], logits)["summed"]
            return {"loss": loss, "correct": (logits.argmax(axis=-1) == batch["targets"]).sum()}

        return jax.jit(evaluate)

    def eval_batch(self, params: Any, model_state: Any, batch: dict[str, Any]) -> dict[str, float]:
        return {key: float(value) for key, value in self._eval_batch_jit(params, model_state, batch).items()}
