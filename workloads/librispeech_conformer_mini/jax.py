"""librispeech_conformer_mini in JAX/Flax: the Conformer of pytorch.py (see its docstring), with optax's CTC.

Module names mirror the PyTorch model (``blocks_0/conv/depthwise`` is ``blocks.0.conv.depthwise``); batch-norm
running averages live in the ``batch_stats`` collection, which is the workload's ``model_state``. The dropout
rate arrives at call time and may be traced, so dropout takes it as an array, and ``model_fn`` skips the
masks by ``lax.cond`` when it is 0 (as ogbg_mini does).
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from algoperf_workloads.librispeech_conformer_mini.data import MAX_FRAMES, NUM_BINS, NUM_CLASSES
from algoperf_workloads.librispeech_conformer_mini.workload import (
    BATCH_NORM_EPSILON,
    BATCH_NORM_MOMENTUM,
    CONV_KERNEL_SIZE,
    DEFAULT_DROPOUT_RATE,
    ENCODER_DIM,
    FEED_FORWARD_EXPANSION,
    LAYER_NORM_EPSILON,
    NUM_BLOCKS,
    NUM_HEADS,
    SUBSAMPLING_CHANNELS,
    BaseConformerMiniWorkload,
    ConformerAttentionTemperature,
    ConformerGelu,
    ConformerNoPostLayerNorm,
    sinusoidal_positions,
    speech_eval_outputs,
)
from pytest_algoperf.frameworks.jax_adapter import JaxArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

Array = jax.Array
xavier = nn.initializers.xavier_uniform()
ACTIVATIONS = {"swish": nn.swish, "gelu": nn.gelu}  # the workload's ``activation`` switch (GELU: tanh form)


def dense(features: int, name: str) -> nn.Dense:
    return nn.Dense(features, kernel_init=xavier, name=name)


def layer_norm(name: str = "norm") -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, name=name)


class Dropout(nn.Module):
    """Inverted dropout whose rate may be a traced scalar (flax.linen.Dropout needs a Python float)."""

    @nn.compact
    def __call__(self, x: Array, rate: Any, train: bool) -> Array:
        if not train or (isinstance(rate, int | float) and rate == 0.0):
            return x
        keep = 1.0 - rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, x.shape)
        # Scaling after the select keeps gradients finite at rate 1 (keep 0), as AlgoPerf guards.
        return jnp.where(mask, x, 0.0) * jnp.where(keep > 0.0, 1.0 / keep, 0.0)


class MaskedBatchNorm(nn.Module):
    """Batch norm over (batch, time) with statistics of real frames only (see the PyTorch module)."""

    @nn.compact
    def __call__(self, inputs: Array, paddings: Array, train: bool) -> Array:
        features = inputs.shape[-1]
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,))
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,))
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        mask = (1.0 - paddings)[..., None]
        if train:
            count = jnp.maximum(mask.sum(axis=(0, 1)), 1.0)
            mean = (inputs * mask).sum(axis=(0, 1)) / count
            var = ((inputs - mean) ** 2 * mask).sum(axis=(0, 1)) / count
            if self.is_mutable_collection("batch_stats") and not self.is_initializing():
                running_mean.value = (
                    BATCH_NORM_MOMENTUM * running_mean.value + (1 - BATCH_NORM_MOMENTUM) * mean
                )
                running_var.value = BATCH_NORM_MOMENTUM * running_var.value + (1 - BATCH_NORM_MOMENTUM) * var
        else:
            mean, var = running_mean.value, running_var.value
        outputs = (inputs - mean) * jax.lax.rsqrt(var + BATCH_NORM_EPSILON) * scale + bias
        return outputs * mask


class Subsample(nn.Module):
    @nn.compact
    def __call__(self, inputs: Array, paddings: Array, rate: Any, train: bool) -> tuple[Array, Array]:
        conv = nn.Conv(
            SUBSAMPLING_CHANNELS,
            (3, 3),
            strides=(2, 2),
            padding=((1, 1), (1, 1)),
            kernel_init=xavier,
            name="conv",
        )
        outputs = nn.relu(conv(inputs[..., None]))  # (B, T/2, F/2, C)
        paddings = paddings[:, ::2]
        outputs = outputs * (1.0 - paddings)[:, :, None, None]
        batch, length = outputs.shape[:2]
        outputs = dense(ENCODER_DIM, "dense")(outputs.reshape(batch, length, -1))
        outputs = outputs + jnp.asarray(sinusoidal_positions(length))
        return Dropout()(outputs, rate, train), paddings


class FeedForward(nn.Module):
    activation: str = "swish"

    @nn.compact
    def __call__(self, inputs: Array, mask: Array, rate: Any, train: bool) -> Array:
        outputs = dense(ENCODER_DIM * FEED_FORWARD_EXPANSION, "dense_in")(layer_norm()(inputs))
        outputs = ACTIVATIONS[self.activation](outputs) * mask
        return Dropout()(dense(ENCODER_DIM, "dense_out")(outputs) * mask, rate, train)


class SelfAttention(nn.Module):
    temperature: float = 1.0  # scales the value average, as in pytorch.py

    @nn.compact
    def __call__(self, inputs: Array, paddings: Array, rate: Any, train: bool) -> Array:
        batch, length, _ = inputs.shape
        x = layer_norm()(inputs)

        def heads(name: str) -> Array:
            return dense(ENCODER_DIM, name)(x).reshape(batch, length, NUM_HEADS, -1)  # (B, T, H, D)

        query, key, value = heads("query"), heads("key"), heads("value")
        logits = jnp.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(query.shape[-1])
        logits = jnp.where(paddings[:, None, None, :] > 0, jnp.finfo(logits.dtype).min, logits)
        outputs = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), value)
        if self.temperature != 1.0:
            outputs = outputs * self.temperature
        return Dropout()(dense(ENCODER_DIM, "out")(outputs.reshape(batch, length, -1)), rate, train)


class DepthwiseConv(nn.Module):
    """A depthwise convolution over time (kernel ``(K, 1, channels)``, as ``nn.Conv`` with
    ``feature_group_count=channels`` holds it), computed as a sum of K shifted, scaled copies of the input,
    which XLA fuses: its CPU grouped convolution took twice as long here (forward and backward, 20 against
    10 ms for a training batch on one busy thread)."""

    @nn.compact
    def __call__(self, inputs: Array) -> Array:
        kernel = self.param("kernel", xavier, (CONV_KERNEL_SIZE, 1, inputs.shape[-1]))
        half, length = CONV_KERNEL_SIZE // 2, inputs.shape[1]
        padded = jnp.pad(inputs, ((0, 0), (half, half), (0, 0)))
        return sum(padded[:, k : k + length] * kernel[k, 0] for k in range(CONV_KERNEL_SIZE))


class ConvolutionModule(nn.Module):
    activation: str = "swish"

    @nn.compact
    def __call__(self, inputs: Array, paddings: Array, rate: Any, train: bool) -> Array:
        outputs = dense(2 * ENCODER_DIM, "pointwise_in")(layer_norm()(inputs))
        outputs = outputs[..., :ENCODER_DIM] * jax.nn.sigmoid(outputs[..., ENCODER_DIM:])
        outputs = outputs * (1.0 - paddings)[..., None]
        outputs = DepthwiseConv(name="depthwise")(outputs)
        outputs = MaskedBatchNorm(name="batch_norm")(outputs, paddings, train)
        outputs = ACTIVATIONS[self.activation](outputs)
        return Dropout()(dense(ENCODER_DIM, "pointwise_out")(outputs), rate, train)


class ConformerBlock(nn.Module):
    attention_temperature: float = 1.0
    activation: str = "swish"
    post_layer_norm: bool = True

    @nn.compact
    def __call__(self, inputs: Array, paddings: Array, rate: Any, train: bool) -> Array:
        mask = (1.0 - paddings)[..., None]
        x = inputs + 0.5 * FeedForward(self.activation, name="ff1")(inputs, mask, rate, train)
        x = x + SelfAttention(self.attention_temperature, name="attention")(x, paddings, rate, train)
        x = x + ConvolutionModule(self.activation, name="conv")(x, paddings, rate, train)
        x = x + 0.5 * FeedForward(self.activation, name="ff2")(x, mask, rate, train)
        return layer_norm()(x) if self.post_layer_norm else x


class Conformer(nn.Module):
    """The model; its fields are the workload's variant switches (``BaseConformerMiniWorkload``)."""

    attention_temperature: float = 1.0
    activation: str = "swish"
    post_layer_norm: bool = True

    @nn.compact
    def __call__(self, inputs: Array, paddings: Array, rate: Any, train: bool) -> tuple[Array, Array]:
        x, paddings = Subsample(name="subsample")(inputs, paddings, rate, train)
        switches = (self.attention_temperature, self.activation, self.post_layer_norm)
        for index in range(NUM_BLOCKS):
            x = ConformerBlock(*switches, name=f"blocks_{index}")(x, paddings, rate, train)
        return dense(NUM_CLASSES, "head")(layer_norm()(x)), paddings


def parameter_type(names: tuple[str, ...]) -> ParameterType:
    """The PyTorch model's types (see ``pytorch.parameter_type``) by Flax key path."""
    module, leaf = names[-2], names[-1]
    if module in ("query", "key", "value", "out"):
        kind = {"query": "Q", "key": "K", "value": "V", "out": "OUT"}[module]
        return ParameterType[f"ATTENTION_{kind}"] if leaf == "kernel" else ParameterType.ATTENTION_BIAS
    if module == "batch_norm":
        return ParameterType.BATCH_NORM_SCALE if leaf == "scale" else ParameterType.BATCH_NORM_BIAS
    if module == "norm":
        return ParameterType.LAYER_NORM_SCALE if leaf == "scale" else ParameterType.LAYER_NORM_BIAS
    if module in ("conv", "depthwise") and leaf == "kernel":
        return ParameterType.CONV_WEIGHT
    return ParameterType.BIAS if leaf == "bias" else ParameterType.WEIGHT


class CtcLossAndEval:
    """``loss_fn`` and a jitted ``eval_batch`` of both JAX speech workloads (this one and
    librispeech_deepspeech_mini): CTC on ``model_fn``'s ``(logits, logit_paddings)``, WER in numpy."""

    model_fn: Any

    def loss_fn(
        self,
        label_batch: tuple[Array, Array],
        logits_batch: tuple[Array, Array],
        mask_batch: Array | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """CTC per utterance (``label_smoothing`` is ignored, as in AlgoPerf's librispeech);
        ``n_valid_examples`` counts the real labels."""
        targets, target_paddings = label_batch
        logits, logit_paddings = logits_batch
        per_example = optax.ctc_loss(logits, logit_paddings, targets, target_paddings, blank_id=0)
        valid = 1.0 - target_paddings
        if mask_batch is not None:
            per_example = per_example * mask_batch
            valid = valid * mask_batch[:, None]
        return {"summed": per_example.sum(), "n_valid_examples": valid.sum(), "per_example": per_example}

    @cached_property
    def _eval_jit(self) -> Any:
        def outputs(params: Any, model_state: Any, batch: dict[str, Any]) -> tuple[Array, Array, Array]:
            logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
            return logits[0], logits[1], self.loss_fn(batch["targets"], logits)["per_example"]

        return jax.jit(outputs)

    def eval_batch(self, params: Any, model_state: Any, batch: dict[str, Any]) -> dict[str, float]:
        logits, logit_paddings, per_example = jax.device_get(self._eval_jit(params, model_state, batch))
        targets, target_paddings = jax.device_get(batch["targets"])
        return speech_eval_outputs(logits, logit_paddings, targets, target_paddings, per_example)


class ConformerMiniWorkload(CtcLossAndEval, JaxArrays, BaseConformerMiniWorkload):
    @cached_property
    def _model(self) -> Conformer:
        return Conformer(self.attention_temperature, self.activation, self.post_layer_norm)

    @cached_property
    def _compiled_inits(self) -> dict[Any, Any]:
        return {}

    def init_model_fn(self, rng: Any) -> tuple[Any, Any]:
        """Flax's init, compiled once per key type at XLA's lowest optimisation level: it runs once
        (outside the clock), and the default level spends seconds optimising it."""
        inputs = jnp.zeros((1, MAX_FRAMES, NUM_BINS), jnp.float32)
        paddings = jnp.zeros((1, MAX_FRAMES), jnp.float32)
        signature = (jnp.shape(rng), jnp.result_type(rng))
        if signature not in self._compiled_inits:
            init = jax.jit(lambda key, x, p: self._model.init(key, x, p, 0.0, False))
            self._compiled_inits[signature] = init.lower(rng, inputs, paddings).compile(
                compiler_options={"xla_backend_optimization_level": 0}
            )
        variables = self._compiled_inits[signature](rng, inputs, paddings)
        self.record_param_shapes(variables["params"])
        return variables["params"], variables["batch_stats"]

    def param_type(self, names: tuple[str, ...]) -> ParameterType:
        return parameter_type(names)

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith("head")

    def model_fn(
        self,
        params: Any,
        augmented_and_preprocessed_input_batch: dict[str, Any],
        model_state: Any,
        mode: ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[tuple[Array, Array], Any]:
        """Returns ``((logits, logit_paddings), batch_stats)``. Train mode normalises by batch statistics
        and returns moved running averages if ``update_batch_norm``; eval mode uses the running ones."""
        rate = DEFAULT_DROPOUT_RATE if dropout_rate is None else dropout_rate
        inputs, paddings = augmented_and_preprocessed_input_batch["inputs"]
        variables = {"params": params, "batch_stats": model_state}
        if mode != ForwardPassMode.TRAIN:
            return self._model.apply(variables, inputs, paddings, 0.0, False), model_state

        def apply(dropout: bool) -> tuple[tuple[Array, Array], Any]:
            rngs = {"dropout": rng} if dropout else None
            rate_used = rate if dropout else 0.0
            if not update_batch_norm:
                return self._model.apply(variables, inputs, paddings, rate_used, True, rngs=rngs), model_state
            outputs, updates = self._model.apply(
                variables, inputs, paddings, rate_used, True, rngs=rngs, mutable=["batch_stats"]
            )
            return outputs, updates["batch_stats"]

        try:
            dropout = bool(rate > 0.0)
        except jax.errors.ConcretizationTypeError:
            # A traced rate: one cond skips the masks (a share of a CPU step) when it is 0.
            return jax.lax.cond(rate > 0.0, lambda: apply(True), lambda: apply(False))
        return apply(dropout)


class ConformerMiniAttentionTemperatureWorkload(ConformerAttentionTemperature, ConformerMiniWorkload):
    pass


class ConformerMiniLayerNormWorkload(ConformerNoPostLayerNorm, ConformerMiniWorkload):
    pass


class ConformerMiniGeluWorkload(ConformerGelu, ConformerMiniWorkload):
    pass
