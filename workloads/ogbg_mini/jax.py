"""ogbg_mini in JAX/Flax: AlgoPerf's GraphNetwork GNN on flat graph batches, with jax.ops.segment_sum.

Module names mirror the PyTorch model (``layer_0/edge_mlp/dense_0`` is ``layer_0.edge_mlp.dense_0``). The
dropout rate arrives at call time and may be traced (the AdamW submission jits it as an argument), so dropout
is a small module that takes the rate as an array, and ``model_fn`` picks the model with or without dropout
masks by ``lax.cond`` on the rate (AlgoPerf's own Dropout draws masks even at rate 0).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from algoperf_workloads.ogbg_mini.data import EDGE_FEATURES, NODE_FEATURES
from algoperf_workloads.ogbg_mini.workload import (
    DEFAULT_DROPOUT_RATE,
    LAYER_NORM_EPSILON,
    BaseOgbgMiniWorkload,
    GeluVariant,
    ModelSizeVariant,
    SiluVariant,
)
from pytest_algoperf.frameworks.jax_adapter import JaxArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

Graph = dict[str, jax.Array]
# The workload's ``activation`` names; flax.linen.gelu is the tanh approximation, as in AlgoPerf.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


class Dropout(nn.Module):
    """Inverted dropout whose rate may be a traced scalar (flax.linen.Dropout needs a Python float)."""

    @nn.compact
    def __call__(self, x: jax.Array, rate: Any, train: bool) -> jax.Array:
        if not train:
            return x
        keep = 1.0 - rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, x.shape)
        # Scaling after the select keeps gradients finite at rate 1 (keep 0), as AlgoPerf guards.
        return jnp.where(mask, x, 0.0) * jnp.where(keep > 0.0, 1.0 / keep, 0.0)


class MLP(nn.Module):
    """AlgoPerf's ``_make_mlp``: per hidden size, Dense -> LayerNorm -> activation -> dropout."""

    hidden_dims: tuple[int, ...]
    activation: str

    @nn.compact
    def __call__(self, inputs: list[jax.Array], dropout_rate: Any, train: bool) -> jax.Array:
        x = jnp.concatenate(inputs, axis=-1)
        for k, width in enumerate(self.hidden_dims):
            x = nn.Dense(width, name=f"dense_{k}")(x)
            x = nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, name=f"norm_{k}")(x)
            x = Dropout()(ACTIVATIONS[self.activation](x), dropout_rate, train)
        return x


class GraphNetwork(nn.Module):
    """One jraph.GraphNetwork step, as AlgoPerf's ogbg configures it (see the PyTorch GraphNetwork)."""

    hidden_dims: tuple[int, ...]
    activation: str

    @nn.compact
    def __call__(
        self,
        nodes: jax.Array,
        edges: jax.Array,
        globals_: jax.Array,
        graph: Graph,
        dropout_rate: Any,
        train: bool,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        senders, receivers = graph["senders"], graph["receivers"]
        node_graph, edge_graph = graph["node_graph_index"], graph["edge_graph_index"]
        num_nodes, num_graphs = nodes.shape[0], globals_.shape[0]
        mlp = functools.partial(MLP, self.hidden_dims, self.activation)
        edges = mlp(name="edge_mlp")(
            [edges, nodes[senders], nodes[receivers], globals_[edge_graph]], dropout_rate, train
        )
        sent = jax.ops.segment_sum(edges, senders, num_nodes)
        received = jax.ops.segment_sum(edges, receivers, num_nodes)
        nodes = mlp(name="node_mlp")([nodes, sent, received, globals_[node_graph]], dropout_rate, train)
        node_totals = jax.ops.segment_sum(nodes, node_graph, num_graphs)
        edge_totals = jax.ops.segment_sum(edges, edge_graph, num_graphs)
        globals_ = mlp(name="global_mlp")([node_totals, edge_totals, globals_], dropout_rate, train)
        return nodes, edges, globals_


class GNN(nn.Module):
    """AlgoPerf's ogbg GNN: encoders, message-passing steps, a decoder from the globals (zeros at first).
    Its sizes and activation are the workload's switches (``BaseOgbgMiniWorkload``)."""

    num_tasks: int
    latent_dim: int
    hidden_dims: tuple[int, ...]
    num_message_passing_steps: int
    activation: str

    @nn.compact
    def __call__(self, graph: Graph, dropout_rate: Any, train: bool) -> jax.Array:
        nodes = nn.Dense(self.latent_dim, name="node_embedding")(graph["nodes"])
        edges = nn.Dense(self.latent_dim, name="edge_embedding")(graph["edges"])
        globals_ = jnp.zeros((graph["graph_mask"].shape[0], self.num_tasks), nodes.dtype)
        for step in range(self.num_message_passing_steps):
            layer = GraphNetwork(self.hidden_dims, self.activation, name=f"layer_{step}")
            nodes, edges, globals_ = layer(nodes, edges, globals_, graph, dropout_rate, train)
        return nn.Dense(self.num_tasks, name="decoder")(globals_)


def example_graph() -> Graph:
    """A one-graph batch with one edge: enough for Flax to infer every shape at init."""
    return {
        "nodes": jnp.zeros((2, NODE_FEATURES), jnp.float32),
        "edges": jnp.zeros((1, EDGE_FEATURES), jnp.float32),
        "senders": jnp.zeros((1,), jnp.int32),
        "receivers": jnp.zeros((1,), jnp.int32),
        "node_graph_index": jnp.zeros((2,), jnp.int32),
        "edge_graph_index": jnp.zeros((1,), jnp.int32),
        "graph_mask": jnp.ones((1,), bool),
    }


class OgbgMiniWorkload(JaxArrays, BaseOgbgMiniWorkload):
    @cached_property
    def _model(self) -> GNN:
        return GNN(
            self.num_tasks, self.latent_dim, self.hidden_dims, self.num_message_passing_steps, self.activation
        )

    @cached_property
    def _compiled_inits(self) -> dict[Any, Any]:
        return {}

    def init_model_fn(self, rng: Any) -> tuple[Any, None]:
        """Flax's init, compiled once per key type at XLA's lowest optimisation level: it runs once, and
        at the default level compiling its ~30 truncated-normal draws takes 2-3 s of CPU (this halves it).
        The example graph is an argument, not a closure: XLA would constant-fold a constant graph's sums."""
        graph = example_graph()
        signature = (jnp.shape(rng), jnp.result_type(rng))
        if signature not in self._compiled_inits:
            init = jax.jit(lambda key, graph: self._model.init(key, graph, 0.0, False)["params"])
            self._compiled_inits[signature] = init.lower(rng, graph).compile(
                compiler_options={"xla_backend_optimization_level": 0}
            )
        params = self._compiled_inits[signature](rng, graph)
        self.record_param_shapes(params)
        return params, None

    def param_type(self, names: tuple[str, ...]) -> ParameterType:
        """Dense kernels and biases, layer-norm scales and biases: the types AlgoPerf's ogbg reports."""
        is_norm = names[-2].startswith("norm_")
        if names[-1] in ("kernel", "scale"):
            return ParameterType.LAYER_NORM_SCALE if is_norm else ParameterType.WEIGHT
        return ParameterType.LAYER_NORM_BIAS if is_norm else ParameterType.BIAS

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith("decoder")

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
        rate = DEFAULT_DROPOUT_RATE if dropout_rate is None else dropout_rate
        batch = augmented_and_preprocessed_input_batch

        def apply(dropout: bool) -> jax.Array:
            rngs = {"dropout": rng} if dropout else None
            return self._model.apply({"params": params}, batch, rate, dropout, rngs=rngs)

        if mode != ForwardPassMode.TRAIN:
            return apply(False), model_state
        try:
            dropout = bool(rate > 0.0)
        except jax.errors.ConcretizationTypeError:
            # A traced rate (the submission jits it as an argument): train mode differs from eval mode only
            # by dropout, whose masks cost ~1/4 of a CPU step even at rate 0, so one cond skips them then.
            return jax.lax.cond(rate > 0.0, lambda: apply(True), lambda: apply(False)), model_state
        return apply(dropout), model_state

    def loss_fn(
        self,
        label_batch: jax.Array,
        logits_batch: jax.Array,
        mask_batch: jax.Array | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """Sigmoid cross-entropy per (graph, task), zero where ``mask_batch`` is 0; ``n_valid_examples``
        counts the present labels, as AlgoPerf's ogbg does (see ``workload.sigmoid_cross_entropy``)."""
        mask = jnp.ones_like(logits_batch) if mask_batch is None else mask_batch
        smoothed = (1.0 - label_smoothing) * label_batch + label_smoothing / label_batch.shape[-1]
        losses = (
            jnp.maximum(logits_batch, 0.0)
            - logits_batch * smoothed
            + jnp.log1p(jnp.exp(-jnp.abs(logits_batch)))
        )
        per_example = jnp.where(mask > 0, losses, 0.0)
        return {"summed": per_example.sum(), "n_valid_examples": mask.sum(), "per_example": per_example}

    @cached_property
    def _logits_jit(self) -> Any:
        def logits(params: Any, model_state: Any, batch: dict[str, Any]) -> jax.Array:
            return self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)[0]

        return jax.jit(logits)

    def eval_batch(self, params: Any, model_state: Any, batch: dict[str, Any]) -> dict[str, Any]:
        return self.eval_outputs(jax.device_get(self._logits_jit(params, model_state, batch)), batch)


class OgbgMiniGeluWorkload(GeluVariant, OgbgMiniWorkload):
    """ogbg_mini_gelu: see ``workload.GeluVariant``."""


class OgbgMiniSiluWorkload(SiluVariant, OgbgMiniWorkload):
    """ogbg_mini_silu: see ``workload.SiluVariant``."""


class OgbgMiniModelSizeWorkload(ModelSizeVariant, OgbgMiniWorkload):
    """ogbg_mini_model_size: see ``workload.ModelSizeVariant``."""
