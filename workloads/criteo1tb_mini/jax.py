"""criteo1tb_mini in JAX/Flax: DLRM-small, sigmoid cross-entropy, and jitted evaluation returning logits."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from algoperf_workloads.criteo1tb_mini.workload import (
    LAYER_NORM_EPSILON,
    BaseCriteo1TbMiniWorkload,
    EmbedInitVariant,
    LayerNormVariant,
    ResidualVariant,
    embedding_offsets,
)
from pytest_algoperf.frameworks.jax_adapter import JaxArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType


def numpy_initializer(draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]) -> Any:
    """A Flax initializer that draws with numpy, seeded from the (concrete) JAX key, so ``init_model_fn``
    runs eagerly without XLA: compiling a ``jax.random`` op per parameter shape took ~12 s of CPU for the
    42 parameters here, numpy takes milliseconds. It cannot run under ``jit`` (the key must be concrete)."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        raw = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        try:
            words = np.asarray(raw, dtype=np.uint32).ravel().tolist()
        except jax.errors.TracerArrayConversionError:
            # Flax's apply checks each parameter's shape against jax.eval_shape(init): only the shape counts.
            return jnp.zeros(shape, dtype)
        return jnp.asarray(draw(np.random.default_rng(words), tuple(shape)), dtype)

    return init


# AlgoPerf's DLRM-small initialisation (its models.py, both frameworks), shared with pytorch.py's.
def glorot_uniform() -> Any:
    return numpy_initializer(
        lambda g, shape: g.uniform(-1.0, 1.0, shape) * math.sqrt(6.0 / (shape[0] + shape[1]))
    )


def normal(stddev_of_shape: Callable[[tuple[int, ...]], float]) -> Any:
    return numpy_initializer(lambda g, shape: g.normal(0.0, stddev_of_shape(shape), shape))


def scaled_uniform(scale: float) -> Any:
    """Embeddings: uniform in [0, 1) times ``scale`` (AlgoPerf: 1 / sqrt(vocabulary size))."""
    return numpy_initializer(lambda g, shape: g.random(shape) * scale)


def fan_out_bias_stddev(shape: tuple[int, ...]) -> float:
    return math.sqrt(1.0 / shape[-1])


def top_kernel_stddev(shape: tuple[int, ...]) -> float:
    return math.sqrt(2.0 / (shape[0] + shape[1]))


def dot_interact(stacked: jax.Array) -> jax.Array:
    """All pairwise dot products of the vectors in ``stacked`` (batch, n, d): the upper triangle with the
    diagonal, row by row, as AlgoPerf's ``dot_interact``."""
    num_vectors = stacked.shape[1]
    rows, cols = np.triu_indices(num_vectors)
    products = jnp.einsum("bnd,bmd->bnm", stacked, stacked)
    return products.reshape(stacked.shape[0], -1)[:, rows * num_vectors + cols]


def uses_dropout(dropout_rate: Any) -> bool:
    """False for None or a Python zero; True for a traced rate (a submission may jit it as an argument),
    which may still be zero at run time: then the mask keeps everything and the output is unchanged."""
    return dropout_rate is not None and not (isinstance(dropout_rate, int | float) and dropout_rate == 0)


def dropout(inputs: jax.Array, rate: Any, rng: jax.Array) -> jax.Array:
    """Inverted dropout whose rate may be a traced value (Flax's ``nn.Dropout`` needs a Python number)."""
    keep = 1.0 - rate
    return jnp.where(jax.random.bernoulli(rng, keep, inputs.shape), inputs / keep, 0.0)


class DlrmSmall(nn.Module):
    """pytorch.py's DlrmSmall in Flax, with the same parameter names and the same variant switches."""

    num_dense_features: int
    vocab_sizes: Sequence[int]
    embed_dim: int
    bottom_mlp_dims: Sequence[int]
    top_mlp_dims: Sequence[int]
    use_layer_norm: bool = False
    use_resnet: bool = False
    embedding_init_multiplier: float | None = None

    def norm(self, name: str, x: jax.Array) -> jax.Array:
        return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, name=name)(x) if self.use_layer_norm else x

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool, dropout_rate: Any = None) -> jax.Array:
        dense = inputs[:, : self.num_dense_features]
        ids = inputs[:, self.num_dense_features :].astype(jnp.int32)
        for index, width in enumerate(self.bottom_mlp_dims):
            branch = nn.Dense(
                width,
                kernel_init=glorot_uniform(),
                bias_init=normal(fan_out_bias_stddev),
                name=f"bottom_{index}",
            )(dense)
            branch = nn.relu(branch)
            dense = dense + branch if self.use_resnet and index > 0 else branch
            dense = self.norm(f"bottom_norm_{index}", dense)
        multiplier = self.embedding_init_multiplier
        total = sum(self.vocab_sizes)
        scale = 1.0 / math.sqrt(total) if multiplier is None else multiplier
        table = self.param("embedding", scaled_uniform(scale), (total, self.embed_dim))
        embedded = table[ids + embedding_offsets(self.vocab_sizes)]  # (batch, 26, embed_dim)
        embedded = self.norm("embed_norm", embedded)
        if self.use_resnet:  # DLRMResNet: no interactions, the flattened embeddings join the bottom output
            hidden = jnp.concatenate([dense, embedded.reshape(embedded.shape[0], -1)], axis=1)
        else:
            hidden = jnp.concatenate(
                [dense, dot_interact(jnp.concatenate([dense[:, None], embedded], axis=1))], axis=1
            )
        last = len(self.top_mlp_dims) - 1
        for index, width in enumerate(self.top_mlp_dims):
            branch = nn.Dense(
                width,
                kernel_init=normal(top_kernel_stddev),
                bias_init=normal(fan_out_bias_stddev),
                name=f"top_{index}",
            )(hidden)
            if index < last:
                branch = self.norm(f"top_norm_{index}", nn.relu(branch))
            if index == last - 1 and train and uses_dropout(dropout_rate):
                branch = dropout(branch, dropout_rate, self.make_rng("dropout"))
            hidden = hidden + branch if self.use_resnet and 0 < index < last else branch
        return hidden


class Criteo1TbMiniWorkload(JaxArrays, BaseCriteo1TbMiniWorkload):
    @cached_property
    def _model(self) -> DlrmSmall:
        return DlrmSmall(
            self.num_dense_features,
            tuple(self.vocab_sizes),
            self.embed_dim,
            tuple(self.bottom_mlp_dims),
            tuple(self.top_mlp_dims),
            self.use_layer_norm,
            self.use_resnet,
            self.embedding_init_multiplier,
        )

    def init_model_fn(self, rng: Any) -> tuple[Any, None]:
        inputs = jnp.zeros((2, self.num_dense_features + len(self.vocab_sizes)), jnp.float32)
        params = self._model.init(rng, inputs, train=False)["params"]  # eager: see numpy_initializer
        self.record_param_shapes(params)
        return params, None

    def param_type(self, names: tuple[str, ...]) -> ParameterType:
        if names[-1] == "embedding":
            return ParameterType.EMBEDDING
        if "norm" in names[0]:
            return ParameterType.LAYER_NORM_SCALE if names[-1] == "scale" else ParameterType.LAYER_NORM_BIAS
        return ParameterType.BIAS if names[-1] == "bias" else ParameterType.WEIGHT

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith(f"top_{len(self.top_mlp_dims) - 1}")

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
        train = mode == ForwardPassMode.TRAIN
        rngs = {"dropout": rng} if train and uses_dropout(dropout_rate) else None
        logits = self._model.apply(
            {"params": params},
            augmented_and_preprocessed_input_batch["inputs"],
            train=train,
            dropout_rate=dropout_rate,
            rngs=rngs,
        )
        return logits, model_state

    def loss_fn(
        self,
        label_batch: jax.Array,
        logits_batch: jax.Array,
        mask_batch: jax.Array | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """Sigmoid cross-entropy per example; ``label_smoothing`` is ignored, as in AlgoPerf's criteo1tb."""
        logits = logits_batch.reshape(-1)
        targets = label_batch.reshape(-1).astype(logits.dtype)
        per_example = optax.sigmoid_binary_cross_entropy(logits, targets)
        if mask_batch is not None:
            mask = mask_batch.reshape(-1).astype(per_example.dtype)
            per_example = per_example * mask
            n_valid = mask.sum()
        else:
            n_valid = jnp.asarray(len(per_example))
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    @cached_property
    def _eval_logits_jit(self) -> Any:
        def evaluate(params: Any, model_state: Any, inputs: jax.Array) -> jax.Array:
            batch = {"inputs": inputs}
            logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
            return logits.reshape(-1)

        return jax.jit(evaluate)

    def eval_batch(self, params: Any, model_state: Any, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        logits = self._eval_logits_jit(params, model_state, batch["inputs"])
        return {"logits": np.asarray(logits), "targets": np.asarray(batch["targets"]).reshape(-1)}


class Criteo1TbMiniLayerNormWorkload(LayerNormVariant, Criteo1TbMiniWorkload):
    """AlgoPerf's Criteo1TbDlrmSmallLayerNormWorkload."""


class Criteo1TbMiniResidualWorkload(ResidualVariant, Criteo1TbMiniWorkload):
    """AlgoPerf's Criteo1TbDlrmSmallResNetWorkload."""


class Criteo1TbMiniEmbedInitWorkload(EmbedInitVariant, Criteo1TbMiniWorkload):
    """AlgoPerf's Criteo1TbDlrmSmallEmbedInitWorkload."""
