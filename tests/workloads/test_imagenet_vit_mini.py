"""imagenet_vit_mini: one AdamW step (with dropout) and one eval per framework, dropout semantics, and
PyTorch/JAX parity with copied weights. The shared image data and metrics are tested in
test_imagenet_resnet_mini.py."""

from __future__ import annotations

from collections import Counter
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import ADAMW_FIRST_POINT, assert_metrics_finite, assert_same_tree_shapes, tree_get, tree_set
from test_imagenet_resnet_mini import adamw_step_and_eval, assert_losses_agree_with_the_numpy_loss

from algoperf_workloads.imagenet_resnet_mini.images import load_images
from algoperf_workloads.imagenet_vit_mini import jax as vit_jax
from algoperf_workloads.imagenet_vit_mini import pytorch as vit_torch
from pytest_algoperf.frameworks import numpy_rng
from pytest_algoperf.spec import ForwardPassMode, ParameterType

# Dropout 0.1 exercises dropout inside the baseline's jitted step, where the rate is traced.
ADAMW_POINT = ADAMW_FIRST_POINT._replace(label_smoothing=0.1, dropout_rate=0.1)
PARITY_BATCH = 16
TOLERANCE = 1e-4
VIT_PARAMETERS = 208_714


def test_pytorch_adamw_step_and_eval() -> None:
    workload, key = vit_torch.ImagenetVitMiniWorkload(), numpy_rng.make_key(0)
    assert_metrics_finite(adamw_step_and_eval(workload, "pytorch", key, ADAMW_POINT), ("loss", "accuracy"))


def test_jax_adamw_step_and_eval() -> None:
    workload, key = vit_jax.ImagenetVitMiniWorkload(), jax.random.PRNGKey(0)
    assert_metrics_finite(adamw_step_and_eval(workload, "jax", key, ADAMW_POINT), ("loss", "accuracy"))


def test_pytorch_dropout_acts_in_train_mode_only_and_follows_the_rng() -> None:
    workload = vit_torch.ImagenetVitMiniWorkload()
    model, _ = workload.init_model_fn(numpy_rng.make_key(0))
    torch.nn.init.normal_(model.head.weight)  # the zero head would hide every difference
    batch = {"inputs": torch.from_numpy(load_images().validation.inputs[:8])}

    def run(mode: ForwardPassMode, rate: float | None, seed: int = 1) -> torch.Tensor:
        return workload.model_fn(model, batch, None, mode, numpy_rng.make_key(seed), False, rate)[0]

    clean = run(ForwardPassMode.EVAL, 0.5)
    torch.testing.assert_close(run(ForwardPassMode.TRAIN, 0.0), clean)
    torch.testing.assert_close(run(ForwardPassMode.TRAIN, None), clean)
    dropped = run(ForwardPassMode.TRAIN, 0.5)
    assert not torch.allclose(dropped, clean)
    torch.testing.assert_close(run(ForwardPassMode.TRAIN, 0.5), dropped)
    assert not torch.allclose(run(ForwardPassMode.TRAIN, 0.5, seed=2), dropped)


def test_jax_dropout_acts_in_train_mode_only_and_accepts_a_traced_rate() -> None:
    workload = vit_jax.ImagenetVitMiniWorkload()
    params, _ = workload.init_model_fn(jax.random.PRNGKey(0))
    params = {**params, "head": {**params["head"], "kernel": jnp.ones_like(params["head"]["kernel"])}}
    batch = {"inputs": jnp.asarray(load_images().validation.inputs[:8])}

    @jax.jit
    def run(rate: jax.Array, rng: jax.Array, train: jax.Array) -> jax.Array:
        """Both modes in one compiled function (``lax.cond`` picks), as eager Flax is slow to trace."""

        def forward(mode: ForwardPassMode) -> jax.Array:
            return workload.model_fn(params, batch, None, mode, rng, False, rate)[0]

        return jax.lax.cond(
            train, lambda: forward(ForwardPassMode.TRAIN), lambda: forward(ForwardPassMode.EVAL)
        )

    def train(rate: float, rng: jax.Array) -> jax.Array:
        return run(jnp.float32(rate), rng, True)

    clean = run(jnp.float32(0.5), jax.random.PRNGKey(0), False)
    key = jax.random.PRNGKey(1)
    np.testing.assert_allclose(train(0.0, key), clean, rtol=0, atol=1e-5)
    dropped = train(0.5, key)
    assert not np.allclose(dropped, clean)
    np.testing.assert_array_equal(train(0.5, key), dropped)
    assert not np.allclose(train(0.5, jax.random.PRNGKey(2)), dropped)


# ---- parity ---------------------------------------------------------------------------------------------


def flax_path(torch_name: str) -> tuple[str, ...]:
    """``blocks.0.attention.query.weight`` -> ``('blocks_0', 'attention', 'query', 'kernel')``."""
    parts = torch_name.replace("blocks.", "blocks_").split(".")
    if parts[-1] == "weight":
        module = parts[-2]
        parts[-1] = "scale" if module.startswith("ln") or module == "encoder_norm" else "kernel"
    return tuple(parts)


def to_flax(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().numpy()
    if array.ndim == 4:  # conv (out, in, kh, kw) -> (kh, kw, in, out)
        return array.transpose(2, 3, 1, 0)
    return array.T if array.ndim == 2 else array  # linear (out, in) -> (in, out)


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    return paired_models(vit_torch.ImagenetVitMiniWorkload(), vit_jax.ImagenetVitMiniWorkload())


def paired_models(torch_workload: Any, jax_workload: Any) -> dict[str, Any]:
    """A PyTorch ViT with every parameter randomised (the zero head and biases would hide differences),
    its weights copied into a Flax tree, and the JAX workload with its jitted ``model_fn``."""
    model, _ = torch_workload.init_model_fn(numpy_rng.make_key(0))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("head") or name.endswith("bias"):
                parameter.normal_(0.0, 0.2, generator=generator)
            elif parameter.ndim == 1:  # layernorm scales
                parameter.copy_(torch.rand(parameter.shape, generator=generator) + 0.5)
    params: dict[str, Any] = {}
    for name, tensor in model.named_parameters():
        tree_set(params, flax_path(name), jnp.asarray(to_flax(tensor)))
    # Shapes only: tracing init_model_fn (it records param_shapes) skips compiling the jitted init.
    jax_params, _ = jax.eval_shape(jax_workload.init_model_fn, jax.random.PRNGKey(0))
    assert_same_tree_shapes(params, jax_params)
    return {
        "torch": (torch_workload, model),
        "jax": (jax_workload, params),
        "batch": load_images().validation.inputs[:PARITY_BATCH],
        "labels": load_images().validation.labels[:PARITY_BATCH],
    }


def test_parameter_counts_and_types_agree(models: dict[str, Any]) -> None:
    torch_workload, jax_workload = models["torch"][0], models["jax"][0]
    assert assert_parameter_counts_and_types_agree(models) == VIT_PARAMETERS
    torch_types = torch_workload.model_params_types
    counts = Counter(torch_types.values())
    for kind in ("ATTENTION_Q", "ATTENTION_K", "ATTENTION_V", "ATTENTION_OUT"):
        assert counts[ParameterType[kind]] == 4  # one per block
    assert counts[ParameterType.EMBEDDING] == 1 and counts[ParameterType.CONV_WEIGHT] == 1
    assert counts[ParameterType.LAYER_NORM_SCALE] == counts[ParameterType.LAYER_NORM_BIAS] == 9
    assert torch_workload.is_output_params("head.weight") and jax_workload.is_output_params("head")


def assert_parameter_counts_and_types_agree(models: dict[str, Any]) -> int:
    """The same count and, parameter by parameter, the same type in both frameworks; returns the count."""
    torch_workload, model = models["torch"]
    jax_workload, params = models["jax"]
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(leaf.size for leaf in jax.tree.leaves(params))
    torch_types = torch_workload.model_params_types
    jax_types = jax_workload.model_params_types
    for name, kind in torch_types.items():
        assert tree_get(jax_types, flax_path(name)) == kind, name
    assert sorted(t.name for t in torch_types.values()) == sorted(t.name for t in jax.tree.leaves(jax_types))
    return count


def test_eval_mode_outputs_and_losses_agree(models: dict[str, Any]) -> None:
    assert_eval_mode_outputs_and_losses_agree(models)


def assert_eval_mode_outputs_and_losses_agree(models: dict[str, Any]) -> None:
    torch_workload, model = models["torch"]
    jax_workload, params = models["jax"]
    inputs, labels = models["batch"], models["labels"]
    torch_logits = torch_workload.model_fn(
        model, {"inputs": torch.from_numpy(inputs)}, None, ForwardPassMode.EVAL, None, False
    )[0].numpy()
    forward = jax.jit(
        lambda p, x: jax_workload.model_fn(p, {"inputs": x}, None, ForwardPassMode.EVAL, None, False)
    )
    jax_logits = np.asarray(forward(params, jnp.asarray(inputs))[0])
    assert np.abs(torch_logits).max() > 0.5  # a meaningful comparison, not two near-zero outputs
    np.testing.assert_allclose(torch_logits, jax_logits, rtol=0, atol=TOLERANCE)

    mask = (np.arange(PARITY_BATCH) % 4 != 1).astype(np.float32)
    assert_losses_agree_with_the_numpy_loss(
        torch_workload, jax_workload, torch_logits, labels, mask, smoothings=(0.0, 0.2)
    )
