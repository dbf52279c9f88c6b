"""criteo1tb_mini in PyTorch: DLRM-small, sigmoid cross-entropy, and evaluation returning logits."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.criteo1tb_mini.workload import (
    LAYER_NORM_EPSILON,
    BaseCriteo1TbMiniWorkload,
    EmbedInitVariant,
    LayerNormVariant,
    ResidualVariant,
    embedding_offsets,
)
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.frameworks.pytorch_adapter import TorchArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType


class DlrmSmall(nn.Module):
    """Bottom MLP, one embedding table for all categorical features, dot interactions, top MLP.

    Parameter names mirror the Flax module's (``bottom_0.weight`` is ``bottom_0/kernel`` transposed,
    ``embedding`` is ``embedding``, ``top_norm_1.weight`` is ``top_norm_1/scale``), which keeps the parity
    test's weight mapping short. The variant switches are the base workload's (workload.py documents them).
    """

    def __init__(
        self,
        num_dense_features: int,
        vocab_sizes: Sequence[int],
        embed_dim: int,
        bottom_mlp_dims: Sequence[int],
        top_mlp_dims: Sequence[int],
        use_layer_norm: bool = False,
        use_resnet: bool = False,
        embedding_init_multiplier: float | None = None,
    ) -> None:
        super().__init__()
        if not use_resnet and bottom_mlp_dims[-1] != embed_dim:
            raise ValueError("the bottom MLP must end in the embedding dimension to join the interactions")
        self.num_dense_features = num_dense_features
        self.num_features = len(vocab_sizes)
        self.num_bottom, self.num_top = len(bottom_mlp_dims), len(top_mlp_dims)
        self.use_layer_norm, self.use_resnet = use_layer_norm, use_resnet
        # Parameters are created in the base model's order: the layers' default inits draw from torch's
        # generator, so the base model's initial values stay what they were before the variants existed.
        fan_in = num_dense_features
        for index, fan_out in enumerate(bottom_mlp_dims):
            layer = nn.Linear(fan_in, fan_out)
            limit = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, as AlgoPerf's bottom MLP
            nn.init.uniform_(layer.weight, -limit, limit)
            nn.init.normal_(layer.bias, 0.0, math.sqrt(1.0 / fan_out))
            self.add_module(f"bottom_{index}", layer)
            fan_in = fan_out
        # AlgoPerf's embedding init: uniform in [0, 1) scaled by 1 / sqrt(vocabulary size), or by the
        # embed_init variant's multiplier. The table is the features' vocabularies stacked (workload.py).
        table = torch.rand(sum(vocab_sizes), embed_dim)
        scale = (
            1.0 / math.sqrt(len(table)) if embedding_init_multiplier is None else embedding_init_multiplier
        )
        self.embedding = nn.Parameter(table * scale)
        self.register_buffer("id_offsets", torch.as_tensor(embedding_offsets(vocab_sizes)), persistent=False)
        if use_resnet:  # DLRMResNet: no interactions, the flattened embeddings join the bottom output
            fan_in = bottom_mlp_dims[-1] + self.num_features * embed_dim
        else:
            num_vectors = self.num_features + 1
            rows, cols = torch.triu_indices(num_vectors, num_vectors)
            self.register_buffer("triu_flat", rows * num_vectors + cols, persistent=False)
            fan_in = embed_dim + num_vectors * (num_vectors + 1) // 2
        for index, fan_out in enumerate(top_mlp_dims):
            layer = nn.Linear(fan_in, fan_out)
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / (fan_in + fan_out)))
            nn.init.normal_(layer.bias, 0.0, math.sqrt(1.0 / fan_out))
            self.add_module(f"top_{index}", layer)
            fan_in = fan_out
        if use_layer_norm:
            for index, width in enumerate(bottom_mlp_dims):
                self.add_module(f"bottom_norm_{index}", nn.LayerNorm(width, eps=LAYER_NORM_EPSILON))
            self.embed_norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPSILON)
            for index, width in enumerate(top_mlp_dims[:-1]):
                self.add_module(f"top_norm_{index}", nn.LayerNorm(width, eps=LAYER_NORM_EPSILON))

    def layers(self, prefix: str, count: int) -> list[nn.Linear]:
        return [getattr(self, f"{prefix}_{i}") for i in range(count)]

    def norm(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, name)(x) if self.use_layer_norm else x

    def forward(self, inputs: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        dense = inputs[:, : self.num_dense_features]
        ids = inputs[:, self.num_dense_features :].long()
        for index, layer in enumerate(self.layers("bottom", self.num_bottom)):
            branch = F.relu(layer(dense))
            dense = dense + branch if self.use_resnet and index > 0 else branch
            dense = self.norm(f"bottom_norm_{index}", dense)
        embedded = F.embedding(ids + self.id_offsets, self.embedding)
        embedded = self.norm("embed_norm", embedded)  # (batch, 26, embed_dim)
        if self.use_resnet:
            hidden = torch.cat([dense, embedded.flatten(1)], dim=1)
        else:
            stacked = torch.cat([dense.unsqueeze(1), embedded], dim=1)  # (batch, 27, embed_dim)
            interactions = torch.bmm(stacked, stacked.transpose(1, 2)).flatten(1)[:, self.triu_flat]
            hidden = torch.cat([dense, interactions], dim=1)
        last = self.num_top - 1
        for index, layer in enumerate(self.layers("top", self.num_top)):
            branch = layer(hidden)
            if index < last:
                branch = self.norm(f"top_norm_{index}", F.relu(branch))
            if index == last - 1 and dropout_rate:
                branch = F.dropout(branch, dropout_rate, training=self.training)
            # DLRMResNet: the hidden layers after the first are residual (their widths match).
            hidden = hidden + branch if self.use_resnet and 0 < index < last else branch
        return hidden


class Criteo1TbMiniWorkload(TorchArrays, BaseCriteo1TbMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = DlrmSmall(
            self.num_dense_features,
            self.vocab_sizes,
            self.embed_dim,
            self.bottom_mlp_dims,
            self.top_mlp_dims,
            self.use_layer_norm,
            self.use_resnet,
            self.embedding_init_multiplier,
        ).to(self.device)
        self.record_param_shapes(model)
        return model, None

    def param_type(self, name: str) -> ParameterType:
        if name == "embedding":
            return ParameterType.EMBEDDING
        if "norm" in name:
            return (
                ParameterType.LAYER_NORM_SCALE if name.endswith("weight") else ParameterType.LAYER_NORM_BIAS
            )
        return ParameterType.BIAS if name.endswith("bias") else ParameterType.WEIGHT

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith(f"top_{len(self.top_mlp_dims) - 1}.")

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
        training = mode == ForwardPassMode.TRAIN
        params.train(training)
        if training and dropout_rate:
            torch.manual_seed(to_seed(rng))  # the dropout mask follows the step's key, as in JAX
        with torch.set_grad_enabled(training):
            logits = params(augmented_and_preprocessed_input_batch["inputs"], dropout_rate or 0.0)
        return logits, model_state

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """Sigmoid cross-entropy per example. ``label_smoothing`` is accepted and ignored, as AlgoPerf's
        criteo1tb ignores it: a search space's smoothing is meant for the classification workloads."""
        logits = logits_batch.reshape(-1)
        targets = label_batch.reshape(-1).to(logits.dtype)
        per_example = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        if mask_batch is not None:
            mask = mask_batch.reshape(-1).to(per_example.dtype)
            per_example = per_example * mask
            n_valid = mask.sum()
        else:
            n_valid = torch.tensor(len(per_example), device=per_example.device)
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    def eval_batch(self, params: nn.Module, model_state: Any, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
        return {
            "logits": logits.reshape(-1).cpu().numpy(),
            "targets": batch["targets"].reshape(-1).cpu().numpy(),
        }


class Criteo1TbMiniLayerNormWorkload(LayerNormVariant, Criteo1TbMiniWorkload):
    """AlgoPerf's Criteo1TbDlrmSmallLayerNormWorkload."""


class Criteo1TbMiniResidualWorkload(ResidualVariant, Criteo1TbMiniWorkload):
    """AlgoPerf's Criteo1TbDlrmSmallResNetWorkload."""


class Criteo1TbMiniEmbedInitWorkload(EmbedInitVariant, Criteo1TbMiniWorkload):
    """AlgoPerf's Criteo1TbDlrmSmallEmbedInitWorkload."""
