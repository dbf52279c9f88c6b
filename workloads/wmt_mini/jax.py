"""wmt_mini in JAX/Flax: the same Transformer as pytorch.py, with the same names and initialisation.

Dropout is written by hand because a submission may jit ``dropout_rate`` as a traced value, which Flax's
``nn.Dropout`` cannot test in Python: ``dropout`` skips the mask for a Python zero and otherwise selects with
``lax.cond`` at run time (the AdamW baseline passes the rate as a static float, so it never pays for that).
Greedy decoding runs a ``fori_loop`` over ``MAX_LENGTH`` positions with fixed-size key/value caches, so one
compilation serves every eval batch of a shape.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from algoperf_workloads.wmt_mini.data import EOS, PAD
from algoperf_workloads.wmt_mini.workload import (
    BIAS_INIT_STDDEV,
    DEFAULT_DROPOUT_RATE,
    LAYER_NORM_EPSILON,
    MAX_LENGTH,
    MLP_DIM,
    NUM_HEADS,
    NUM_LAYERS,
    VOCAB_SIZE,
    WIDTH,
    BaseWmtMiniWorkload,
    TransformerSwitches,
    WmtAttentionTemperature,
    WmtGluTanh,
    WmtPostLayerNorm,
    sinusoidal_positions,
)
from pytest_algoperf.frameworks.jax_adapter import JaxArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType

Dense = partial(
    nn.Dense, kernel_init=nn.initializers.xavier_uniform(), bias_init=nn.initializers.normal(BIAS_INIT_STDDEV)
)
LayerNorm = partial(nn.LayerNorm, epsilon=LAYER_NORM_EPSILON)
POSITIONS = sinusoidal_positions()
Cache = tuple[jax.Array, jax.Array]  # keys and values, (batch, tokens, heads, head_dim)
ATTENTION_TYPES = {
    "query": ParameterType.ATTENTION_Q,
    "key": ParameterType.ATTENTION_K,
    "value": ParameterType.ATTENTION_V,
    "out": ParameterType.ATTENTION_OUT,
}
ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}  # TransformerSwitches.activation


def dropout(module: nn.Module, x: jax.Array, rate: Any, train: bool) -> jax.Array:
    """Inverted dropout that accepts a traced ``rate`` (see the module docstring)."""
    if not train or rate is None or (isinstance(rate, int | float) and rate == 0):
        return x
    rng = module.make_rng("dropout")

    def drop(y: jax.Array) -> jax.Array:
        keep = 1.0 - rate
        return jnp.where(jax.random.bernoulli(rng, keep, y.shape), y / keep, 0.0).astype(y.dtype)

    return jax.lax.cond(rate > 0, drop, lambda y: y, x)


class Attention(nn.Module):
    """Written with ``setup`` so decoding can call the key/value projection and the attention apart."""

    temperature: float = 1.0  # multiplies the queries (TransformerSwitches.attention_temperature)

    def setup(self) -> None:
        self.query = Dense(WIDTH, use_bias=False)
        self.key = Dense(WIDTH, use_bias=False)
        self.value = Dense(WIDTH, use_bias=False)
        self.out = Dense(WIDTH, use_bias=False)

    @staticmethod
    def heads(x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[0], x.shape[1], NUM_HEADS, WIDTH // NUM_HEADS)

    def keys_values(self, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Projected keys and values, ``(batch, tokens, heads, head_dim)``: what a decoding cache holds."""
        return self.heads(self.key(keys)), self.heads(self.value(keys))

    def attend(
        self,
        queries: jax.Array,
        key: jax.Array,
        value: jax.Array,
        mask: jax.Array,
        rate: Any = None,
        train: bool = False,
    ) -> jax.Array:
        """``mask`` (broadcast to ``(batch, 1, queries, keys)``) is True where a query may attend a key."""
        batch, length, _ = queries.shape
        query = self.heads(self.query(queries)) / math.sqrt(WIDTH // NUM_HEADS)
        if self.temperature != 1.0:
            query = query * self.temperature
        scores = jnp.einsum("bqhd,bkhd->bhqk", query, key)
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
        weights = dropout(self, jax.nn.softmax(scores, axis=-1), rate, train)
        mixed = jnp.einsum("bhqk,bkhd->bqhd", weights, value)
        return self.out(mixed.reshape(batch, length, WIDTH))

    def __call__(
        self, queries: jax.Array, keys: jax.Array, mask: jax.Array, rate: Any, train: bool
    ) -> jax.Array:
        return self.attend(queries, *self.keys_values(keys), mask, rate, train)


class Block(nn.Module):
    """What encoder and decoder blocks share: switches, the residual wiring and the MLP, whose layers the
    block holds (``blocks_0/mlp_in``); ``setup`` so decoding can call the parts apart."""

    switches: TransformerSwitches = TransformerSwitches()

    def setup_mlp(self) -> None:
        self.mlp_in, self.mlp_out = Dense(MLP_DIM), Dense(WIDTH)
        if self.switches.glu:
            self.mlp_gate = Dense(MLP_DIM)

    def residual(self, x: jax.Array, norm: nn.Module, branch: Callable[[jax.Array], jax.Array]) -> jax.Array:
        """``x + branch(norm(x))`` (pre-layernorm) or ``norm(x + branch(x))`` (post-layernorm)."""
        return x + branch(norm(x)) if self.switches.pre_layer_norm else norm(x + branch(x))

    def mlp(self, y: jax.Array, rate: Any, train: bool) -> jax.Array:
        hidden = ACTIVATIONS[self.switches.activation](self.mlp_in(y))
        if self.switches.glu:
            hidden = hidden * self.mlp_gate(y)
        hidden = dropout(self, hidden, rate, train)
        return dropout(self, self.mlp_out(hidden), rate, train)


class EncoderBlock(Block):
    def setup(self) -> None:
        self.ln1, self.attention = LayerNorm(), Attention(self.switches.attention_temperature)
        self.ln2 = LayerNorm()
        self.setup_mlp()

    def __call__(self, x: jax.Array, mask: jax.Array, rate: Any, train: bool) -> jax.Array:
        drop = partial(dropout, self, rate=rate, train=train)
        x = self.residual(x, self.ln1, lambda y: drop(self.attention(y, y, mask, rate, train)))
        return self.residual(x, self.ln2, lambda y: self.mlp(y, rate, train))


class DecoderBlock(Block):
    def setup(self) -> None:
        temperature = self.switches.attention_temperature
        self.ln1, self.self_attention = LayerNorm(), Attention(temperature)
        self.ln2, self.cross_attention = LayerNorm(), Attention(temperature)
        self.ln3 = LayerNorm()
        self.setup_mlp()

    def __call__(
        self,
        y: jax.Array,
        encoded: jax.Array,
        self_mask: jax.Array,
        cross_mask: jax.Array,
        rate: Any,
        train: bool,
    ) -> jax.Array:
        drop = partial(dropout, self, rate=rate, train=train)
        y = self.residual(y, self.ln1, lambda z: drop(self.self_attention(z, z, self_mask, rate, train)))
        y = self.residual(
            y, self.ln2, lambda z: drop(self.cross_attention(z, encoded, cross_mask, rate, train))
        )
        return self.residual(y, self.ln3, lambda z: self.mlp(z, rate, train))

    def step(
        self, y: jax.Array, position: jax.Array, cache: Cache, cross: Cache, cross_mask: jax.Array
    ) -> tuple[jax.Array, Cache]:
        """One decoding position ``y`` ``(batch, 1, width)``; ``cache`` holds every position's keys and
        values (``MAX_LENGTH`` of them), valid up to ``position``, where this step writes its own."""
        written = (jnp.arange(cache[0].shape[1]) <= position)[None, None, None, :]
        updated: list[Cache] = []

        def self_attend(z: jax.Array) -> jax.Array:
            new = self.self_attention.keys_values(z)
            keys_values = tuple(
                jax.lax.dynamic_update_slice_in_dim(old, part, position, axis=1)
                for old, part in zip(cache, new, strict=True)
            )
            updated.append(keys_values)
            return self.self_attention.attend(z, *keys_values, written)

        y = self.residual(y, self.ln1, self_attend)
        y = self.residual(y, self.ln2, lambda z: self.cross_attention.attend(z, *cross, cross_mask))
        return self.residual(y, self.ln3, lambda z: self.mlp(z, None, False)), updated[0]


class Encoder(nn.Module):
    switches: TransformerSwitches = TransformerSwitches()

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, rate: Any, train: bool) -> jax.Array:
        for index in range(NUM_LAYERS):
            x = EncoderBlock(self.switches, name=f"blocks_{index}")(x, mask, rate, train)
        # A final layer norm under pre-layernorm only: post-layernorm blocks end normalised.
        return LayerNorm(name="norm")(x) if self.switches.pre_layer_norm else x


class Decoder(nn.Module):
    switches: TransformerSwitches = TransformerSwitches()

    def setup(self) -> None:
        self.blocks = [DecoderBlock(self.switches) for _ in range(NUM_LAYERS)]  # blocks_0, blocks_1 ...
        self.norm = LayerNorm() if self.switches.pre_layer_norm else None  # as in the Encoder

    def final(self, y: jax.Array) -> jax.Array:
        return y if self.norm is None else self.norm(y)

    def __call__(
        self, y: jax.Array, encoded: jax.Array, self_mask: Any, cross_mask: Any, rate: Any, train: bool
    ) -> jax.Array:
        for block in self.blocks:
            y = block(y, encoded, self_mask, cross_mask, rate, train)
        return self.final(y)

    def cross_keys_values(self, encoded: jax.Array) -> list[Cache]:
        return [block.cross_attention.keys_values(encoded) for block in self.blocks]

    def step(
        self,
        y: jax.Array,
        position: jax.Array,
        caches: list[Cache],
        cross: list[Cache],
        cross_mask: jax.Array,
    ) -> tuple[jax.Array, list[Cache]]:
        new_caches = []
        for block, cache, block_cross in zip(self.blocks, caches, cross, strict=True):
            y, cache = block.step(y, position, cache, block_cross, cross_mask)
            new_caches.append(cache)
        return self.final(y), new_caches


def shift_right(targets: jax.Array) -> jax.Array:
    return jnp.pad(targets, ((0, 0), (1, 0)), constant_values=PAD)[:, :-1]


class Transformer(nn.Module):
    vocab_size: int
    switches: TransformerSwitches = TransformerSwitches()

    def setup(self) -> None:
        self.shared_embedding = nn.Embed(
            self.vocab_size, WIDTH, embedding_init=nn.initializers.normal(stddev=1.0)
        )
        self.encoder = Encoder(self.switches)
        self.decoder = Decoder(self.switches)

    def embed(self, tokens: jax.Array, rate: Any, train: bool, offset: Any = 0) -> jax.Array:
        positions = jax.lax.dynamic_slice_in_dim(POSITIONS, offset, tokens.shape[1])
        return dropout(self, self.shared_embedding(tokens) + positions, rate, train)

    def encode(self, inputs: jax.Array, rate: Any = None, train: bool = False) -> jax.Array:
        real = inputs != PAD
        mask = real[:, None, :, None] & real[:, None, None, :]
        return self.encoder(self.embed(inputs, rate, train), mask, rate, train)

    def decoder_states(
        self, encoded: jax.Array, inputs: jax.Array, targets: jax.Array, rate: Any = None, train: bool = False
    ) -> jax.Array:
        """Teacher forcing on ``targets`` shifted right, with causal and padding masks."""
        length = targets.shape[1]
        causal = jnp.tril(jnp.ones((length, length), bool))
        real = targets != PAD
        self_mask = causal & real[:, None, :, None] & real[:, None, None, :]
        cross_mask = real[:, None, :, None] & (inputs != PAD)[:, None, None, :]
        y = self.embed(shift_right(targets), rate, train)
        return self.decoder(y, encoded, self_mask, cross_mask, rate, train)

    def cross_keys_values(self, encoded: jax.Array) -> list[Cache]:
        return self.decoder.cross_keys_values(encoded)

    def decode_step(
        self,
        previous: jax.Array,
        position: jax.Array,
        caches: list[Cache],
        cross: list[Cache],
        cross_mask: jax.Array,
    ) -> tuple[jax.Array, list[Cache]]:
        """The next-token logits ``(batch, vocab)`` after ``previous`` ``(batch, 1)``, the token at
        ``position - 1`` (PAD at 0), and the updated caches."""
        y = self.embed(previous, None, False, offset=position)
        states, caches = self.decoder.step(y, position, caches, cross, cross_mask)
        return self.logits(states[:, 0]), caches

    def logits(self, states: jax.Array) -> jax.Array:
        """The shared embedding as the output projection, normalised by sqrt(width) as in AlgoPerf."""
        return self.shared_embedding.attend(states) / math.sqrt(WIDTH)

    def __call__(
        self, inputs: jax.Array, targets: jax.Array, rate: Any = None, train: bool = False
    ) -> jax.Array:
        encoded = self.encode(inputs, rate, train)
        return self.logits(self.decoder_states(encoded, inputs, targets, rate, train))


BASE = TransformerSwitches()


# One model and one jitted initialiser per switch setting and process: every workload instance reuses them.
@functools.cache
def transformer(switches: TransformerSwitches = BASE) -> Transformer:
    return Transformer(VOCAB_SIZE, switches)


@functools.cache
def init_variables(switches: TransformerSwitches = BASE) -> Callable[..., Any]:
    return jax.jit(transformer(switches).init)


def greedy_decode(
    params: Any, inputs: jax.Array, max_length: int = MAX_LENGTH, switches: TransformerSwitches = BASE
) -> jax.Array:
    """Batched greedy translation, ``(batch, max_length)`` tokens with PAD after each sentence's EOS, one
    position at a time with cached keys and values (the first decoder input is PAD, as in training)."""
    model = transformer(switches)
    variables = {"params": params}
    batch = inputs.shape[0]
    encoded = model.apply(variables, inputs, method=Transformer.encode)
    cross = model.apply(variables, encoded, method=Transformer.cross_keys_values)
    cross_mask = (inputs != PAD)[:, None, None, :]
    empty = jnp.zeros((batch, max_length, NUM_HEADS, WIDTH // NUM_HEADS), encoded.dtype)
    caches = [(empty, empty) for _ in range(NUM_LAYERS)]

    def step(position: jax.Array, carry: tuple) -> tuple:
        tokens, done, previous, caches = carry
        logits, caches = model.apply(
            variables, previous, position, caches, cross, cross_mask, method=Transformer.decode_step
        )
        chosen = logits.argmax(axis=-1).astype(tokens.dtype)
        tokens = tokens.at[:, position].set(jnp.where(done, PAD, chosen))
        return tokens, done | (chosen == EOS), chosen[:, None], caches

    tokens = jnp.zeros((batch, max_length), inputs.dtype)
    start = (tokens, jnp.zeros(batch, bool), jnp.full((batch, 1), PAD, inputs.dtype), caches)
    return jax.lax.fori_loop(0, max_length, step, start)[0]


def _loss(label_batch: jax.Array, logits_batch: jax.Array, mask_batch: Any, label_smoothing: float) -> dict:
    smoothed = optax.smooth_labels(jax.nn.one_hot(label_batch, logits_batch.shape[-1]), label_smoothing)
    per_example = optax.softmax_cross_entropy(logits_batch, smoothed)
    if mask_batch is None:
        n_valid = jnp.asarray(label_batch.size, per_example.dtype)
    else:
        per_example = jnp.where(mask_batch > 0, per_example, 0.0)
        n_valid = mask_batch.sum()
    return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}


@partial(jax.jit, static_argnums=0)
def _evaluate(
    switches: TransformerSwitches, params: Any, batch: dict[str, jax.Array]
) -> tuple[jax.Array, ...]:
    """Teacher-forced loss and correct-token sums, the token count and the greedy translations."""
    targets, weights = batch["targets"], batch["weights"]
    logits = transformer(switches).apply({"params": params}, batch["inputs"], targets)
    loss = _loss(targets, logits, weights, 0.0)["summed"]
    correct = ((logits.argmax(axis=-1) == targets) * weights).sum()
    return loss, correct, weights.sum(), greedy_decode(params, batch["inputs"], switches=switches)


class WmtMiniWorkload(JaxArrays, BaseWmtMiniWorkload):
    def init_model_fn(self, rng: Any) -> tuple[Any, None]:
        tokens = jnp.ones((1, MAX_LENGTH), jnp.int32)
        params = init_variables(self.switches)(rng, tokens, tokens)["params"]
        self.record_param_shapes(params)
        return params, None

    def param_type(self, names: tuple[str, ...]) -> ParameterType:
        module, leaf = names[-2], names[-1]
        if module == "shared_embedding":
            return ParameterType.EMBEDDING
        if module.startswith("ln") or module == "norm":
            return ParameterType.LAYER_NORM_SCALE if leaf == "scale" else ParameterType.LAYER_NORM_BIAS
        if module in ATTENTION_TYPES:
            return ATTENTION_TYPES[module]
        return ParameterType.BIAS if leaf == "bias" else ParameterType.WEIGHT

    def is_output_params(self, param_name: str) -> bool:
        return param_name == "shared_embedding"

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
        """Teacher-forced logits ``(batch, length, vocab)``; dropout acts in train mode only."""
        train = mode == ForwardPassMode.TRAIN
        rate = DEFAULT_DROPOUT_RATE if dropout_rate is None else dropout_rate
        rngs = {"dropout": rng} if train and rng is not None else {}
        batch = augmented_and_preprocessed_input_batch
        model = transformer(self.switches)
        logits = model.apply({"params": params}, batch["inputs"], batch["targets"], rate, train, rngs=rngs)
        return logits, model_state

    def loss_fn(
        self,
        label_batch: jax.Array,
        logits_batch: jax.Array,
        mask_batch: jax.Array | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        """Cross-entropy per target token with optax's label smoothing, zero where ``mask_batch`` is 0;
        ``n_valid_examples`` counts the real tokens (see ``workload.cross_entropy``)."""
        return _loss(label_batch, logits_batch, mask_batch, label_smoothing)

    def eval_batch(self, params: Any, model_state: Any, batch: dict[str, Any]) -> dict[str, Any]:
        loss, correct, tokens, hypotheses = jax.device_get(_evaluate(self.switches, params, batch))
        return {
            "loss": float(loss),
            "correct": float(correct),
            "tokens": float(tokens),
            "hypotheses": hypotheses,
            "references": jax.device_get(batch["targets"]),
        }


class WmtMiniPostLNWorkload(WmtPostLayerNorm, WmtMiniWorkload):
    pass


class WmtMiniAttentionTempWorkload(WmtAttentionTemperature, WmtMiniWorkload):
    pass


class WmtMiniGluTanhWorkload(WmtGluTanh, WmtMiniWorkload):
    pass
