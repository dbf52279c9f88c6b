"""imagenet_resnet_mini in PyTorch: a small ResNet whose batch-norm statistics live in module buffers.

Initialisation matches jax.py: convolutions He-normal over fan_out (``kaiming_normal_``), batch-norm scales 1
and biases 0 except the last scale of each block, the workload's ``bn_init_scale`` (0, AlgoPerf's choice:
every block starts as the identity; 8 in the large-bn-init variant),
and a head drawn from N(0, 0.01^2) with a zero bias, as AlgoPerf's ResNet heads are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.imagenet_resnet_mini.common_pytorch import TorchImageClassifier
from algoperf_workloads.imagenet_resnet_mini.workload import (
    STAGE_STRIDES,
    STAGE_WIDTHS,
    BaseImagenetResNetMiniWorkload,
    GeluVariant,
    LargeBnInitVariant,
    SiluVariant,
)
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.spec import ForwardPassMode, ParameterType

HEAD_INIT_STDDEV = 0.01
# The workload's ``activation`` names; GELU's tanh approximation matches flax.linen.gelu, as in AlgoPerf.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": functools.partial(F.gelu, approximate="tanh"),
    "silu": F.silu,
}


class BatchNorm(nn.BatchNorm2d):
    """``BatchNorm2d`` (momentum 0.1, eps 1e-5) whose running statistics can be frozen in train mode.

    With ``update_statistics`` False a train-mode forward still normalises by the batch's statistics but
    leaves the running ones (and ``num_batches_tracked``) untouched: AlgoPerf's ``update_batch_norm=False``.
    """

    def __init__(self, channels: int, init_scale: float = 1.0) -> None:
        super().__init__(channels, eps=1e-5, momentum=0.1)
        self.update_statistics = True
        nn.init.constant_(self.weight, init_scale)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.training and not self.update_statistics:
            return F.batch_norm(inputs, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return super().forward(inputs)


def conv(in_channels: int, out_channels: int, kernel: int, stride: int) -> nn.Conv2d:
    layer = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False)
    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    return layer


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (projected where the shape changes)."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, activation: str, bn_init_scale: float
    ) -> None:
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self.conv1 = conv(in_channels, out_channels, 3, stride)
        self.bn1 = BatchNorm(out_channels)
        self.conv2 = conv(out_channels, out_channels, 3, 1)
        self.bn2 = BatchNorm(out_channels, init_scale=bn_init_scale)
        self.project = stride != 1 or in_channels != out_channels
        if self.project:
            self.proj_conv = conv(in_channels, out_channels, 1, stride)
            self.proj_bn = BatchNorm(out_channels)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(self.activation(self.bn1(self.conv1(inputs)))))
        shortcut = self.proj_bn(self.proj_conv(inputs)) if self.project else inputs
        return self.activation(residual + shortcut)


class ResNet(nn.Module):
    """Stem, basic blocks, pooled linear head; ``activation`` and ``bn_init_scale`` are the workload's."""

    def __init__(
        self, num_classes: int, activation: str = "relu", bn_init_scale: float = 0.0, in_channels: int = 3
    ) -> None:
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self.stem_conv = conv(in_channels, STAGE_WIDTHS[0], 3, 1)
        self.stem_bn = BatchNorm(STAGE_WIDTHS[0])
        widths = (STAGE_WIDTHS[0], *STAGE_WIDTHS)
        self.blocks = nn.Sequential(
            *(
                BasicBlock(widths[i], widths[i + 1], stride, activation, bn_init_scale)
                for i, stride in enumerate(STAGE_STRIDES)
            )
        )
        self.head = nn.Linear(STAGE_WIDTHS[-1], num_classes)
        nn.init.normal_(self.head.weight, std=HEAD_INIT_STDDEV)
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` are NHWC, as the pipeline gives them; channels-last memory keeps the permute free."""
        x = inputs.permute(0, 3, 1, 2)
        x = self.activation(self.stem_bn(self.stem_conv(x)))
        x = self.blocks(x)
        return self.head(x.mean(dim=(2, 3)))


class ImagenetResNetMiniWorkload(TorchImageClassifier, BaseImagenetResNetMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = ResNet(self.num_classes, self.activation, self.bn_init_scale).to(self.device)
        self.record_param_shapes(model)
        return model, None

    def param_type(self, name: str) -> ParameterType:
        layer, _, leaf = name.rpartition(".")
        module = layer.rpartition(".")[2]  # stem_bn, bn1, proj_conv, conv2, head ...
        if "bn" in module:
            return ParameterType.BATCH_NORM_SCALE if leaf == "weight" else ParameterType.BATCH_NORM_BIAS
        if "conv" in module:
            return ParameterType.CONV_WEIGHT
        return ParameterType.BIAS if leaf == "bias" else ParameterType.WEIGHT

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
        """Train mode normalises by batch statistics and, if ``update_batch_norm``, moves the running ones;
        eval mode uses the running statistics. ``model_state`` stays None: the statistics are buffers."""
        training = mode == ForwardPassMode.TRAIN
        params.train(training)
        for module in params.modules():
            if isinstance(module, BatchNorm):
                module.update_statistics = update_batch_norm
        with torch.set_grad_enabled(training):
            return params(augmented_and_preprocessed_input_batch["inputs"]), model_state


class ImagenetResNetMiniSiluWorkload(SiluVariant, ImagenetResNetMiniWorkload):
    """imagenet_resnet_mini_silu: see ``workload.SiluVariant``."""


class ImagenetResNetMiniGeluWorkload(GeluVariant, ImagenetResNetMiniWorkload):
    """imagenet_resnet_mini_gelu: see ``workload.GeluVariant``."""


class ImagenetResNetMiniLargeBnInitWorkload(LargeBnInitVariant, ImagenetResNetMiniWorkload):
    """imagenet_resnet_mini_large_bn_init: see ``workload.LargeBnInitVariant``."""
