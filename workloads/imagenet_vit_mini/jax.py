"""imagenet_vit_mini in JAX/Flax: the same ViT as pytorch.py, with the same names and initialisation.

Dropout is written by hand because the baseline's jitted step passes ``dropout_rate`` as a traced value:
Flax's ``nn.Dropout`` tests ``rate == 0`` in Python, which a tracer cannot answer. ``dropout`` below skips
the mask when the rate is a Python zero or None, and otherwise selects with ``lax.cond`` at run time, so a
traced zero costs no random bits per step (it costs about 2.5 s more compilation in the first step than a
rate of None; drawing the masks unconditionally would add a third to every step instead).
"""

from __future__ import annotations

import math
from functools import cache, partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from algoperf_workloads.imagenet_resnet_mini.common_jax import JaxImageClassifier, Path, init_key
from algoperf_workloads.imagenet_resnet_mini.images import NUM_CLASSES
from algoperf_workloads.imagenet_resnet_mini.workload import INPUT_SHAPE
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
from pytest_algoperf.spec import ForwardPassMode, ParameterType

Dense = partial(nn.Dense, kernel_init=nn.initializers.xavier_uniform(), bias_init=nn.initializers.zeros)
LayerNorm = partial(nn.LayerNorm, epsilon=LAYER_NORM_EPSILON)
ATTENTION_TYPES = {
    "query": ParameterType.ATTENTION_Q,
    "key": ParameterType.ATTENTION_K,
    "value": ParameterType.ATTENTION_V,
    "out": ParameterType.ATTENTION_OUT,
}


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
    num_heads: int

    @nn.compact
    def __call__(self, inputs: jax.Array, context: jax.Array | None = None) -> jax.Array:
        """Queries from ``inputs``; keys and values from ``context`` (the MAP head's) or ``inputs``."""
        context = inputs if context is None else context
        batch, tokens, width = inputs.shape
        head_dim = width // self.num_heads

        def heads(name: str, x: jax.Array) -> jax.Array:
            return Dense(width, name=name)(x).reshape(batch, x.shape[1], self.num_heads, head_dim)

        query, key, value = heads("query", inputs), heads("key", context), heads("value", context)
        scores = jnp.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(head_dim)
        mixed = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), value)
        return Dense(width, name="out")(mixed.reshape(batch, tokens, width))


def mlp(module: nn.Module, x: jax.Array, dropout_rate: Any, train: bool, use_glu: bool = False) -> jax.Array:
    """The GELU MLP of a block or of the MAP head, as submodules of ``module`` (pytorch.py's ``mlp``)."""
    hidden = jax.nn.gelu(Dense(MLP_DIM, name="mlp_in")(x), approximate=False)
    if use_glu:
        hidden = hidden * Dense(MLP_DIM, name="mlp_glu")(hidden)
    return Dense(WIDTH, name="mlp_out")(dropout(module, hidden, dropout_rate, train))


class EncoderBlock(nn.Module):
    use_glu: bool = False
    use_post_layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, dropout_rate: Any, train: bool) -> jax.Array:
        drop = partial(dropout, self, rate=dropout_rate, train=train)
        attention = Attention(NUM_HEADS, name="attention")
        if self.use_post_layer_norm:
            x = LayerNorm(name="ln1")(x + drop(attention(x)))
            return LayerNorm(name="ln2")(x + drop(mlp(self, x, dropout_rate, train, self.use_glu)))
        x = x + drop(attention(LayerNorm(name="ln1")(x)))
        return x + drop(mlp(self, LayerNorm(name="ln2")(x), dropout_rate, train, self.use_glu))


class MapHead(nn.Module):
    """AlgoPerf's multihead attention pooling (pytorch.py's ``MapHead``)."""

    @nn.compact
    def __call__(self, x: jax.Array, dropout_rate: Any, train: bool) -> jax.Array:
        probe = self.param("probe", nn.initializers.xavier_uniform(), (1, 1, WIDTH))
        pooled = Attention(NUM_HEADS, name="attention")(jnp.tile(probe, (x.shape[0], 1, 1)), x)
        return (pooled + mlp(self, LayerNorm(name="ln")(pooled), dropout_rate, train))[:, 0]


class ViT(nn.Module):
    num_classes: int
    use_glu: bool = False
    use_post_layer_norm: bool = False
    use_map: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array, dropout_rate: Any = None, train: bool = False) -> jax.Array:
        patches = nn.Conv(
            WIDTH, (PATCH_SIZE, PATCH_SIZE), strides=PATCH_SIZE, padding="VALID", name="patch_embedding"
        )(inputs)
        x = patches.reshape(patches.shape[0], -1, WIDTH)
        position = self.param(
            "pos_embedding", nn.initializers.normal(1.0 / math.sqrt(WIDTH)), (1, NUM_TOKENS, WIDTH)
        )
        x = dropout(self, x + position, dropout_rate, train)
        for index in range(DEPTH):
            block = EncoderBlock(self.use_glu, self.use_post_layer_norm, name=f"blocks_{index}")
            x = block(x, dropout_rate, train)
        if not self.use_post_layer_norm:  # post-layernorm blocks end normalised (AlgoPerf's post-LN)
            x = LayerNorm(name="encoder_norm")(x)
        pooled = MapHead(name="map")(x, dropout_rate, train) if self.use_map else x.mean(axis=1)
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.zeros, name="head")(pooled)


@cache
def model_and_init(use_glu: bool, use_post_layer_norm: bool, use_map: bool) -> tuple[ViT, Any]:
    """One model and one jitted initialiser per process and variant: every workload instance reuses the
    compilation."""
    model = ViT(NUM_CLASSES, use_glu, use_post_layer_norm, use_map)
    return model, jax.jit(model.init)


class ImagenetVitMiniWorkload(JaxImageClassifier, BaseImagenetVitMiniWorkload):
    @property
    def _model(self) -> ViT:
        return model_and_init(self.use_glu, self.use_post_layer_norm, self.use_map)[0]

    def init_model_fn(self, rng: Any) -> tuple[Any, None]:
        init_variables = model_and_init(self.use_glu, self.use_post_layer_norm, self.use_map)[1]
        params = init_variables(init_key(rng), jnp.zeros((1, *INPUT_SHAPE)))["params"]
        self.record_param_shapes(params)
        return params, None

    def param_type(self, names: Path) -> ParameterType:
        module, leaf = (names[-2] if len(names) > 1 else ""), names[-1]
        if leaf == "pos_embedding":
            return ParameterType.EMBEDDING
        if module == "patch_embedding":
            return ParameterType.CONV_WEIGHT if leaf == "kernel" else ParameterType.BIAS
        if module.startswith("ln") or module == "encoder_norm":
            return ParameterType.LAYER_NORM_SCALE if leaf == "scale" else ParameterType.LAYER_NORM_BIAS
        if "attention" in names:
            return ParameterType.ATTENTION_BIAS if leaf == "bias" else ATTENTION_TYPES[module]
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
        train = mode == ForwardPassMode.TRAIN
        rngs = {"dropout": rng} if train and rng is not None else {}
        inputs = augmented_and_preprocessed_input_batch["inputs"]
        logits = self._model.apply({"params": params}, inputs, dropout_rate, train, rngs=rngs)
        return logits, model_state


class ImagenetVitMiniGluWorkload(GluVariant, ImagenetVitMiniWorkload):
    """AlgoPerf's ImagenetVitGluWorkload."""


class ImagenetVitMiniPostLayerNormWorkload(PostLayerNormVariant, ImagenetVitMiniWorkload):
    """AlgoPerf's ImagenetVitPostLNWorkload."""


class ImagenetVitMiniMapWorkload(MapVariant, ImagenetVitMiniWorkload):
    """AlgoPerf's ImagenetVitMapWorkload."""
