"""librispeech_deepspeech_mini in PyTorch: AlgoPerf's DeepSpeech (conv subsampling, batch-normed residual
bidirectional LSTMs, a feed-forward stack, layer norm, a CTC head) at CPU scale.

Parameter names mirror the Flax tree where both frameworks own the names (``subsample.conv_0.kernel`` is
``subsample/conv_0/kernel``); the LSTM keeps torch's ``nn.LSTM`` names, which the parity test maps onto the
Flax LSTM explicitly. Padded frames never reach a real one: inputs are zeroed there, the batch-norm
statistics skip them, and the backward LSTM reads each utterance reversed within its own length, so it
starts at the utterance's last real frame.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.librispeech_conformer_mini.data import NUM_CLASSES
from algoperf_workloads.librispeech_conformer_mini.pytorch import CtcLossAndEval
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
    subsampled_bins,
)
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.frameworks.pytorch_adapter import TorchArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh}  # DeepspeechSwitches.activation


def dense(in_features: int, out_features: int) -> nn.Linear:
    """A Linear layer initialised as AlgoPerf's DeepSpeech Dense layers: Xavier-uniform, zero bias."""
    layer = nn.Linear(in_features, out_features)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Conv2dSubsampling(nn.Module):
    """A 3x3 convolution with TensorFlow's SAME padding and a (time, frequency) stride, then ReLU (or
    ``activation``); the paddings are strided alike, and outputs at padded frames are zeroed (AlgoPerf's
    Conv2dSubsampling)."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int], activation: str) -> None:
        super().__init__()
        self.stride = stride
        self.activation = ACTIVATIONS[activation]
        self.kernel = nn.Parameter(nn.init.xavier_uniform_(torch.empty(out_channels, in_channels, 3, 3)))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, inputs: torch.Tensor, paddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        time, bins = inputs.shape[2:]
        (time_low, time_high), (freq_low, freq_high) = (
            same_padding(time, self.stride[0]),
            same_padding(bins, self.stride[1]),
        )
        padded = F.pad(inputs, (freq_low, freq_high, time_low, time_high))
        outputs = self.activation(F.conv2d(padded, self.kernel, self.bias, stride=self.stride))
        paddings = paddings[:, :: self.stride[0]]
        return outputs * (1.0 - paddings)[:, None, :, None], paddings


class Subsample(nn.Module):
    """Two strided convolutions (time x2, frequency x4 in all), then a Dense layer to the encoder width."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.conv_0 = Conv2dSubsampling(1, CONV_CHANNELS, CONV_STRIDES[0], activation)
        self.conv_1 = Conv2dSubsampling(CONV_CHANNELS, CONV_CHANNELS, CONV_STRIDES[1], activation)
        self.dense = dense(subsampled_bins() * CONV_CHANNELS, ENCODER_DIM)

    def forward(
        self, inputs: torch.Tensor, paddings: torch.Tensor, dropout_rate: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = (inputs * (1.0 - paddings)[:, :, None])[:, None]  # [batch, 1, time, bins]
        outputs, paddings = self.conv_0(outputs, paddings)
        outputs, paddings = self.conv_1(outputs, paddings)
        batch, channels, time, bins = outputs.shape
        # Frequency-major, channel-minor features, as Flax's NHWC layout flattens them.
        outputs = outputs.permute(0, 2, 3, 1).reshape(batch, time, bins * channels)
        return F.dropout(self.dense(outputs), dropout_rate, self.training), paddings


class BatchNorm(nn.Module):
    """AlgoPerf's DeepSpeech batch norm: statistics over the unpadded frames of the batch, scale ``1 +
    scale`` (zero-initialised), outputs zeroed at padded frames. Running statistics decay by
    ``BATCH_NORM_DECAY`` per step, and only while ``update_statistics`` is set."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.update_statistics = True

    def forward(self, inputs: torch.Tensor, paddings: torch.Tensor) -> torch.Tensor:
        mask = (1.0 - paddings)[:, :, None]
        if self.training:
            count = mask.sum().clamp(min=1.0)
            mean = (inputs * mask).sum(dim=(0, 1)) / count
            var = (torch.square(inputs - mean) * mask).sum(dim=(0, 1)) / count
            if self.update_statistics:
                with torch.no_grad():
                    self.mean.mul_(BATCH_NORM_DECAY).add_((1.0 - BATCH_NORM_DECAY) * mean)
                    self.var.mul_(BATCH_NORM_DECAY).add_((1.0 - BATCH_NORM_DECAY) * var)
        else:
            mean, var = self.mean, self.var
        outputs = (inputs - mean) * ((1.0 + self.scale) * torch.rsqrt(var + BATCH_NORM_EPSILON)) + self.bias
        return outputs * mask


class LayerNorm(nn.Module):
    """AlgoPerf's DeepSpeech layer norm: ``1 + scale`` with the scale initialised to zero."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        normed = F.layer_norm(inputs, inputs.shape[-1:], eps=LAYER_NORM_EPSILON)
        return normed * (1.0 + self.scale) + self.bias


class Normalized(nn.Module):
    """A layer that normalises its input first: by batch norm (``norm``) or, under
    ``layer_norm_everywhere``, by layer norm (``layer_norm``), whose padded frames AlgoPerf leaves as they
    are (its bias; no later layer carries them to a real frame)."""

    def __init__(self, switches: DeepspeechSwitches) -> None:
        super().__init__()
        if switches.layer_norm_everywhere:
            self.layer_norm = LayerNorm(ENCODER_DIM)
        else:
            self.norm = BatchNorm(ENCODER_DIM)

    def normalize(self, inputs: torch.Tensor, paddings: torch.Tensor) -> torch.Tensor:
        return self.norm(inputs, paddings) if hasattr(self, "norm") else self.layer_norm(inputs)


class BatchRNN(Normalized):
    """Batch norm, then a bidirectional LSTM, half the width per direction, as two ``nn.LSTM``: the backward
    one reads each utterance reversed within its own length (a gather), so it starts at the last real frame.
    AlgoPerf packs the sequences instead; on the CPU the packed backward pass zero-fills the whole packed
    gradient once per time step, which made a step ~1.5x slower here."""

    def __init__(self, switches: DeepspeechSwitches) -> None:
        super().__init__(switches)
        self.forward_lstm = nn.LSTM(ENCODER_DIM, ENCODER_DIM // 2, batch_first=True)
        self.backward_lstm = nn.LSTM(ENCODER_DIM, ENCODER_DIM // 2, batch_first=True)

    def forward(self, inputs: torch.Tensor, paddings: torch.Tensor, reverse: torch.Tensor) -> torch.Tensor:
        normed = self.normalize(inputs, paddings)
        forward_outputs, _ = self.forward_lstm(normed)
        backward_outputs, _ = self.backward_lstm(torch.take_along_dim(normed, reverse, dim=1))
        backward_outputs = torch.take_along_dim(backward_outputs, reverse, dim=1)
        return torch.cat([forward_outputs, backward_outputs], dim=-1) * (1.0 - paddings)[:, :, None]


def reverse_within_lengths(paddings: torch.Tensor) -> torch.Tensor:
    """Time indices [batch, time, 1] that reverse each row's unpadded prefix and keep its padded suffix."""
    time = torch.arange(paddings.shape[1], device=paddings.device)[None, :]
    lengths = (1.0 - paddings).sum(dim=1, keepdim=True).long()
    return torch.where(time < lengths, lengths - 1 - time, time)[:, :, None]


class FeedForward(Normalized):
    """Batch norm, Dense, ReLU (or ``activation``), zeroed padding, dropout (AlgoPerf's DeepSpeech
    FeedForwardModule)."""

    def __init__(self, switches: DeepspeechSwitches) -> None:
        super().__init__(switches)
        self.dense = dense(ENCODER_DIM, ENCODER_DIM)
        self.activation = ACTIVATIONS[switches.activation]

    def forward(self, inputs: torch.Tensor, paddings: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        outputs = self.activation(self.dense(self.normalize(inputs, paddings))) * (1.0 - paddings)[:, :, None]
        return F.dropout(outputs, dropout_rate, self.training)


class DeepSpeech(nn.Module):
    """Subsampling, residual BatchRNN layers, residual feed-forward layers, layer norm, a Dense CTC head;
    ``switches`` are the workload's (``DeepspeechSwitches``)."""

    def __init__(self, switches: DeepspeechSwitches | None = None) -> None:
        super().__init__()
        self.switches = switches = switches or DeepspeechSwitches()
        self.subsample = Subsample(switches.activation)
        for layer in range(NUM_LSTM_LAYERS):
            self.add_module(f"lstm_{layer}", BatchRNN(switches))
        for layer in range(NUM_FFN_LAYERS):
            self.add_module(f"ffn_{layer}", FeedForward(switches))
        self.final_norm = LayerNorm(ENCODER_DIM) if switches.decoder_layer_norm else None
        self.head = dense(ENCODER_DIM, NUM_CLASSES)

    def forward(
        self,
        inputs: torch.Tensor,
        paddings: torch.Tensor,
        dropout_rate: float,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """SpecAugment (if the switches ask for it) needs training mode and a ``generator``."""
        masks = self.switches.time_mask_count, self.switches.freq_mask_count
        if self.training and generator is not None and any(masks):
            uniforms = torch.rand((inputs.shape[0], 2 * sum(masks)), generator=generator)
            inputs = spec_augment(torch, inputs, paddings, uniforms.to(inputs.device), *masks)
        outputs, paddings = self.subsample(inputs, paddings, dropout_rate)
        reverse = reverse_within_lengths(paddings)
        residual = self.switches.residual_connections
        for layer in range(NUM_LSTM_LAYERS):
            branch = getattr(self, f"lstm_{layer}")(outputs, paddings, reverse)
            outputs = outputs + branch if residual else branch
        for layer in range(NUM_FFN_LAYERS):
            branch = getattr(self, f"ffn_{layer}")(outputs, paddings, dropout_rate)
            outputs = outputs + branch if residual else branch
        if self.final_norm is not None:
            outputs = self.final_norm(outputs)
        return self.head(outputs), paddings


def parameter_type(name: str) -> ParameterType:
    """Convolution kernels, Dense and LSTM weights and biases, batch- and layer-norm scales and biases."""
    module, leaf = name.rsplit(".", 1)
    if module.endswith(".norm"):
        return ParameterType.BATCH_NORM_SCALE if leaf == "scale" else ParameterType.BATCH_NORM_BIAS
    if module == "final_norm" or module.endswith(".layer_norm"):
        return ParameterType.LAYER_NORM_SCALE if leaf == "scale" else ParameterType.LAYER_NORM_BIAS
    if leaf == "kernel":
        return ParameterType.CONV_WEIGHT
    return ParameterType.BIAS if leaf.startswith("bias") else ParameterType.WEIGHT


class DeepspeechMiniWorkload(CtcLossAndEval, TorchArrays, BaseDeepspeechMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = DeepSpeech(self.switches).to(self.device)
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
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], Any]:
        """Returns ``((logits, logit_paddings), None)``, as AlgoPerf's speech workloads do; batch-norm
        statistics live in the module's buffers and change only in training mode with
        ``update_batch_norm``."""
        rate = DEFAULT_DROPOUT_RATE if dropout_rate is None else float(dropout_rate)
        training = mode == ForwardPassMode.TRAIN
        params.train(training)
        for module in params.modules():
            if isinstance(module, BatchNorm):
                module.update_statistics = update_batch_norm
        inputs, paddings = augmented_and_preprocessed_input_batch["inputs"]
        generator = None  # SpecAugment's, seeded by rng (the base model has none)
        if training and rng is not None and (self.switches.time_mask_count or self.switches.freq_mask_count):
            generator = torch.Generator().manual_seed(to_seed(rng))
        with torch.set_grad_enabled(training):
            return params(inputs, paddings, rate, generator), model_state


class DeepspeechMiniTanhWorkload(DeepspeechTanh, DeepspeechMiniWorkload):
    pass


class DeepspeechMiniNoResNetWorkload(DeepspeechNoResidual, DeepspeechMiniWorkload):
    pass


class DeepspeechMiniNormAndSpecAugWorkload(DeepspeechNormAndSpecAug, DeepspeechMiniWorkload):
    pass
