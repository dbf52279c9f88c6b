"""fastmri_mini in PyTorch: AlgoPerf's U-Net, the L1 loss and batched evaluation on the run's device."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.fastmri_mini.workload import (
    BaseFastMriMiniWorkload,
    LayerNormVariant,
    ModelSizeVariant,
    TanhVariant,
    batch_ssim,
)
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.frameworks.pytorch_adapter import TorchArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

NEGATIVE_SLOPE = 0.2
INSTANCE_NORM_EPS = 1e-5
LAYER_NORM_EPS = 1e-6  # AlgoPerf's layer-norm variant (GroupNorm(1, C, eps=1e-6); Flax's LayerNorm default)
# The workload's ``activation`` names.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "leaky_relu": functools.partial(F.leaky_relu, negative_slope=NEGATIVE_SLOPE),
    "tanh": torch.tanh,
}


def lecun_normal_(weight: torch.Tensor, fan_in: int) -> None:
    """Flax's default kernel init (truncated normal, variance 1/fan_in), so both frameworks start alike.

    ``fan_in`` is passed explicitly: for ConvTranspose2d (weight laid out in, out, kh, kw) torch's own fan
    computation would use the output channels, while Flax's ConvTranspose counts kh * kw * in.
    """
    stddev = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    nn.init.trunc_normal_(weight, std=stddev, a=-2 * stddev, b=2 * stddev)


class InstanceNorm(nn.Module):
    """Instance norm without learnable parameters (AlgoPerf's InstanceNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, eps=INSTANCE_NORM_EPS)


def norm_layer(normalization: str, channels: int) -> nn.Module:
    """The workload's ``normalization``: "layer" is AlgoPerf's GroupNorm(1, C), a layer norm over (C, H, W)
    with a per-channel scale (1) and bias (0)."""
    if normalization == "layer":
        return nn.GroupNorm(1, channels, eps=LAYER_NORM_EPS)
    return InstanceNorm()


class ConvBlock(nn.Module):
    """(3x3 conv without bias -> norm -> activation -> channel dropout) twice; instance norm and leaky
    ReLU(0.2) unless the workload's switches say otherwise."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        activation: str = "leaky_relu",
        normalization: str = "instance",
    ) -> None:
        super().__init__()
        self.conv_0 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv_1 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        lecun_normal_(self.conv_0.weight, in_channels * 9)
        lecun_normal_(self.conv_1.weight, out_channels * 9)
        self.norm_0 = norm_layer(normalization, out_channels)
        self.norm_1 = norm_layer(normalization, out_channels)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        for conv, norm in ((self.conv_0, self.norm_0), (self.conv_1, self.norm_1)):
            x = self.activation(norm(conv(x)))
            if self.training and dropout_rate > 0.0:  # Dropout2d: one draw per (example, channel)
                x = F.dropout2d(x, dropout_rate, training=True)
        return x


class TransposeConvBlock(nn.Module):
    """2x2 stride-2 transpose conv without bias (doubles height and width) -> instance norm -> activation."""

    def __init__(self, in_channels: int, out_channels: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        self.conv_transpose = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size=2, stride=2, bias=False
        )
        lecun_normal_(self.conv_transpose.weight, in_channels * 4)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(F.instance_norm(self.conv_transpose(x), eps=INSTANCE_NORM_EPS))


class UNet(nn.Module):
    """AlgoPerf's fastMRI U-Net: inputs (N, H, W) -> outputs (N, H, W); H and W divisible by 2**pools."""

    def __init__(
        self,
        channels: int,
        num_pool_layers: int,
        activation: str = "leaky_relu",
        normalization: str = "instance",
    ) -> None:
        super().__init__()
        block = functools.partial(ConvBlock, activation=activation, normalization=normalization)
        self.down = nn.ModuleList([block(1, channels)])
        width = channels
        for _ in range(num_pool_layers - 1):
            self.down.append(block(width, width * 2))
            width *= 2
        self.bottleneck = block(width, width * 2)
        self.up_transpose = nn.ModuleList()
        self.up = nn.ModuleList()
        for _ in range(num_pool_layers):
            self.up_transpose.append(TransposeConvBlock(width * 2, width, activation))
            self.up.append(block(width * 2, width))
            width //= 2
        self.output = nn.Conv2d(channels, 1, kernel_size=1)
        lecun_normal_(self.output.weight, channels)
        nn.init.zeros_(self.output.bias)

    def forward(self, inputs: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        x = inputs.unsqueeze(1)
        skips = []
        for block in self.down:
            x = block(x, dropout_rate)
            skips.append(x)
            x = F.avg_pool2d(x, kernel_size=2, stride=2)
        x = self.bottleneck(x, dropout_rate)
        for transpose, block in zip(self.up_transpose, self.up, strict=True):
            x = torch.cat([transpose(x), skips.pop()], dim=1)
            x = block(x, dropout_rate)
        return self.output(x).squeeze(1)


class FastMriMiniWorkload(TorchArrays, BaseFastMriMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = UNet(self.num_channels, self.num_pool_layers, self.activation, self.normalization)
        model = model.to(self.device)
        self.record_param_shapes(model)
        return model, None

    def param_type(self, name: str) -> ParameterType:
        """Every kernel (3x3, transpose 2x2 and the final 1x1) is a conv weight, as AlgoPerf types them;
        the layer-norm variant adds layer-norm scales and biases."""
        if ".norm_" in name:
            return ParameterType.LAYER_NORM_BIAS if name.endswith("bias") else ParameterType.LAYER_NORM_SCALE
        return ParameterType.BIAS if name.endswith("bias") else ParameterType.CONV_WEIGHT

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith("output.")

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: dict[str, Any],
        model_state: Any,
        mode: ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[torch.Tensor, Any]:
        train = mode == ForwardPassMode.TRAIN
        params.train(train)
        with torch.set_grad_enabled(train):
            outputs = params(augmented_and_preprocessed_input_batch["inputs"], float(dropout_rate or 0.0))
        return outputs, model_state

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """Per-example mean absolute error over the image; label smoothing does not apply (AlgoPerf)."""
        per_example = (logits_batch - label_batch).abs().mean(dim=tuple(range(1, logits_batch.ndim)))
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = torch.tensor(len(per_example), device=per_example.device)
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    def eval_batch(self, params: nn.Module, model_state: Any, batch: dict[str, Any]) -> dict[str, float]:
        outputs, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
        loss = self.loss_fn(batch["targets"], outputs)["summed"]
        host = {key: value.cpu().numpy() for key, value in batch.items()}
        ssim = batch_ssim(outputs.cpu().numpy(), host)
        return {"ssim": float(np.sum(ssim)), "loss": float(loss)}


class FastMriMiniModelSizeWorkload(ModelSizeVariant, FastMriMiniWorkload):
    """fastmri_mini_model_size: see ``workload.ModelSizeVariant``."""


class FastMriMiniTanhWorkload(TanhVariant, FastMriMiniWorkload):
    """fastmri_mini_tanh: see ``workload.TanhVariant``."""


class FastMriMiniLayerNormWorkload(LayerNormVariant, FastMriMiniWorkload):
    """fastmri_mini_layernorm: see ``workload.LayerNormVariant``."""
