"""wmt_mini in PyTorch: the encoder-decoder Transformer of ``workload.py``, its loss, greedy decoding.

Attention is written out (query, key, value and output projections without biases, ``(batch, heads, tokens,
head_dim)`` layout, masked scores set to the float32 minimum as Flax does) so the weights map one to one onto
the Flax model's; parameter names mirror the Flax tree (``encoder.blocks_0.attention.query.weight`` is
``encoder/blocks_0/attention/query/kernel``, transposed). Initialisation follows AlgoPerf's wmt (see
``workload.py``), so both frameworks start from the same distribution.
"""

from __future__ import annotations

import math
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
    def __init__(self) -> None:
        super().__init__()
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
        scores = query @ key.transpose(-1, -2)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = F.dropout(scores.softmax(dim=-1), dropout_rate, self.training)
        return self.out((weights @ value).transpose(1, 2).reshape(batch, length, WIDTH))

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, dropout_rate: float
    ) -> torch.Tensor:
        return self.attend(queries, *self.keys_values(keys), mask, dropout_rate)


class EncoderBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1, self.attention, self.ln2 = layer_norm(), Attention(), layer_norm()
        self.mlp_in, self.mlp_out = dense(WIDTH, MLP_DIM), dense(MLP_DIM, WIDTH)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rate: float) -> torch.Tensor:
        drop = lambda y: F.dropout(y, rate, self.training)  # noqa: E731
        y = self.ln1(x)
        x = x + drop(self.attention(y, y, mask, rate))
        return x + drop(self.mlp_out(drop(F.relu(self.mlp_in(self.ln2(x))))))


class DecoderBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1, self.self_attention = layer_norm(), Attention()
        self.ln2, self.cross_attention = layer_norm(), Attention()
        self.ln3, self.mlp_in, self.mlp_out = layer_norm(), dense(WIDTH, MLP_DIM), dense(MLP_DIM, WIDTH)

    def mlp(self, y: torch.Tensor, rate: float) -> torch.Tensor:
        hidden = F.dropout(F.relu(self.mlp_in(self.ln3(y))), rate, self.training)
        return F.dropout(self.mlp_out(hidden), rate, self.training)

    def forward(
        self,
        y: torch.Tensor,
        encoded: torch.Tensor,
        self_mask: torch.Tensor,
        cross_mask: torch.Tensor,
        rate: float,
    ) -> torch.Tensor:
        drop = lambda z: F.dropout(z, rate, self.training)  # noqa: E731
        z = self.ln1(y)
        y = y + drop(self.self_attention(z, z, self_mask, rate))
        y = y + drop(self.cross_attention(self.ln2(y), encoded, cross_mask, rate))
        return y + self.mlp(y, rate)

    def step(self, y: torch.Tensor, past: Cache | None, cross: Cache, cross_mask: torch.Tensor) -> tuple:
        """One decoding position ``y`` ``(batch, 1, width)`` given the earlier positions' keys and values
        (eval mode: no dropout); returns its output and the keys and values up to and including it."""
        z = self.ln1(y)
        key, value = self.self_attention.keys_values(z)
        if past is not None:
            key, value = torch.cat([past[0], key], dim=2), torch.cat([past[1], value], dim=2)
        y = y + self.self_attention.attend(z, key, value, None, 0.0)
        y = y + self.cross_attention.attend(self.ln2(y), *cross, cross_mask, 0.0)
        return y + self.mlp(y, 0.0), (key, value)


class Stack(nn.Module):
    """``NUM_LAYERS`` blocks named ``blocks_<i>`` (as Flax names them) and a final layernorm."""

    def __init__(self, block: type[nn.Module]) -> None:
        super().__init__()
        for index in range(NUM_LAYERS):
            self.add_module(f"blocks_{index}", block())
        self.norm = layer_norm()

    def forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        for index in range(NUM_LAYERS):
            x = getattr(self, f"blocks_{index}")(x, *args)
        return self.norm(x)


def shift_right(targets: torch.Tensor) -> torch.Tensor:
    return F.pad(targets, (1, 0), value=PAD)[:, :-1]


class Transformer(nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.shared_embedding = nn.Embedding(vocab_size, WIDTH)
        nn.init.normal_(self.shared_embedding.weight, std=1.0)
        self.encoder = Stack(EncoderBlock)
        self.decoder = Stack(DecoderBlock)
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
        chosen = model.logits(model.decoder.norm(y[:, 0])).argmax(dim=-1).to(tokens.dtype)
        tokens[:, position] = torch.where(done, PAD, chosen)
        done |= chosen == EOS
        if bool(done.all()):
            break
        previous = chosen[:, None]
    return tokens


class WmtMiniWorkload(TorchArrays, BaseWmtMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = Transformer(self.vocab_size).to(self.device)
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
