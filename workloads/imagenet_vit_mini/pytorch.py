"""imagenet_vit_mini in PyTorch: a small pre-layernorm ViT with explicit multi-head attention.

Initialisation matches jax.py (AlgoPerf's ViT scheme): Xavier-uniform kernels with zero biases in the
attention and MLP layers, a LeCun-normal patch embedding, position embeddings from N(0, 1/WIDTH), unit
layernorms and a zero head. Attention is written out (separate query, key, value and output projections,
``(batch, tokens, heads, head_dim)`` layout) so the weights map one to one onto the Flax model's.
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

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = inputs.shape
        head_dim = width // self.num_heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, tokens, self.num_heads, head_dim)

        query, key, value = heads(self.query(inputs)), heads(self.key(inputs)), heads(self.value(inputs))
        scores = torch.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(head_dim)
        mixed = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), value)
        return self.out(mixed.reshape(batch, tokens, width))


class EncoderBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPSILON)
        self.attention = Attention(WIDTH, NUM_HEADS)
        self.ln2 = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPSILON)
        self.mlp_in = xavier_linear(WIDTH, MLP_DIM)
        self.mlp_out = xavier_linear(MLP_DIM, WIDTH)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        drop = lambda y: F.dropout(y, dropout_rate, self.training)  # noqa: E731
        x = x + drop(self.attention(self.ln1(x)))
        return x + drop(self.mlp_out(drop(F.gelu(self.mlp_in(self.ln2(x))))))


class ViT(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(in_channels, WIDTH, PATCH_SIZE, stride=PATCH_SIZE)
        lecun_normal_(self.patch_embedding.weight)
        nn.init.zeros_(self.patch_embedding.bias)
        self.pos_embedding = nn.Parameter(torch.randn(1, NUM_TOKENS, WIDTH) / math.sqrt(WIDTH))
        self.blocks = nn.ModuleList(EncoderBlock() for _ in range(DEPTH))
        self.encoder_norm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPSILON)
        self.head = nn.Linear(WIDTH, num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        """``inputs`` are NHWC; tokens run row by row over the patch grid, as Flax's reshape orders them."""
        x = self.patch_embedding(inputs.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)
        x = F.dropout(x + self.pos_embedding, dropout_rate, self.training)
        for block in self.blocks:
            x = block(x, dropout_rate)
        return self.head(self.encoder_norm(x).mean(dim=1))


class ImagenetVitMiniWorkload(TorchImageClassifier, BaseImagenetVitMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = ViT(self.num_classes).to(self.device)
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
