"""ogbg_mini in PyTorch: AlgoPerf's GraphNetwork GNN on flat graph batches, with index_add_ segment sums.

Layers are re-initialised as Flax's defaults (lecun-normal kernels, zero biases, unit layer-norm scales) and
the layer norm epsilon matches Flax's, so both frameworks start from the same distribution; parameter names
mirror the Flax tree (``layer_0.edge_mlp.dense_0`` is ``layer_0/edge_mlp/dense_0``) for the parity test.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.ogbg_mini.data import EDGE_FEATURES, NODE_FEATURES
from algoperf_workloads.ogbg_mini.workload import (
    DEFAULT_DROPOUT_RATE,
    LAYER_NORM_EPSILON,
    BaseOgbgMiniWorkload,
    GeluVariant,
    ModelSizeVariant,
    SiluVariant,
)
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.frameworks.pytorch_adapter import TorchArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType


def dense(in_features: int, out_features: int) -> nn.Linear:
    """A Linear layer initialised as Flax's Dense: truncated normal with variance 1/fan_in, zero bias."""
    layer = nn.Linear(in_features, out_features)
    stddev = math.sqrt(1.0 / in_features) / 0.87962566103423978
    nn.init.trunc_normal_(layer.weight, std=stddev, a=-2 * stddev, b=2 * stddev)
    nn.init.zeros_(layer.bias)
    return layer


def segment_sum(values: torch.Tensor, segments: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Sum the rows of ``values`` into ``num_segments`` rows, as jax.ops.segment_sum does."""
    out = values.new_zeros((num_segments, values.shape[1]))
    return out.index_add_(0, segments, values)


# The workload's ``activation`` names; GELU's tanh approximation is flax.linen.gelu's default, and AlgoPerf's
# PyTorch GNN picks it to match.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": functools.partial(F.gelu, approximate="tanh"),
    "silu": F.silu,
}


class MLP(nn.Module):
    """AlgoPerf's ``_make_mlp``: per hidden size, Dense -> LayerNorm -> activation -> dropout."""

    def __init__(self, in_features: int, hidden_dims: tuple[int, ...], activation: str) -> None:
        super().__init__()
        self.depth = len(hidden_dims)
        self.activation = ACTIVATIONS[activation]
        for k, width in enumerate(hidden_dims):
            self.add_module(f"dense_{k}", dense(in_features, width))
            self.add_module(f"norm_{k}", nn.LayerNorm(width, eps=LAYER_NORM_EPSILON))
            in_features = width

    def forward(self, inputs: list[torch.Tensor], dropout_rate: float) -> torch.Tensor:
        x = torch.cat(inputs, dim=-1)
        for k in range(self.depth):
            x = getattr(self, f"norm_{k}")(getattr(self, f"dense_{k}")(x))
            x = self.activation(x)
            if self.training and dropout_rate > 0.0:
                x = F.dropout(x, p=dropout_rate)
        return x


class GraphNetwork(nn.Module):
    """One jraph.GraphNetwork step, as AlgoPerf's ogbg configures it: each edge from [edge, sender node,
    receiver node, its graph's global]; each node from [node, summed outgoing edges, summed incoming edges,
    global] (jraph passes both sums; edges come in both directions); each global from [summed nodes, summed
    edges, global]. No residuals, as in AlgoPerf."""

    def __init__(
        self, node_dim: int, edge_dim: int, global_dim: int, hidden_dims: tuple[int, ...], activation: str
    ) -> None:
        super().__init__()
        width = hidden_dims[-1]
        self.edge_mlp = MLP(edge_dim + 2 * node_dim + global_dim, hidden_dims, activation)
        self.node_mlp = MLP(node_dim + 2 * width + global_dim, hidden_dims, activation)
        self.global_mlp = MLP(2 * width + global_dim, hidden_dims, activation)

    def forward(
        self,
        nodes: torch.Tensor,
        edges: torch.Tensor,
        globals_: torch.Tensor,
        graph: dict[str, torch.Tensor],
        dropout_rate: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        senders, receivers = graph["senders"], graph["receivers"]
        node_graph, edge_graph = graph["node_graph_index"], graph["edge_graph_index"]
        num_nodes, num_graphs = nodes.shape[0], globals_.shape[0]
        gather = torch.index_select  # its backward is an index_add_, cheaper than indexing's index_put_
        edges = self.edge_mlp(
            [edges, gather(nodes, 0, senders), gather(nodes, 0, receivers), gather(globals_, 0, edge_graph)],
            dropout_rate,
        )
        sent = segment_sum(edges, senders, num_nodes)
        received = segment_sum(edges, receivers, num_nodes)
        nodes = self.node_mlp([nodes, sent, received, gather(globals_, 0, node_graph)], dropout_rate)
        node_totals = segment_sum(nodes, node_graph, num_graphs)
        edge_totals = segment_sum(edges, edge_graph, num_graphs)
        globals_ = self.global_mlp([node_totals, edge_totals, globals_], dropout_rate)
        return nodes, edges, globals_


class GNN(nn.Module):
    """AlgoPerf's ogbg GNN: encoders, message-passing steps, a decoder from the globals (zeros at first).
    Its sizes and activation are the workload's switches (``BaseOgbgMiniWorkload``)."""

    def __init__(
        self,
        num_tasks: int,
        latent_dim: int,
        hidden_dims: tuple[int, ...],
        num_message_passing_steps: int,
        activation: str,
    ) -> None:
        super().__init__()
        self.num_tasks, self.num_steps = num_tasks, num_message_passing_steps
        self.node_embedding = dense(NODE_FEATURES, latent_dim)
        self.edge_embedding = dense(EDGE_FEATURES, latent_dim)
        dims = (latent_dim, latent_dim, num_tasks)
        for step in range(num_message_passing_steps):
            self.add_module(f"layer_{step}", GraphNetwork(*dims, hidden_dims, activation))
            dims = (hidden_dims[-1],) * 3
        self.decoder = dense(hidden_dims[-1], num_tasks)

    def forward(self, graph: dict[str, torch.Tensor], dropout_rate: float) -> torch.Tensor:
        nodes = self.node_embedding(graph["nodes"])
        edges = self.edge_embedding(graph["edges"])
        globals_ = nodes.new_zeros((graph["graph_mask"].shape[0], self.num_tasks))
        for step in range(self.num_steps):
            nodes, edges, globals_ = getattr(self, f"layer_{step}")(
                nodes, edges, globals_, graph, dropout_rate
            )
        return self.decoder(globals_)


class OgbgMiniWorkload(TorchArrays, BaseOgbgMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = GNN(
            self.num_tasks, self.latent_dim, self.hidden_dims, self.num_message_passing_steps, self.activation
        ).to(self.device)
        self.record_param_shapes(model)
        return model, None

    def param_type(self, name: str) -> ParameterType:
        """Dense weights and biases, layer-norm scales and biases: the types AlgoPerf's ogbg reports."""
        is_norm = ".norm_" in name
        if name.endswith("weight"):
            return ParameterType.LAYER_NORM_SCALE if is_norm else ParameterType.WEIGHT
        return ParameterType.LAYER_NORM_BIAS if is_norm else ParameterType.BIAS

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith("decoder.")

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
        rate = DEFAULT_DROPOUT_RATE if dropout_rate is None else float(dropout_rate)
        params.train(mode == ForwardPassMode.TRAIN)
        with torch.set_grad_enabled(mode == ForwardPassMode.TRAIN):
            return params(augmented_and_preprocessed_input_batch, rate), model_state

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """Sigmoid cross-entropy per (graph, task), zero where ``mask_batch`` is 0; ``n_valid_examples``
        counts the present labels, as AlgoPerf's ogbg does (see ``workload.sigmoid_cross_entropy``)."""
        mask = torch.ones_like(logits_batch) if mask_batch is None else mask_batch
        smoothed = (1.0 - label_smoothing) * label_batch + label_smoothing / label_batch.shape[-1]
        losses = F.binary_cross_entropy_with_logits(logits_batch, smoothed, reduction="none")
        per_example = torch.where(mask > 0, losses, torch.zeros_like(losses))
        return {"summed": per_example.sum(), "n_valid_examples": mask.sum(), "per_example": per_example}

    def eval_batch(self, params: nn.Module, model_state: Any, batch: dict[str, Any]) -> dict[str, Any]:
        logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
        return self.eval_outputs(logits.cpu().numpy(), {k: batch[k].cpu() for k in EVAL_KEYS})


EVAL_KEYS = ("graph_mask", "targets", "weights")


class OgbgMiniGeluWorkload(GeluVariant, OgbgMiniWorkload):
    """ogbg_mini_gelu: see ``workload.GeluVariant``."""


class OgbgMiniSiluWorkload(SiluVariant, OgbgMiniWorkload):
    """ogbg_mini_silu: see ``workload.SiluVariant``."""


class OgbgMiniModelSizeWorkload(ModelSizeVariant, OgbgMiniWorkload):
    """ogbg_mini_model_size: see ``workload.ModelSizeVariant``."""
