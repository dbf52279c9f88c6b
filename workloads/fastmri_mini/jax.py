"""fastmri_mini in JAX/Flax: AlgoPerf's U-Net, the L1 loss and jitted batched evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from algoperf_workloads.fastmri_mini.workload import (
    BaseFastMriMiniWorkload,
    LayerNormVariant,
    ModelSizeVariant,
    TanhVariant,
    batch_ssim,
)
from pytest_algoperf.frameworks.jax_adapter import JaxArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

NEGATIVE_SLOPE = 0.2
INSTANCE_NORM_EPS = 1e-5
LAYER_NORM_EPS = 1e-6  # AlgoPerf's layer-norm variant (Flax's LayerNorm default)
TRUNCATED_NORMAL_STDDEV = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


# The workload's ``activation`` names.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "leaky_relu": partial(jax.nn.leaky_relu, negative_slope=NEGATIVE_SLOPE),
    "tanh": jnp.tanh,
}


def instance_norm(x: jax.Array) -> jax.Array:
    """Instance norm over height and width without learnable parameters."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = jnp.square(x - mean).mean(axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + INSTANCE_NORM_EPS)


def channel_dropout(module: nn.Module, x: jax.Array, rate: Any, train: bool) -> jax.Array:
    """Dropout2d: one keep/drop draw per (example, channel), broadcast over height and width.

    ``rate`` may be a traced scalar (the adamw submission passes it into its jitted step as an argument),
    so it is never compared in Python; a zero rate keeps everything. Needs a 'dropout' rng when training.
    """
    if not train or rate is None or not module.has_rng("dropout"):
        return x
    keep = 1.0 - jnp.asarray(rate, x.dtype)
    mask = jax.random.bernoulli(module.make_rng("dropout"), keep, (x.shape[0], 1, 1, x.shape[-1]))
    return jnp.where(mask, x / jnp.maximum(keep, 1e-6), 0.0)


def lecun_normal_init(rng: jax.Array, shapes: Any) -> Any:
    """Flax's default initialisation (kernels truncated normal within 2 standard deviations, variance
    1 / fan_in with fan_in = prod(shape[:-1]); biases zero; the layer-norm variant's scales one), drawn as
    ONE truncated-normal vector that is then cut into the kernels.

    Why not ``model.init``: XLA compiles the random-bit generator once per distinct shape, about 0.7 s of
    CPU each here, so Flax's per-layer draws cost ~9 s for this 14-parameter U-Net against ~0.4 s for one
    draw. The distribution is the same; only the stream of random numbers differs from ``model.init``.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    kernels = [leaf.shape for path, leaf in leaves if path[-1].key == "kernel"]
    total = sum(math.prod(shape) for shape in kernels)
    draws = np.asarray(jax.random.truncated_normal(rng, -2.0, 2.0, (total,), jnp.float32))
    values, offset = [], 0
    for path, leaf in leaves:
        if path[-1].key != "kernel":
            fill = np.ones if path[-1].key == "scale" else np.zeros
            values.append(jnp.asarray(fill(leaf.shape, np.float32)))
            continue
        size = math.prod(leaf.shape)
        stddev = math.sqrt(1.0 / math.prod(leaf.shape[:-1])) / TRUNCATED_NORMAL_STDDEV
        values.append(jnp.asarray(draws[offset : offset + size].reshape(leaf.shape) * np.float32(stddev)))
        offset += size
    return jax.tree_util.tree_unflatten(treedef, values)


class ConvBlock(nn.Module):
    """(3x3 conv without bias -> norm -> activation -> channel dropout) twice; instance norm and leaky
    ReLU(0.2) unless the workload's switches say otherwise ("layer": AlgoPerf's LayerNorm over height,
    width and channels with a per-channel scale and bias)."""

    features: int
    activation: str = "leaky_relu"
    normalization: str = "instance"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, dropout_rate: Any) -> jax.Array:
        for index in range(2):
            x = nn.Conv(
                self.features, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name=f"conv_{index}"
            )(x)
            if self.normalization == "layer":
                x = nn.LayerNorm(epsilon=LAYER_NORM_EPS, reduction_axes=(1, 2, 3), name=f"norm_{index}")(x)
            else:
                x = instance_norm(x)
            x = channel_dropout(self, ACTIVATIONS[self.activation](x), dropout_rate, train)
        return x


class TransposeConvBlock(nn.Module):
    """2x2 stride-2 transpose conv without bias (doubles height and width) -> instance norm -> activation."""

    features: int
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.ConvTranspose(self.features, (2, 2), strides=(2, 2), use_bias=False, name="conv_transpose")(x)
        return ACTIVATIONS[self.activation](instance_norm(x))


class UNet(nn.Module):
    """AlgoPerf's fastMRI U-Net: inputs (N, H, W) -> outputs (N, H, W), NHWC inside."""

    channels: int
    num_pool_layers: int
    activation: str = "leaky_relu"
    normalization: str = "instance"

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool = False, dropout_rate: Any = 0.0) -> jax.Array:
        block = partial(ConvBlock, activation=self.activation, normalization=self.normalization)
        x = inputs[..., None]
        skips = []
        width = self.channels
        for index in range(self.num_pool_layers):
            x = block(width, name=f"down_{index}")(x, train, dropout_rate)
            skips.append(x)
            x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
            width *= 2
        x = block(width, name="bottleneck")(x, train, dropout_rate)
        for index in range(self.num_pool_layers):
            width //= 2
            upsample = TransposeConvBlock(width, self.activation, name=f"up_transpose_{index}")
            x = jnp.concatenate([upsample(x), skips.pop()], -1)
            x = block(width, name=f"up_{index}")(x, train, dropout_rate)
        return nn.Conv(1, (1, 1), name="output")(x)[..., 0]


class FastMriMiniWorkload(JaxArrays, BaseFastMriMiniWorkload):
    @cached_property
    def _model(self) -> UNet:
        return UNet(self.num_channels, self.num_pool_layers, self.activation, self.normalization)

    def init_model_fn(self, rng: Any) -> tuple[Any, None]:
        size = self.splits["train"].inputs.shape[-1]
        shapes = jax.eval_shape(self._model.init, rng, jnp.zeros((1, size, size), jnp.float32))["params"]
        params = lecun_normal_init(rng, shapes)
        self.record_param_shapes(params)
        return params, None

    def param_type(self, names: tuple[str, ...]) -> ParameterType:
        """Every kernel (3x3, transpose 2x2 and the final 1x1) is a conv weight, as AlgoPerf types them;
        the layer-norm variant adds layer-norm scales and biases."""
        if names[-2].startswith("norm_"):
            return ParameterType.LAYER_NORM_BIAS if names[-1] == "bias" else ParameterType.LAYER_NORM_SCALE
        return ParameterType.BIAS if names[-1] == "bias" else ParameterType.CONV_WEIGHT

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
        train = mode == ForwardPassMode.TRAIN
        rngs = {"dropout": rng} if train and rng is not None else {}
        outputs = self._model.apply(
            {"params": params},
            augmented_and_preprocessed_input_batch["inputs"],
            train=train,
            dropout_rate=dropout_rate,
            rngs=rngs,
        )
        return outputs, model_state

    def loss_fn(
        self,
        label_batch: jax.Array,
        logits_batch: jax.Array,
        mask_batch: jax.Array | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """Per-example mean absolute error over the image; label smoothing does not apply (AlgoPerf)."""
        per_example = jnp.abs(logits_batch - label_batch).mean(axis=tuple(range(1, logits_batch.ndim)))
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = jnp.asarray(len(per_example))
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    @cached_property
    def _eval_outputs_jit(self) -> Any:
        def evaluate(params: Any, model_state: Any, batch: dict[str, Any]) -> tuple[jax.Array, jax.Array]:
            outputs, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
            return outputs, self.loss_fn(batch["targets"], outputs)["summed"]

        return jax.jit(evaluate)

    def eval_batch(self, params: Any, model_state: Any, batch: dict[str, Any]) -> dict[str, float]:
        outputs, loss = self._eval_outputs_jit(params, model_state, batch)
        host = {key: np.asarray(value) for key, value in batch.items()}
        return {"ssim": float(np.sum(batch_ssim(np.asarray(outputs), host))), "loss": float(loss)}


class FastMriMiniModelSizeWorkload(ModelSizeVariant, FastMriMiniWorkload):
    """fastmri_mini_model_size: see ``workload.ModelSizeVariant``."""


class FastMriMiniTanhWorkload(TanhVariant, FastMriMiniWorkload):
    """fastmri_mini_tanh: see ``workload.TanhVariant``."""


class FastMriMiniLayerNormWorkload(LayerNormVariant, FastMriMiniWorkload):
    """fastmri_mini_layernorm: see ``workload.LayerNormVariant``."""
