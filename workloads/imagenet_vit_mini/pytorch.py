"""imagenet_vit_mini in PyTorch: a small pre-layernorm ViT with explicit multi-head attention.

Initialisation matches jax.py (AlgoPerf's ViT scheme): Xavier-uniform kernels with zero biases in the
attention and MLP layers, a LeCun-normal patch embedding, position embeddings from N(0, 1/WIDTH), unit
layernorms and a zero head. Attention is written out (separate query, key, value and output projections,
``(batch, tokens, heads, head_dim)`` layout) so the weights map one to one onto the Flax model's. The
variants' switches (GLU, post-layernorm, MAP head; workload.py documents them) are ``ViT``'s arguments.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.imagenet_resnet_mini.common_pytorch import TorchImageClassifier, lecun_normal_
from algoperf_workloads.imagenet_vit_mini.workload import (
    DEPTH,
    LAYER_NORM_EPSILON,
    MLP_DIM,
    NUM_HEADS,
    NUM_TOKENS,
    PATCH_SIZE,
    WIDTH,
    BaseImagenetVitMiniWorkload,
    GluVariant,
    MapVariant,
    PostLayerNormVariant,
)
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.spec import ForwardPassMode, ParameterType


def xavier_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Attention(nn.Module):
    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = xavier_linear(width, width)
        self.key = xavier_linear(width, width)
        self.value = xavier_linear(width, width)
        self.out = xavier_linear(width, width)

    def forward(self, inputs: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Queries from ``inputs``; keys and values from ``context`` (the MAP head's) or ``inputs``."""
        context = inputs if context is None else context
        batch, tokens, width = inputs.shape
        head_dim = width // self.num_heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, x.shape[1], self.num_heads, head_dim)

        query, key, value = heads(self.query(inputs)), heads(self.key(context)), heads(self.value(context))
        scores = torch.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(head_dim)
        mixed = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), value)
        return self.out(mixed.reshape(batch, tokens, width))


def mlp(layers: nn.Module, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
    """The GELU MLP of a block or of the MAP head, on ``layers``' ``mlp_in``, ``mlp_glu``, ``mlp_out``: with
    the GLU variant the GELU output is gated by ``mlp_glu`` of itself (AlgoPerf's GLU)."""
    hidden = F.gelu(layers.mlp_in(x))
    if layers.mlp_glu is not None:
        hidden = hidden * layers.mlp_glu(hidden)
    return layers.mlp_out(F.dropout(hidden, dropout_rate, layers.training))


class EncoderBlock(nn.Module):
    def __init__(self, use_glu: bool = False, use_post_layer_norm: bool = False) -> None:
        super().__init__()
        self.use_post_layer_norm = use_post_layer_norm
        self.ln1 = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPSILON)
        self.attention = Attention(WIDTH, NUM_HEADS)
        self.ln2 = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPSILON)
        self.mlp_in = xavier_linear(WIDTH, MLP_DIM)
        self.mlp_glu = xavier_linear(MLP_DIM, MLP_DIM) if use_glu else None
        self.mlp_out = xavier_linear(MLP_DIM, WIDTH)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        drop = lambda y: F.dropout(y, dropout_rate, self.training)  # noqa: E731
        if self.use_post_layer_norm:
            x = self.ln1(x + drop(self.attention(x)))
            return self.ln2(x + drop(mlp(self, x, dropout_rate)))
        x = x + drop(self.attention(self.ln1(x)))
        return x + drop(mlp(self, self.ln2(x), dropout_rate))


class MapHead(nn.Module):
    """AlgoPerf's multihead attention pooling: a learned probe attends over the tokens, then a
    pre-layernorm MLP residual; returns the probe's vector."""

    def __init__(self) -> None:
        super().__init__()
        # Flax's xavier_uniform for a (1, 1, WIDTH) parameter: fan_in 1, fan_out WIDTH (torch's
        # xavier_uniform_ would count this shape's fans otherwise).
        limit = math.sqrt(6.0 / (1 + WIDTH))
        self.probe = nn.Parameter(torch.empty(1, 1, WIDTH).uniform_(-limit, limit))
        self.attention = Attention(WIDTH, NUM_HEADS)
        self.ln = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPSILON)
        self.mlp_in = xavier_linear(WIDTH, MLP_DIM)
        self.mlp_glu = None  # AlgoPerf's MAP head has a plain MLP in every variant
        self.mlp_out = xavier_linear(MLP_DIM, WIDTH)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        pooled = self.attention(self.probe.expand(x.shape[0], -1, -1), x)
        return (pooled + mlp(self, self.ln(pooled), dropout_rate))[:, 0]


class ViT(nn.Module):
    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        use_glu: bool = False,
        use_post_layer_norm: bool = False,
        use_map: bool = False,
    ) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(in_channels, WIDTH, PATCH_SIZE, stride=PATCH_SIZE)
        lecun_normal_(self.patch_embedding.weight)
        nn.init.zeros_(self.patch_embedding.bias)
        self.pos_embedding = nn.Parameter(torch.randn(1, NUM_TOKENS, WIDTH) / math.sqrt(WIDTH))
        self.blocks = nn.ModuleList(EncoderBlock(use_glu, use_post_layer_norm) for _ in range(DEPTH))
        # Post-layernorm blocks end normalised: AlgoPerf's post-LN encoder has no final layernorm.
        self.encoder_norm = None if use_post_layer_norm else nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPSILON)
        self.head = nn.Linear(WIDTH, num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.map = MapHead() if use_map else None  # created last: the base model's init is unchanged

    def forward(self, inputs: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        """``inputs`` are NHWC; tokens run row by row over the patch grid, as Flax's reshape orders them."""
        x = self.patch_embedding(inputs.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)
        x = F.dropout(x + self.pos_embedding, dropout_rate, self.training)
        for block in self.blocks:
            x = block(x, dropout_rate)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return self.head(x.mean(dim=1) if self.map is None else self.map(x, dropout_rate))


class ImagenetVitMiniWorkload(TorchImageClassifier, BaseImagenetVitMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = ViT(
            self.num_classes,
            use_glu=self.use_glu,
            use_post_layer_norm=self.use_post_layer_norm,
            use_map=self.use_map,
        ).to(self.device)
        self.record_param_shapes(model)
        return model, None

    def param_type(self, name: str) -> ParameterType:
        parts = name.split(".")
        module, leaf = (parts[-2] if len(parts) > 1 else ""), parts[-1]
        if leaf == "pos_embedding":
            return ParameterType.EMBEDDING
        if module == "patch_embedding":
            return ParameterType.CONV_WEIGHT if leaf == "weight" else ParameterType.BIAS
        if module.startswith("ln") or module == "encoder_norm":
            return ParameterType.LAYER_NORM_SCALE if leaf == "weight" else ParameterType.LAYER_NORM_BIAS
        if "attention" in parts:
            if leaf == "bias":
                return ParameterType.ATTENTION_BIAS
            return ATTENTION_TYPES[module]
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
        """Dropout acts in train mode only; its mask is seeded from ``rng`` so a run is reproducible."""
        training = mode == ForwardPassMode.TRAIN
        rate = float(dropout_rate or 0.0)
        if training and rate > 0.0 and rng is not None:
            torch.manual_seed(to_seed(rng))
        params.train(training)
        with torch.set_grad_enabled(training):
            return params(augmented_and_preprocessed_input_batch["inputs"], rate), model_state


ATTENTION_TYPES = {
    "query": ParameterType.ATTENTION_Q,
    "key": ParameterType.ATTENTION_K,
    "value": ParameterType.ATTENTION_V,
    "out": ParameterType.ATTENTION_OUT,
}


class ImagenetVitMiniGluWorkload(GluVariant, ImagenetVitMiniWorkload):
    """AlgoPerf's ImagenetVitGluWorkload."""


class ImagenetVitMiniPostLayerNormWorkload(PostLayerNormVariant, ImagenetVitMiniWorkload):
    """AlgoPerf's ImagenetVitPostLNWorkload."""


class ImagenetVitMiniMapWorkload(MapVariant, ImagenetVitMiniWorkload):
    """AlgoPerf's ImagenetVitMapWorkload."""
