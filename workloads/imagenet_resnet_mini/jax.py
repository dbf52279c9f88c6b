"""imagenet_resnet_mini in JAX/Flax: the same ResNet as pytorch.py, batch-norm statistics in model_state.

Layer names mirror the PyTorch module (``stem_conv``, ``blocks_0/conv1``, ``blocks_1/proj_bn`` ...) so the
weight mapping in the tests is one rule per layer kind. Padding is explicit (1 pixel each side for 3x3,
none for 1x1) because Flax's ``SAME`` pads a stride-2 convolution asymmetrically, unlike PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from algoperf_workloads.imagenet_resnet_mini.common_jax import JaxImageClassifier, Path, init_key
from algoperf_workloads.imagenet_resnet_mini.images import NUM_CLASSES
from algoperf_workloads.imagenet_resnet_mini.workload import (
    INPUT_SHAPE,
    STAGE_STRIDES,
    STAGE_WIDTHS,
    BaseImagenetResNetMiniWorkload,
    GeluVariant,
    LargeBnInitVariant,
    SiluVariant,
)
from pytest_algoperf.spec import ForwardPassMode, ParameterType

HEAD_INIT_STDDEV = 0.01
he_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # = kaiming_normal_
# The workload's ``activation`` names; flax.linen.gelu is the tanh approximation, as in AlgoPerf.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


def conv(features: int, kernel: int, stride: int, name: str) -> nn.Conv:
    pad = kernel // 2
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=stride,
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        kernel_init=he_normal_fan_out,
        name=name,
    )


# momentum 0.9 here is PyTorch's momentum 0.1: running = 0.9 * running + 0.1 * batch.
BatchNorm = partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5)


class BasicBlock(nn.Module):
    features: int
    stride: int
    activation: str
    bn_init_scale: float

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        norm = partial(BatchNorm, use_running_average=not train)
        x = act(norm(name="bn1")(conv(self.features, 3, self.stride, "conv1")(inputs)))
        last_norm = norm(name="bn2", scale_init=nn.initializers.constant(self.bn_init_scale))
        x = last_norm(conv(self.features, 3, 1, "conv2")(x))
        shortcut = inputs
        if self.stride != 1 or inputs.shape[-1] != self.features:
            shortcut = norm(name="proj_bn")(conv(self.features, 1, self.stride, "proj_conv")(inputs))
        return act(x + shortcut)


class ResNet(nn.Module):
    """Stem, basic blocks, pooled linear head; ``activation`` and ``bn_init_scale`` are the workload's."""

    num_classes: int
    activation: str = "relu"
    bn_init_scale: float = 0.0

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool) -> jax.Array:
        x = conv(STAGE_WIDTHS[0], 3, 1, "stem_conv")(inputs)
        x = ACTIVATIONS[self.activation](BatchNorm(use_running_average=not train, name="stem_bn")(x))
        for index, (width, stride) in enumerate(zip(STAGE_WIDTHS, STAGE_STRIDES, strict=True)):
            block = BasicBlock(width, stride, self.activation, self.bn_init_scale, name=f"blocks_{index}")
            x = block(x, train)
        head = nn.Dense(
            self.num_classes,
            kernel_init=nn.initializers.normal(HEAD_INIT_STDDEV),
            bias_init=nn.initializers.zeros,
            name="head",
        )
        return head(x.mean(axis=(1, 2)))


@cache
def resnet(activation: str, bn_init_scale: float) -> tuple[ResNet, Callable[..., Any]]:
    """One model and one jitted initialiser per process and configuration: every workload instance reuses
    the compilation."""
    model = ResNet(NUM_CLASSES, activation, bn_init_scale)
    return model, jax.jit(partial(model.init, train=False))


class ImagenetResNetMiniWorkload(JaxImageClassifier, BaseImagenetResNetMiniWorkload):
    @property
    def _model(self) -> ResNet:
        return resnet(self.activation, self.bn_init_scale)[0]

    def init_model_fn(self, rng: Any) -> tuple[Any, Any]:
        init_variables = resnet(self.activation, self.bn_init_scale)[1]
        variables = init_variables(init_key(rng), jnp.zeros((1, *INPUT_SHAPE)))
        self.record_param_shapes(variables["params"])
        return variables["params"], variables["batch_stats"]

    def param_type(self, names: Path) -> ParameterType:
        module, leaf = names[-2], names[-1]
        if "bn" in module:
            return ParameterType.BATCH_NORM_SCALE if leaf == "scale" else ParameterType.BATCH_NORM_BIAS
        if "conv" in module:
            return ParameterType.CONV_WEIGHT
        return ParameterType.BIAS if leaf == "bias" else ParameterType.WEIGHT

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
        """Train mode normalises by batch statistics and returns updated running statistics only if
        ``update_batch_norm``; eval mode uses the running statistics (as the PyTorch model does)."""
        variables = {"params": params, "batch_stats": model_state}
        inputs = augmented_and_preprocessed_input_batch["inputs"]
        if mode == ForwardPassMode.TRAIN:
            logits, updates = self._model.apply(variables, inputs, train=True, mutable=["batch_stats"])
            return logits, updates["batch_stats"] if update_batch_norm else model_state
        return self._model.apply(variables, inputs, train=False), model_state


class ImagenetResNetMiniSiluWorkload(SiluVariant, ImagenetResNetMiniWorkload):
    """imagenet_resnet_mini_silu: see ``workload.SiluVariant``."""


class ImagenetResNetMiniGeluWorkload(GeluVariant, ImagenetResNetMiniWorkload):
    """imagenet_resnet_mini_gelu: see ``workload.GeluVariant``."""


class ImagenetResNetMiniLargeBnInitWorkload(LargeBnInitVariant, ImagenetResNetMiniWorkload):
    """imagenet_resnet_mini_large_bn_init: see ``workload.LargeBnInitVariant``."""
