"""wmt_mini in PyTorch: the encoder-decoder Transformer of ``workload.py``, its loss, greedy decoding.

Attention is written out (query, key, value and output projections without biases, ``(batch, heads, tokens,
head_dim)`` layout, masked scores set to the float32 minimum as Flax does) so the weights map one to one onto
the Flax model's; parameter names mirror the Flax tree (``encoder.blocks_0.attention.query.weight`` is
``encoder/blocks_0/attention/query/kernel``, transposed). Initialisation follows AlgoPerf's wmt (see
``workload.py``), so both frameworks start from the same distribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.wmt_mini.data import EOS, PAD
from algoperf_workloads.wmt_mini.workload import (
    BIAS_INIT_STDDEV,
    DEFAULT_DROPOUT_RATE,
    LAYER_NORM_EPSILON,
    MAX_LENGTH,
    MLP_DIM,
    NUM_HEADS,
    NUM_LAYERS,
    WIDTH,
    BaseWmtMiniWorkload,
    TransformerSwitches,
    WmtAttentionTemperature,
    WmtGluTanh,
    WmtPostLayerNorm,
    sinusoidal_positions,
)
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.frameworks.pytorch_adapter import TorchArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

Cache = tuple[torch.Tensor, torch.Tensor]
ATTENTION_TYPES = {
    "query": ParameterType.ATTENTION_Q,
    "key": ParameterType.ATTENTION_K,
    "value": ParameterType.ATTENTION_V,
    "out": ParameterType.ATTENTION_OUT,
}
ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh}  # TransformerSwitches.activation
Tensor = torch.Tensor


def dense(in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
    """AlgoPerf's wmt Dense: Xavier-uniform kernel, N(0, 1e-6) bias."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.normal_(layer.bias, std=BIAS_INIT_STDDEV)
    return layer


def layer_norm() -> nn.LayerNorm:
    return nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPSILON)


class Attention(nn.Module):
    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.query, self.key, self.value, self.out = (dense(WIDTH, WIDTH, bias=False) for _ in range(4))

    @staticmethod
    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], NUM_HEADS, WIDTH // NUM_HEADS).transpose(1, 2)

    def keys_values(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected keys and values, ``(batch, heads, tokens, head_dim)``: what a decoding cache holds."""
        return self.heads(self.key(keys)), self.heads(self.value(keys))

    def attend(
        self,
        queries: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        dropout_rate: float,
    ) -> torch.Tensor:
        """``mask`` (broadcast to ``(batch, 1, queries, keys)``) is True where a query may attend a key."""
        batch, length, _ = queries.shape
        query = self.heads(self.query(queries)) / math.sqrt(WIDTH // NUM_HEADS)
        if self.temperature != 1.0:
            query = query * self.temperature
        scores = query @ key.transpose(-1, -2)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = F.dropout(scores.softmax(dim=-1), dropout_rate, self.training)
        return self.out((weights @ value).transpose(1, 2).reshape(batch, length, WIDTH))

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, dropout_rate: float
    ) -> torch.Tensor:
        return self.attend(queries, *self.keys_values(keys), mask, dropout_rate)


class Block(nn.Module):
    """What encoder and decoder blocks share: the residual wiring, pre- or post-layernorm, and the MLP,
    whose layers the block holds (``blocks_0.mlp_in``, as the Flax tree names them)."""

    def __init__(self, switches: TransformerSwitches) -> None:
        super().__init__()
        self.pre_ln = switches.pre_layer_norm
        self.activation = ACTIVATIONS[switches.activation]
        self.glu = switches.glu

    def add_mlp(self) -> None:
        """Called after the attention layers, so the base model draws its initial weights in order."""
        self.mlp_in, self.mlp_out = dense(WIDTH, MLP_DIM), dense(MLP_DIM, WIDTH)
        if self.glu:
            self.mlp_gate = dense(WIDTH, MLP_DIM)

    def residual(self, x: Tensor, norm: nn.LayerNorm, branch: Callable[[Tensor], Tensor]) -> Tensor:
        """``x + branch(norm(x))`` (pre-layernorm) or ``norm(x + branch(x))`` (post-layernorm)."""
        return x + branch(norm(x)) if self.pre_ln else norm(x + branch(x))

    def mlp(self, y: Tensor, rate: float) -> Tensor:
        """The MLP branch on its (normalised) input: Dense to ``MLP_DIM``, the activation (times the gate
        projection under GLU), dropout, Dense back, dropout (it is a residual branch)."""
        hidden = self.activation(self.mlp_in(y))
        if self.glu:
            hidden = hidden * self.mlp_gate(y)
        hidden = F.dropout(hidden, rate, self.training)
        return F.dropout(self.mlp_out(hidden), rate, self.training)


class EncoderBlock(Block):
    def __init__(self, switches: TransformerSwitches) -> None:
        super().__init__(switches)
        self.ln1, self.attention = layer_norm(), Attention(switches.attention_temperature)
        self.ln2 = layer_norm()
        self.add_mlp()

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rate: float) -> torch.Tensor:
        drop = lambda y: F.dropout(y, rate, self.training)  # noqa: E731
        x = self.residual(x, self.ln1, lambda y: drop(self.attention(y, y, mask, rate)))
        return self.residual(x, self.ln2, lambda y: self.mlp(y, rate))


class DecoderBlock(Block):
    def __init__(self, switches: TransformerSwitches) -> None:
        super().__init__(switches)
        self.ln1, self.self_attention = layer_norm(), Attention(switches.attention_temperature)
        self.ln2, self.cross_attention = layer_norm(), Attention(switches.attention_temperature)
        self.ln3 = layer_norm()
        self.add_mlp()

    def forward(
        self,
        y: torch.Tensor,
        encoded: torch.Tensor,
        self_mask: torch.Tensor,
        cross_mask: torch.Tensor,
        rate: float,
    ) -> torch.Tensor:
        drop = lambda z: F.dropout(z, rate, self.training)  # noqa: E731
        y = self.residual(y, self.ln1, lambda z: drop(self.self_attention(z, z, self_mask, rate)))
        y = self.residual(y, self.ln2, lambda z: drop(self.cross_attention(z, encoded, cross_mask, rate)))
        return self.residual(y, self.ln3, lambda z: self.mlp(z, rate))

    def step(self, y: torch.Tensor, past: Cache | None, cross: Cache, cross_mask: torch.Tensor) -> tuple:
        """One decoding position ``y`` ``(batch, 1, width)`` given the earlier positions' keys and values
        (eval mode: no dropout); returns its output and the keys and values up to and including it."""
        cache: list[Cache] = []

        def self_attend(z: Tensor) -> Tensor:
            key, value = self.self_attention.keys_values(z)
            if past is not None:
                key, value = torch.cat([past[0], key], dim=2), torch.cat([past[1], value], dim=2)
            cache.append((key, value))
            return self.self_attention.attend(z, key, value, None, 0.0)

        y = self.residual(y, self.ln1, self_attend)
        y = self.residual(y, self.ln2, lambda z: self.cross_attention.attend(z, *cross, cross_mask, 0.0))
        return self.residual(y, self.ln3, lambda z: self.mlp(z, 0.0)), cache[0]


class Stack(nn.Module):
    """``NUM_LAYERS`` blocks named ``blocks_<i>`` (as Flax names them) and a final layernorm (pre-layernorm
    only)."""

    def __init__(self, block: type[nn.Module], switches: TransformerSwitches) -> None:
        super().__init__()
        for index in range(NUM_LAYERS):
            self.add_module(f"blocks_{index}", block(switches))
        self.norm = layer_norm() if switches.pre_layer_norm else None

    def final(self, x: Tensor) -> Tensor:
        return x if self.norm is None else self.norm(x)

    def forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        for index in range(NUM_LAYERS):
            x = getattr(self, f"blocks_{index}")(x, *args)
        return self.final(x)


def shift_right(targets: torch.Tensor) -> torch.Tensor:
    return F.pad(targets, (1, 0), value=PAD)[:, :-1]


class Transformer(nn.Module):
    def __init__(self, vocab_size: int, switches: TransformerSwitches | None = None) -> None:
        super().__init__()
        switches = switches or TransformerSwitches()
        self.shared_embedding = nn.Embedding(vocab_size, WIDTH)
        nn.init.normal_(self.shared_embedding.weight, std=1.0)
        self.encoder = Stack(EncoderBlock, switches)
        self.decoder = Stack(DecoderBlock, switches)
        self.register_buffer("positions", torch.from_numpy(sinusoidal_positions()), persistent=False)

    def embed(self, tokens: torch.Tensor, rate: float, offset: int = 0) -> torch.Tensor:
        x = self.shared_embedding(tokens) + self.positions[offset : offset + tokens.shape[1]]
        return F.dropout(x, rate, self.training)

    def encode(self, inputs: torch.Tensor, rate: float) -> torch.Tensor:
        real = inputs != PAD
        mask = real[:, None, :, None] & real[:, None, None, :]
        return self.encoder(self.embed(inputs, rate), mask, rate)

    def decoder_states(
        self, encoded: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, rate: float
    ) -> torch.Tensor:
        """Teacher forcing on ``targets`` shifted right, with causal and padding masks."""
        length = targets.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=targets.device).tril()
        real = targets != PAD
        self_mask = causal & real[:, None, :, None] & real[:, None, None, :]
        cross_mask = real[:, None, :, None] & (inputs != PAD)[:, None, None, :]
        return self.decoder(self.embed(shift_right(targets), rate), encoded, self_mask, cross_mask, rate)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """The shared embedding as the output projection, normalised by sqrt(width) as in AlgoPerf."""
        return states @ self.shared_embedding.weight.T / math.sqrt(WIDTH)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, rate: float = 0.0) -> torch.Tensor:
        encoded = self.encode(inputs, rate)
        return self.logits(self.decoder_states(encoded, inputs, targets, rate))


@torch.no_grad()
def greedy_decode(model: Transformer, inputs: torch.Tensor, max_length: int = MAX_LENGTH) -> torch.Tensor:
    """Batched greedy translation, ``(batch, max_length)`` tokens with PAD after each sentence's EOS, one
    position at a time with cached keys and values (the first decoder input is PAD, as in training)."""
    encoded = model.encode(inputs, 0.0)
    source_real = (inputs != PAD)[:, None, None, :]
    blocks = [getattr(model.decoder, f"blocks_{index}") for index in range(NUM_LAYERS)]
    cross = [block.cross_attention.keys_values(encoded) for block in blocks]
    past: list[Cache | None] = [None] * NUM_LAYERS
    tokens = inputs.new_zeros((inputs.shape[0], max_length))
    previous = inputs.new_full((inputs.shape[0], 1), PAD)
    done = torch.zeros(inputs.shape[0], dtype=torch.bool, device=inputs.device)
    for position in range(max_length):
        y = model.embed(previous, 0.0, offset=position)
        for index, block in enumerate(blocks):
            y, past[index] = block.step(y, past[index], cross[index], source_real)
        chosen = model.logits(model.decoder.final(y[:, 0])).argmax(dim=-1).to(tokens.dtype)
        tokens[:, position] = torch.where(done, PAD, chosen)
        done |= chosen == EOS
        if bool(done.all()):
            break
        previous = chosen[:, None]
    return tokens


class WmtMiniWorkload(TorchArrays, BaseWmtMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = Transformer(self.vocab_size, self.switches).to(self.device)
        self.record_param_shapes(model)
        return model, None

    def param_type(self, name: str) -> ParameterType:
        parts = name.split(".")
        module, leaf = parts[-2], parts[-1]
        if module == "shared_embedding":
            return ParameterType.EMBEDDING
        if module.startswith("ln") or module == "norm":
            return ParameterType.LAYER_NORM_SCALE if leaf == "weight" else ParameterType.LAYER_NORM_BIAS
        if module in ATTENTION_TYPES:
            return ATTENTION_TYPES[module]
        return ParameterType.BIAS if leaf == "bias" else ParameterType.WEIGHT

    def is_output_params(self, param_name: str) -> bool:
        return param_name == "shared_embedding.weight"

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
        """Teacher-forced logits ``(batch, length, vocab)``; dropout acts in train mode only, its masks
        seeded from ``rng`` so a run is reproducible."""
        training = mode == ForwardPassMode.TRAIN
        rate = DEFAULT_DROPOUT_RATE if dropout_rate is None else float(dropout_rate)
        if training and rate > 0.0 and rng is not None:
            torch.manual_seed(to_seed(rng))
        params.train(training)
        batch = augmented_and_preprocessed_input_batch
        with torch.set_grad_enabled(training):
            return params(batch["inputs"], batch["targets"], rate if training else 0.0), model_state

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """Cross-entropy per target token with optax-style label smoothing, zero where ``mask_batch`` is 0;
        ``n_valid_examples`` counts the real tokens (see ``workload.cross_entropy``)."""
        per_example = F.cross_entropy(
            logits_batch.reshape(-1, logits_batch.shape[-1]),
            label_batch.reshape(-1).long(),
            reduction="none",
            label_smoothing=label_smoothing,
        ).view(label_batch.shape)
        if mask_batch is None:
            n_valid = torch.tensor(float(label_batch.numel()), device=per_example.device)
        else:
            per_example = torch.where(mask_batch > 0, per_example, torch.zeros_like(per_example))
            n_valid = mask_batch.sum()
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    def eval_batch(self, params: nn.Module, model_state: Any, batch: dict[str, Any]) -> dict[str, Any]:
        logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
        targets, weights = batch["targets"], batch["weights"]
        correct = ((logits.argmax(dim=-1) == targets) * weights).sum()
        return {
            "loss": float(self.loss_fn(targets, logits, weights)["summed"]),
            "correct": float(correct),
            "tokens": float(weights.sum()),
            "hypotheses": greedy_decode(params, batch["inputs"]).cpu().numpy(),
            "references": targets.cpu().numpy(),
        }


class WmtMiniPostLNWorkload(WmtPostLayerNorm, WmtMiniWorkload):
    pass


class WmtMiniAttentionTempWorkload(WmtAttentionTemperature, WmtMiniWorkload):
    pass


class WmtMiniGluTanhWorkload(WmtGluTanh, WmtMiniWorkload):
    pass
