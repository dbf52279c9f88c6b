"""librispeech_deepspeech_mini in JAX/Flax: AlgoPerf's DeepSpeech (conv subsampling, batch-normed residual
bidirectional LSTMs, a feed-forward stack, layer norm, a CTC head) at CPU scale.

Module names mirror the PyTorch model (``lstm_0/forward_lstm`` is ``lstm_0.forward_lstm``). The LSTM is
written out here with PyTorch's conventions, so that a weight copy is a transpose and nothing else: gates in
the order input, forget, cell, output, and two biases per direction (``input_bias`` is torch's ``b_ih``,
``recurrent_bias`` its ``b_hh``), all initialised uniform in +-1/sqrt(hidden) as torch does. Both directions
run in one ``lax.scan``; the backward one holds its state at zero over the padded frames, so padding never
reaches a real frame. Batch-norm running statistics are the model state (``batch_stats``).
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from algoperf_workloads.librispeech_conformer_mini.data import NUM_BINS, NUM_CLASSES
from algoperf_workloads.librispeech_conformer_mini.jax import CtcLossAndEval
from algoperf_workloads.librispeech_conformer_mini.workload import spec_augment
from algoperf_workloads.librispeech_deepspeech_mini.workload import (
    BATCH_NORM_DECAY,
    BATCH_NORM_EPSILON,
    CONV_CHANNELS,
    CONV_STRIDES,
    DEFAULT_DROPOUT_RATE,
    ENCODER_DIM,
    LAYER_NORM_EPSILON,
    NUM_FFN_LAYERS,
    NUM_LSTM_LAYERS,
    BaseDeepspeechMiniWorkload,
    DeepspeechNoResidual,
    DeepspeechNormAndSpecAug,
    DeepspeechSwitches,
    DeepspeechTanh,
    same_padding,
)
from pytest_algoperf.frameworks.jax_adapter import JaxArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

xavier_uniform = nn.initializers.xavier_uniform()
ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}  # DeepspeechSwitches.activation


class Dropout(nn.Module):
    """Inverted dropout whose rate may be a traced scalar (flax.linen.Dropout needs a Python float); a
    Python rate of 0 draws no masks (they cost a sizeable share of a CPU step)."""

    @nn.compact
    def __call__(self, x: jax.Array, rate: Any, train: bool) -> jax.Array:
        if not train or (isinstance(rate, int | float) and rate == 0.0):
            return x
        keep = 1.0 - rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, x.shape)
        # Scaling after the select keeps gradients finite at rate 1 (keep 0), as AlgoPerf guards.
        return jnp.where(mask, x, 0.0) * jnp.where(keep > 0.0, 1.0 / keep, 0.0)


class Conv2dSubsampling(nn.Module):
    """A 3x3 convolution with SAME padding and a (time, frequency) stride, then ReLU; the paddings are
    strided alike, and outputs at padded frames are zeroed (AlgoPerf's Conv2dSubsampling)."""

    features: int
    stride: tuple[int, int]
    activation: str = "relu"

    @nn.compact
    def __call__(self, inputs: jax.Array, paddings: jax.Array) -> tuple[jax.Array, jax.Array]:
        kernel = self.param("kernel", xavier_uniform, (3, 3, inputs.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        time, bins = inputs.shape[1:3]
        pads = [same_padding(time, self.stride[0]), same_padding(bins, self.stride[1])]
        outputs = jax.lax.conv_general_dilated(
            inputs, kernel, self.stride, pads, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        outputs = ACTIVATIONS[self.activation](outputs + bias)
        paddings = paddings[:, :: self.stride[0]]
        return outputs * (1.0 - paddings)[:, :, None, None], paddings


class Subsample(nn.Module):
    """Two strided convolutions (time x2, frequency x4 in all), then a Dense layer to the encoder width."""

    activation: str = "relu"

    @nn.compact
    def __call__(
        self, inputs: jax.Array, paddings: jax.Array, dropout_rate: Any, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        outputs = (inputs * (1.0 - paddings)[:, :, None])[..., None]  # [batch, time, bins, 1]
        for index, stride in enumerate(CONV_STRIDES):
            conv = Conv2dSubsampling(CONV_CHANNELS, stride, self.activation, name=f"conv_{index}")
            outputs, paddings = conv(outputs, paddings)
        batch, time, bins, channels = outputs.shape
        outputs = nn.Dense(ENCODER_DIM, kernel_init=xavier_uniform, name="dense")(
            outputs.reshape(batch, time, bins * channels)
        )
        return Dropout()(outputs, dropout_rate, train), paddings


class BatchNorm(nn.Module):
    """AlgoPerf's DeepSpeech batch norm: statistics over the unpadded frames of the batch, scale ``1 +
    scale`` (zero-initialised), outputs zeroed at padded frames. Running statistics decay by
    ``BATCH_NORM_DECAY`` per step when ``batch_stats`` is mutable."""

    @nn.compact
    def __call__(self, inputs: jax.Array, paddings: jax.Array, train: bool) -> jax.Array:
        dim = inputs.shape[-1]
        scale = self.param("scale", nn.initializers.zeros, (dim,))
        bias = self.param("bias", nn.initializers.zeros, (dim,))
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (dim,))
        running_var = self.variable("batch_stats", "var", jnp.ones, (dim,))
        mask = (1.0 - paddings)[:, :, None]
        if train:
            count = jnp.maximum(mask.sum(), 1.0)
            mean = (inputs * mask).sum(axis=(0, 1)) / count
            var = (jnp.square(inputs - mean) * mask).sum(axis=(0, 1)) / count
            if self.is_mutable_collection("batch_stats") and not self.is_initializing():
                running_mean.value = BATCH_NORM_DECAY * running_mean.value + (1.0 - BATCH_NORM_DECAY) * mean
                running_var.value = BATCH_NORM_DECAY * running_var.value + (1.0 - BATCH_NORM_DECAY) * var
        else:
            mean, var = running_mean.value, running_var.value
        outputs = (inputs - mean) * ((1.0 + scale) * jax.lax.rsqrt(var + BATCH_NORM_EPSILON)) + bias
        return outputs * mask


class LayerNorm(nn.Module):
    """AlgoPerf's DeepSpeech layer norm: ``1 + scale`` with the scale initialised to zero."""

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        dim = inputs.shape[-1]
        scale = self.param("scale", nn.initializers.zeros, (dim,))
        bias = self.param("bias", nn.initializers.zeros, (dim,))
        mean = inputs.mean(axis=-1, keepdims=True)
        var = jnp.square(inputs - mean).mean(axis=-1, keepdims=True)
        return (inputs - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPSILON) * (1.0 + scale) + bias


class LSTMWeights(nn.Module):
    """One direction's LSTM parameters in PyTorch's layout, transposed to kernels (see the module doc)."""

    hidden: int

    @nn.compact
    def __call__(self, input_dim: int) -> tuple[jax.Array, ...]:
        bound = 1.0 / math.sqrt(self.hidden)

        def uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
            return jax.random.uniform(key, shape, jnp.float32, -bound, bound)

        gates = 4 * self.hidden
        return (
            self.param("input_kernel", uniform, (input_dim, gates)),
            self.param("recurrent_kernel", uniform, (self.hidden, gates)),
            self.param("input_bias", uniform, (gates,)),
            self.param("recurrent_bias", uniform, (gates,)),
        )


def bidirectional_lstm(
    inputs: jax.Array, paddings: jax.Array, forward: tuple[jax.Array, ...], backward: tuple[jax.Array, ...]
) -> jax.Array:
    """Both directions in one scan over time, directions stacked on a leading axis. The backward one reads
    the time-reversed batch and holds its state at zero over the padded frames it meets first, which
    equals starting at each utterance's last real frame (padding is a suffix of every row). torch's
    ``nn.LSTM`` cannot hold its state, so the PyTorch model reverses each row within its length instead;
    the two are equal, which the parity and padding tests check."""
    input_kernel, recurrent_kernel, input_bias, recurrent_bias = (
        jnp.stack(pair) for pair in zip(forward, backward, strict=True)
    )
    both = jnp.stack([inputs, jnp.flip(inputs, axis=1)])  # [direction, batch, time, features]
    valid = 1.0 - paddings
    masks = jnp.stack([valid, jnp.flip(valid, axis=1)]).transpose(2, 0, 1)[..., None] > 0.0
    # The input projection of every frame at once; only the recurrent one is sequential.
    gate_inputs = jnp.einsum("dbtf,dfg->tdbg", both, input_kernel) + (input_bias + recurrent_bias)[:, None]
    zeros = jnp.zeros((2, inputs.shape[0], recurrent_kernel.shape[1]), inputs.dtype)

    def step(carry: tuple[jax.Array, jax.Array], frame: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
        h, c = carry
        gates_x, mask = frame
        gates = gates_x + jnp.einsum("dbh,dhg->dbg", h, recurrent_kernel)
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        new_c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
        new_h = nn.sigmoid(o) * jnp.tanh(new_c)
        h, c = jnp.where(mask, new_h, h), jnp.where(mask, new_c, c)
        return (h, c), h

    _, outputs = jax.lax.scan(step, (zeros, zeros), (gate_inputs, masks))  # [time, direction, batch, hidden]
    forward_outputs = outputs[:, 0].transpose(1, 0, 2)
    backward_outputs = jnp.flip(outputs[:, 1], axis=0).transpose(1, 0, 2)
    return jnp.concatenate([forward_outputs, backward_outputs], axis=-1)


def normalize(switches: DeepspeechSwitches, inputs: jax.Array, paddings: jax.Array, train: bool) -> jax.Array:
    """A layer's input norm, in the calling module's scope: batch norm (``norm``) or, under
    ``layer_norm_everywhere``, layer norm (``layer_norm``), as pytorch.py's ``Normalized``."""
    if switches.layer_norm_everywhere:
        return LayerNorm(name="layer_norm")(inputs)
    return BatchNorm(name="norm")(inputs, paddings, train)


class BatchRNN(nn.Module):
    """Batch norm, then a bidirectional LSTM, half the width per direction."""

    switches: DeepspeechSwitches = DeepspeechSwitches()

    @nn.compact
    def __call__(self, inputs: jax.Array, paddings: jax.Array, train: bool) -> jax.Array:
        normed = normalize(self.switches, inputs, paddings, train)
        forward = LSTMWeights(ENCODER_DIM // 2, name="forward_lstm")(ENCODER_DIM)
        backward = LSTMWeights(ENCODER_DIM // 2, name="backward_lstm")(ENCODER_DIM)
        return bidirectional_lstm(normed, paddings, forward, backward) * (1.0 - paddings)[:, :, None]


class FeedForward(nn.Module):
    """Batch norm, Dense, ReLU (or ``activation``), zeroed padding, dropout (AlgoPerf's DeepSpeech
    FeedForwardModule)."""

    switches: DeepspeechSwitches = DeepspeechSwitches()

    @nn.compact
    def __call__(self, inputs: jax.Array, paddings: jax.Array, dropout_rate: Any, train: bool) -> jax.Array:
        outputs = normalize(self.switches, inputs, paddings, train)
        outputs = nn.Dense(ENCODER_DIM, kernel_init=xavier_uniform, name="dense")(outputs)
        outputs = ACTIVATIONS[self.switches.activation](outputs) * (1.0 - paddings)[:, :, None]
        return Dropout()(outputs, dropout_rate, train)


class DeepSpeech(nn.Module):
    """Subsampling, residual BatchRNN layers, residual feed-forward layers, layer norm, a Dense CTC head;
    ``switches`` are the workload's. SpecAugment (if they ask for it) needs training mode and a
    ``dropout`` rng, from which it draws its masks."""

    switches: DeepspeechSwitches = DeepspeechSwitches()

    @nn.compact
    def __call__(
        self, inputs: jax.Array, paddings: jax.Array, dropout_rate: Any, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        switches = self.switches
        masks = switches.time_mask_count, switches.freq_mask_count
        if train and any(masks) and self.has_rng("dropout"):
            uniforms = jax.random.uniform(self.make_rng("dropout"), (inputs.shape[0], 2 * sum(masks)))
            inputs = spec_augment(jnp, inputs, paddings, uniforms, *masks)
        outputs, paddings = Subsample(switches.activation, name="subsample")(
            inputs, paddings, dropout_rate, train
        )
        for layer in range(NUM_LSTM_LAYERS):
            branch = BatchRNN(switches, name=f"lstm_{layer}")(outputs, paddings, train)
            outputs = outputs + branch if switches.residual_connections else branch
        for layer in range(NUM_FFN_LAYERS):
            branch = FeedForward(switches, name=f"ffn_{layer}")(outputs, paddings, dropout_rate, train)
            outputs = outputs + branch if switches.residual_connections else branch
        if switches.decoder_layer_norm:
            outputs = LayerNorm(name="final_norm")(outputs)
        return nn.Dense(NUM_CLASSES, kernel_init=xavier_uniform, name="head")(outputs), paddings


def parameter_type(names: tuple[str, ...]) -> ParameterType:
    """Convolution kernels, Dense and LSTM weights and biases, batch- and layer-norm scales and biases."""
    module, leaf = names[-2], names[-1]
    if module == "norm":
        return ParameterType.BATCH_NORM_SCALE if leaf == "scale" else ParameterType.BATCH_NORM_BIAS
    if module in ("final_norm", "layer_norm"):
        return ParameterType.LAYER_NORM_SCALE if leaf == "scale" else ParameterType.LAYER_NORM_BIAS
    if module.startswith("conv_"):
        return ParameterType.CONV_WEIGHT if leaf == "kernel" else ParameterType.BIAS
    return ParameterType.BIAS if leaf.endswith("bias") else ParameterType.WEIGHT


class DeepspeechMiniWorkload(CtcLossAndEval, JaxArrays, BaseDeepspeechMiniWorkload):
    @cached_property
    def _model(self) -> DeepSpeech:
        return DeepSpeech(self.switches)

    @cached_property
    def _compiled_inits(self) -> dict[Any, Any]:
        return {}

    def init_model_fn(self, rng: Any) -> tuple[Any, Any]:
        """Flax's init, compiled once per key type at XLA's lowest optimisation level (it runs once; see
        ogbg_mini). Returns ``(params, batch_stats)``."""
        example = jnp.zeros((1, 8, NUM_BINS), jnp.float32), jnp.zeros((1, 8), jnp.float32)
        signature = (jnp.shape(rng), jnp.result_type(rng))
        if signature not in self._compiled_inits:
            init = jax.jit(lambda key, inputs, paddings: self._model.init(key, inputs, paddings, 0.0, False))
            self._compiled_inits[signature] = init.lower(rng, *example).compile(
                compiler_options={"xla_backend_optimization_level": 0}
            )
        variables = self._compiled_inits[signature](rng, *example)
        self.record_param_shapes(variables["params"])
        return variables["params"], variables.get("batch_stats", {})  # none under layer_norm_everywhere

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
    ) -> tuple[tuple[jax.Array, jax.Array], Any]:
        """Returns ``((logits, logit_paddings), batch_stats)``, as AlgoPerf's speech workloads do; the
        running statistics change only in training mode with ``update_batch_norm``."""
        rate = DEFAULT_DROPOUT_RATE if dropout_rate is None else dropout_rate
        inputs, paddings = augmented_and_preprocessed_input_batch["inputs"]
        variables = {"params": params, "batch_stats": model_state}
        if mode != ForwardPassMode.TRAIN:
            return self._model.apply(variables, inputs, paddings, rate, False), model_state
        rngs = None if rng is None else {"dropout": rng}
        if not update_batch_norm:
            return self._model.apply(variables, inputs, paddings, rate, True, rngs=rngs), model_state
        outputs, updates = self._model.apply(
            variables, inputs, paddings, rate, True, rngs=rngs, mutable=["batch_stats"]
        )
        return outputs, updates.get("batch_stats", model_state)


class DeepspeechMiniTanhWorkload(DeepspeechTanh, DeepspeechMiniWorkload):
    pass


class DeepspeechMiniNoResNetWorkload(DeepspeechNoResidual, DeepspeechMiniWorkload):
    pass


class DeepspeechMiniNormAndSpecAugWorkload(DeepspeechNormAndSpecAug, DeepspeechMiniWorkload):
    pass
