"""librispeech_conformer_mini in PyTorch: AlgoPerf's Conformer family at CPU scale, with a CTC head.

Input (B, T, 32 bins) -> one stride-2 3x3 convolution + ReLU (x2 subsampling in time and frequency) ->
dense to ENCODER_DIM + sinusoidal positions -> NUM_BLOCKS Conformer blocks (half-step feed-forward,
multi-head self-attention, convolution module, half-step feed-forward, layer norm) -> layer norm -> dense
to the 28 classes. Padding is respected as in AlgoPerf: subsampled paddings are every second input padding,
padded frames are zeroed after subsampling, feed-forward outputs and the depthwise convolution's input are
masked, attention ignores padded keys, and batch norm takes its statistics over real frames only.

Batch-norm statistics are module buffers (``model_state`` stays None, as in AlgoPerf's PyTorch workloads).
Initialisation matches jax.py: Xavier-uniform weights, zero biases, unit norm scales. Module names mirror the
Flax model's (``blocks.0.conv.depthwise`` is ``blocks_0/conv/depthwise``) so weights copy over in tests.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.librispeech_conformer_mini.data import NUM_BINS, NUM_CLASSES
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
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.frameworks.pytorch_adapter import TorchArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

Tensor = torch.Tensor
# The workload's ``activation`` switch; GELU tanh-approximated, as Flax's default.
ACTIVATIONS = {"swish": F.silu, "gelu": partial(F.gelu, approximate="tanh")}


def dense(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def layer_norm() -> nn.LayerNorm:
    return nn.LayerNorm(ENCODER_DIM, eps=LAYER_NORM_EPSILON)


class MaskedBatchNorm(nn.Module):
    """AlgoPerf's conformer batch norm over (batch, time), whose statistics count real frames only.

    Train mode normalises by the batch's masked mean and (biased) variance and, if ``update_statistics``,
    moves the running averages; eval mode uses the running averages. Padded outputs are zeroed."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))
        self.update_statistics = True

    def forward(self, inputs: Tensor, paddings: Tensor) -> Tensor:
        mask = (1.0 - paddings).unsqueeze(-1)
        if self.training:
            count = mask.sum(dim=(0, 1)).clamp(min=1.0)
            mean = (inputs * mask).sum(dim=(0, 1)) / count
            var = ((inputs - mean) ** 2 * mask).sum(dim=(0, 1)) / count
            if self.update_statistics:
                with torch.no_grad():
                    self.running_mean.mul_(BATCH_NORM_MOMENTUM).add_((1 - BATCH_NORM_MOMENTUM) * mean)
                    self.running_var.mul_(BATCH_NORM_MOMENTUM).add_((1 - BATCH_NORM_MOMENTUM) * var)
        else:
            mean, var = self.running_mean, self.running_var
        outputs = (inputs - mean) * torch.rsqrt(var + BATCH_NORM_EPSILON) * self.weight + self.bias
        return outputs * mask


class Subsample(nn.Module):
    """AlgoPerf's Conv2dSubsampling once (stride 2, 3x3, ReLU), flattening, dense, positions, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, SUBSAMPLING_CHANNELS, 3, stride=2, padding=1)
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.dense = dense(SUBSAMPLING_CHANNELS * (NUM_BINS // 2), ENCODER_DIM)

    def forward(self, inputs: Tensor, paddings: Tensor, dropout_rate: float) -> tuple[Tensor, Tensor]:
        outputs = F.relu(self.conv(inputs.unsqueeze(1)))  # (B, C, T/2, F/2)
        paddings = paddings[:, ::2]
        outputs = outputs * (1.0 - paddings)[:, None, :, None]
        batch, _, length, _ = outputs.shape
        # (B, T/2, F/2, C) before flattening: channels vary fastest, as in Flax's NHWC layout.
        outputs = self.dense(outputs.permute(0, 2, 3, 1).reshape(batch, length, -1))
        outputs = outputs + torch.from_numpy(sinusoidal_positions(length)).to(outputs.device)
        return F.dropout(outputs, dropout_rate, self.training), paddings


class FeedForward(nn.Module):
    """Layer norm, dense x4 expansion, swish (or ``activation``), dense back; padded frames zeroed;
    residual dropout."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self.norm = layer_norm()
        self.dense_in = dense(ENCODER_DIM, ENCODER_DIM * FEED_FORWARD_EXPANSION)
        self.dense_out = dense(ENCODER_DIM * FEED_FORWARD_EXPANSION, ENCODER_DIM)

    def forward(self, inputs: Tensor, mask: Tensor, dropout_rate: float) -> Tensor:
        outputs = self.activation(self.dense_in(self.norm(inputs))) * mask
        return F.dropout(self.dense_out(outputs) * mask, dropout_rate, self.training)


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention whose keys at padded frames get no weight; the value average is
    scaled by ``temperature`` before the output projection."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature
        self.norm = layer_norm()
        self.query, self.key, self.value, self.out = (dense(ENCODER_DIM, ENCODER_DIM) for _ in range(4))

    def forward(self, inputs: Tensor, paddings: Tensor, dropout_rate: float) -> Tensor:
        batch, length, _ = inputs.shape
        x = self.norm(inputs)

        def heads(layer: nn.Linear) -> Tensor:
            return layer(x).view(batch, length, NUM_HEADS, -1).transpose(1, 2)  # (B, H, T, D)

        query, key, value = heads(self.query), heads(self.key), heads(self.value)
        logits = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
        logits = logits.masked_fill(paddings[:, None, None, :] > 0, torch.finfo(logits.dtype).min)
        outputs = (logits.softmax(dim=-1) @ value).transpose(1, 2).reshape(batch, length, ENCODER_DIM)
        if self.temperature != 1.0:
            outputs = outputs * self.temperature
        return F.dropout(self.out(outputs), dropout_rate, self.training)


class ConvolutionModule(nn.Module):
    """Layer norm, pointwise dense to 2x + GLU, depthwise convolution over time, masked batch norm, swish
    (or ``activation``), pointwise dense; the depthwise convolution sees zeros at padded frames."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self.norm = layer_norm()
        self.pointwise_in = dense(ENCODER_DIM, 2 * ENCODER_DIM)
        self.depthwise = nn.Conv1d(
            ENCODER_DIM,
            ENCODER_DIM,
            CONV_KERNEL_SIZE,
            padding=CONV_KERNEL_SIZE // 2,
            groups=ENCODER_DIM,
            bias=False,
        )
        nn.init.xavier_uniform_(self.depthwise.weight)
        self.batch_norm = MaskedBatchNorm(ENCODER_DIM)
        self.pointwise_out = dense(ENCODER_DIM, ENCODER_DIM)

    def forward(self, inputs: Tensor, paddings: Tensor, dropout_rate: float) -> Tensor:
        outputs = F.glu(self.pointwise_in(self.norm(inputs)), dim=-1)
        outputs = outputs * (1.0 - paddings).unsqueeze(-1)
        outputs = self.depthwise(outputs.transpose(1, 2)).transpose(1, 2)
        outputs = self.activation(self.batch_norm(outputs, paddings))
        return F.dropout(self.pointwise_out(outputs), dropout_rate, self.training)


class ConformerBlock(nn.Module):
    def __init__(self, attention_temperature: float, activation: str, post_layer_norm: bool) -> None:
        super().__init__()
        self.ff1 = FeedForward(activation)
        self.attention = SelfAttention(attention_temperature)
        self.conv = ConvolutionModule(activation)
        self.ff2 = FeedForward(activation)
        self.norm = layer_norm() if post_layer_norm else None

    def forward(self, inputs: Tensor, paddings: Tensor, dropout_rate: float) -> Tensor:
        mask = (1.0 - paddings).unsqueeze(-1)
        x = inputs + 0.5 * self.ff1(inputs, mask, dropout_rate)
        x = x + self.attention(x, paddings, dropout_rate)
        x = x + self.conv(x, paddings, dropout_rate)
        x = x + 0.5 * self.ff2(x, mask, dropout_rate)
        return x if self.norm is None else self.norm(x)


class Conformer(nn.Module):
    """The model; its arguments are the workload's variant switches (``BaseConformerMiniWorkload``)."""

    def __init__(
        self, attention_temperature: float = 1.0, activation: str = "swish", post_layer_norm: bool = True
    ) -> None:
        super().__init__()
        self.subsample = Subsample()
        self.blocks = nn.ModuleList(
            ConformerBlock(attention_temperature, activation, post_layer_norm) for _ in range(NUM_BLOCKS)
        )
        self.norm = layer_norm()
        self.head = dense(ENCODER_DIM, NUM_CLASSES)

    def forward(self, inputs: Tensor, paddings: Tensor, dropout_rate: float) -> tuple[Tensor, Tensor]:
        x, paddings = self.subsample(inputs, paddings, dropout_rate)
        for block in self.blocks:
            x = block(x, paddings, dropout_rate)
        return self.head(self.norm(x)), paddings


def parameter_type(name: str) -> ParameterType:
    """AlgoPerf's types: attention q/k/v/out, conv weights, batch- and layer-norm scales and biases."""
    module, _, leaf = name.rpartition(".")
    module = module.rpartition(".")[2]
    if module in ("query", "key", "value", "out"):
        kind = {"query": "Q", "key": "K", "value": "V", "out": "OUT"}[module]
        return ParameterType[f"ATTENTION_{kind}"] if leaf == "weight" else ParameterType.ATTENTION_BIAS
    if module == "batch_norm":
        return ParameterType.BATCH_NORM_SCALE if leaf == "weight" else ParameterType.BATCH_NORM_BIAS
    if module == "norm":
        return ParameterType.LAYER_NORM_SCALE if leaf == "weight" else ParameterType.LAYER_NORM_BIAS
    if module in ("conv", "depthwise") and leaf == "weight":
        return ParameterType.CONV_WEIGHT
    return ParameterType.BIAS if leaf == "bias" else ParameterType.WEIGHT


class CtcLossAndEval:
    """``loss_fn`` and ``eval_batch`` of both PyTorch speech workloads (this one and
    librispeech_deepspeech_mini): CTC on ``model_fn``'s ``(logits, logit_paddings)``, WER in numpy. As in
    AlgoPerf, an utterance no alignment fits would cost inf; the data never have one (see data.py)."""

    model_fn: Any

    def loss_fn(
        self,
        label_batch: tuple[Tensor, Tensor],
        logits_batch: tuple[Tensor, Tensor],
        mask_batch: Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """CTC per utterance (``label_smoothing`` is ignored, as in AlgoPerf's librispeech);
        ``n_valid_examples`` counts the real labels."""
        targets, target_paddings = label_batch
        logits, logit_paddings = logits_batch
        log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)  # (T, B, C)
        input_lengths = (1.0 - logit_paddings).sum(dim=1).long()
        target_lengths = (1.0 - target_paddings).sum(dim=1).long()
        per_example = F.ctc_loss(
            log_probs, targets.long(), input_lengths, target_lengths, blank=0, reduction="none"
        )
        normalizer = (1.0 - target_paddings).sum()
        if mask_batch is not None:
            per_example = per_example * mask_batch
            normalizer = ((1.0 - target_paddings) * mask_batch[:, None]).sum()
        return {"summed": per_example.sum(), "n_valid_examples": normalizer, "per_example": per_example}

    def eval_batch(self, params: nn.Module, model_state: Any, batch: dict[str, Any]) -> dict[str, float]:
        logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
        per_example = self.loss_fn(batch["targets"], logits)["per_example"]
        targets, target_paddings = batch["targets"]
        return speech_eval_outputs(
            logits[0].cpu().numpy(),
            logits[1].cpu().numpy(),
            targets.cpu().numpy(),
            target_paddings.cpu().numpy(),
            per_example.cpu().numpy(),
        )


class ConformerMiniWorkload(CtcLossAndEval, TorchArrays, BaseConformerMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = Conformer(self.attention_temperature, self.activation, self.post_layer_norm)
        model = model.to(self.device)
        self.record_param_shapes(model)
        return model, None

    def param_type(self, name: str) -> ParameterType:
        return parameter_type(name)

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith("head.")

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: dict[str, Any],
        model_state: Any,
        mode: ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[tuple[Tensor, Tensor], Any]:
        """Returns ``((logits, logit_paddings), model_state)`` as AlgoPerf's librispeech does. Train mode
        normalises by batch statistics and moves the running ones if ``update_batch_norm``."""
        rate = DEFAULT_DROPOUT_RATE if dropout_rate is None else float(dropout_rate)
        training = mode == ForwardPassMode.TRAIN
        params.train(training)
        for module in params.modules():
            if isinstance(module, MaskedBatchNorm):
                module.update_statistics = update_batch_norm
        inputs, paddings = augmented_and_preprocessed_input_batch["inputs"]
        with torch.set_grad_enabled(training):
            return params(inputs, paddings, rate), model_state


class ConformerMiniAttentionTemperatureWorkload(ConformerAttentionTemperature, ConformerMiniWorkload):
    pass


class ConformerMiniLayerNormWorkload(ConformerNoPostLayerNorm, ConformerMiniWorkload):
    pass


class ConformerMiniGeluWorkload(ConformerGelu, ConformerMiniWorkload):
    pass
