"""imagenet_resnet_mini's variants (AlgoPerf's imagenet_resnet SiLU, GELU and large batch-norm init): each is
registered under its base workload, agrees across PyTorch and JAX as the base does (copied weights, eval
outputs within 1e-4, equal losses, parameter counts and types; both initialise the changed scales alike),
and really changes the model."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import both_losses, registered_variant, tree_get
from test_imagenet_resnet_mini import (
    PARITY_BATCH,
    RESNET_PARAMETERS,
    TOLERANCE,
    copy_into_flax,
    flax_path,
    randomise_torch_model,
)

from algoperf_workloads.imagenet_resnet_mini import images
from algoperf_workloads.imagenet_resnet_mini import jax as resnet_jax
from algoperf_workloads.imagenet_resnet_mini import pytorch as resnet_torch
from algoperf_workloads.imagenet_resnet_mini.common_jax import init_key
from algoperf_workloads.imagenet_resnet_mini.workload import INPUT_SHAPE
from pytest_algoperf.frameworks import numpy_rng

BASE = "imagenet_resnet_mini"
VARIANTS = {
    "imagenet_resnet_mini_silu": "ImagenetResNetMiniSiluWorkload",
    "imagenet_resnet_mini_gelu": "ImagenetResNetMiniGeluWorkload",
    "imagenet_resnet_mini_large_bn_init": "ImagenetResNetMiniLargeBnInitWorkload",
}


def torch_logits(workload: Any, model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    batch = {"inputs": torch.from_numpy(inputs), "targets": torch.zeros(len(inputs), dtype=torch.int32)}
    return workload.eval_batch(model, None, batch)["logits"]


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_is_registered_under_its_base_workload(name: str) -> None:
    """Registered with its own PyTorch and JAX classes, under the base's name and with its budget."""
    workload = registered_variant(name, BASE, {"pytorch": resnet_torch, "jax": resnet_jax}, VARIANTS[name])
    assert 0.0 < workload.validation_target_value < 1.0  # its own calibrated targets


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_parity(name: str) -> None:
    """Randomised PyTorch weights copied into Flax: tree shapes, parameter types and counts, eval logits
    and the loss agree."""
    torch_workload = getattr(resnet_torch, VARIANTS[name])()
    jax_workload = getattr(resnet_jax, VARIANTS[name])()
    model, _ = torch_workload.init_model_fn(numpy_rng.make_key(0))
    randomise_torch_model(model)
    params, stats = copy_into_flax(model)
    # Flax's init traced, not compiled: its shapes are all the comparison needs.
    init = resnet_jax.resnet(jax_workload.activation, jax_workload.bn_init_scale)[1]
    shapes = jax.eval_shape(init, init_key(jax.random.PRNGKey(0)), jnp.zeros((1, *INPUT_SHAPE)))
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, shapes["params"])
    assert jax.tree.map(jnp.shape, stats) == jax.tree.map(jnp.shape, shapes["batch_stats"])
    jax_workload.record_param_shapes(shapes["params"])
    for torch_name, kind in torch_workload.model_params_types.items():
        assert tree_get(jax_workload.model_params_types, flax_path(torch_name)) == kind, torch_name
    assert sum(p.numel() for p in model.parameters()) == RESNET_PARAMETERS

    inputs = images.load_images().validation.inputs[:PARITY_BATCH]
    labels = images.load_images().validation.labels[:PARITY_BATCH]
    logits = torch_logits(torch_workload, model, inputs)
    batch = {"inputs": jnp.asarray(inputs), "targets": jnp.asarray(labels)}
    jax_logits = jax_workload.eval_batch(params, stats, batch)["logits"]
    assert np.abs(logits).max() > 0.5  # a meaningful comparison, not two near-zero outputs
    np.testing.assert_allclose(logits, jax_logits, rtol=0, atol=TOLERANCE)
    torch_loss, jax_loss = both_losses(torch_workload, jax_workload, labels, logits, None, 0.1, jax_logits)
    assert float(torch_loss["summed"]) == pytest.approx(float(jax_loss["summed"]), rel=1e-5)


@pytest.mark.parametrize("name", ["imagenet_resnet_mini_silu", "imagenet_resnet_mini_gelu"])
def test_activation_variant_changes_the_output_of_the_same_weights(name: str) -> None:
    variant, base = getattr(resnet_torch, VARIANTS[name])(), resnet_torch.ImagenetResNetMiniWorkload()
    model, _ = variant.init_model_fn(numpy_rng.make_key(0))
    randomise_torch_model(model)
    base_model, _ = base.init_model_fn(numpy_rng.make_key(1))
    base_model.load_state_dict(model.state_dict())  # same shapes: only the activation differs
    inputs = images.load_images().validation.inputs[:PARITY_BATCH]
    assert np.abs(torch_logits(variant, model, inputs) - torch_logits(base, base_model, inputs)).max() > 1e-2


def test_large_bn_init_sets_each_blocks_last_scale_to_8_in_both_frameworks() -> None:
    """AlgoPerf's bn_init_scale 8: each block's bn2 scale starts at 8 (0 in the base), every other
    batch-norm scale at 1; the same-seed base model differs only there, and so does its output."""
    variant = resnet_torch.ImagenetResNetMiniLargeBnInitWorkload()
    base = resnet_torch.ImagenetResNetMiniWorkload()
    model, _ = variant.init_model_fn(numpy_rng.make_key(0))
    base_model, _ = base.init_model_fn(numpy_rng.make_key(0))
    base_state = base_model.state_dict()
    for key, value in model.state_dict().items():
        expected = 8.0 if key.endswith("bn2.weight") else None
        if expected is not None:
            assert (value == expected).all() and (base_state[key] == 0).all(), key
        else:
            assert torch.equal(value, base_state[key]), key
    inputs = images.load_images().validation.inputs[:PARITY_BATCH]
    assert np.abs(torch_logits(variant, model, inputs) - torch_logits(base, base_model, inputs)).max() > 1e-3

    params, _ = resnet_jax.ImagenetResNetMiniLargeBnInitWorkload().init_model_fn(jax.random.PRNGKey(0))
    for path, value in jax.tree_util.tree_leaves_with_path(params):
        names = [str(key.key) for key in path]
        if names[-1] == "scale":
            np.testing.assert_array_equal(np.asarray(value), 8.0 if names[-2] == "bn2" else 1.0)
