"""ogbg_mini's variants (AlgoPerf's ogbg GELU, SiLU and model size): each is registered under its base
workload, agrees across PyTorch and JAX as the base does (copied weights, eval outputs within 1e-4, equal
losses, parameter counts, shapes and types), and really changes the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import both_losses, registered_variant, shapes_and_types_by_torch_name
from test_ogbg_mini import RNGS, SMALL_SPLIT_SIZE, TORCH_LEAVES, batch_of, small, small_split, torch_to_flax

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from algoperf_workloads.ogbg_mini import jax as ogbg_jax  # noqa: E402
from algoperf_workloads.ogbg_mini import pytorch as ogbg_torch  # noqa: E402

BASE = "ogbg_mini"
VARIANTS = {
    "ogbg_mini_gelu": "OgbgMiniGeluWorkload",
    "ogbg_mini_silu": "OgbgMiniSiluWorkload",
    "ogbg_mini_model_size": "OgbgMiniModelSizeWorkload",
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def torch_logits(workload: Any, model: Any, batch: dict[str, np.ndarray]) -> np.ndarray:
    device_batch = {key: workload.to_device(value) for key, value in batch.items()}
    return workload.eval_batch(model, None, device_batch)["logits"]


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_is_registered_under_its_base_workload(name: str) -> None:
    """Registered with its own PyTorch and JAX classes, under the base's name and with its budget."""
    workload = registered_variant(name, BASE, {"pytorch": ogbg_torch, "jax": ogbg_jax}, VARIANTS[name])
    assert 0.0 < workload.validation_target_value < 1.0  # its own calibrated targets


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_parity(name: str) -> None:
    """Same weights in both frameworks: parameter shapes and types, eval logits and the loss agree."""
    torch_workload = small(getattr(ogbg_torch, VARIANTS[name]))
    jax_workload = small(getattr(ogbg_jax, VARIANTS[name]))
    model, _ = torch_workload.init_model_fn(RNGS["pytorch"](3))
    flax_params = torch_to_flax(model)
    # Flax's init traced, not compiled (compiling it takes ~3 s per variant): its shapes are all we need.
    init = lambda key: jax_workload._model.init(key, ogbg_jax.example_graph(), 0.0, False)["params"]  # noqa: E731
    jax_workload.record_param_shapes(jax.eval_shape(init, RNGS["jax"](0)))
    from_torch, from_jax = shapes_and_types_by_torch_name(torch_workload, jax_workload, TORCH_LEAVES)
    assert from_torch == from_jax
    assert sum(p.numel() for p in model.parameters()) == sum(x.size for x in jax.tree.leaves(flax_params))

    batch = batch_of(small_split("validation"), SMALL_SPLIT_SIZE)
    logits = torch_logits(torch_workload, model, batch)
    jax_out = jax_workload.eval_batch(flax_params, None, {key: jnp.asarray(v) for key, v in batch.items()})
    np.testing.assert_allclose(logits, jax_out["logits"], atol=1e-4, rtol=0)
    targets, weights = jax_out["targets"], jax_out["weights"]
    torch_loss, jax_loss = both_losses(
        torch_workload, jax_workload, targets, logits, weights, 0.1, jax_logits=jax_out["logits"]
    )
    assert float(torch_loss["summed"]) == pytest.approx(float(jax_loss["summed"]), rel=1e-5)


@pytest.mark.parametrize("name", ["ogbg_mini_gelu", "ogbg_mini_silu"])
def test_activation_variant_changes_the_output_of_the_same_weights(name: str) -> None:
    """Same parameter shapes as the base GNN; with the variant's weights loaded into the base GNN, the
    logits differ (only the activation does)."""
    variant, base = small(getattr(ogbg_torch, VARIANTS[name])), small(ogbg_torch.OgbgMiniWorkload)
    model, _ = variant.init_model_fn(RNGS["pytorch"](3))
    base_model, _ = base.init_model_fn(RNGS["pytorch"](4))
    assert variant.param_shapes == base.param_shapes
    base_model.load_state_dict(model.state_dict())
    batch = batch_of(small_split("validation"), SMALL_SPLIT_SIZE)
    difference = torch_logits(variant, model, batch) - torch_logits(base, base_model, batch)
    assert np.abs(difference).max() > 1e-3


def test_model_size_variant_changes_widths_and_steps() -> None:
    """AlgoPerf's model-size change at mini scale: half the latent width, two-layer MLPs, fewer steps."""
    variant, base = small(ogbg_torch.OgbgMiniModelSizeWorkload), small(ogbg_torch.OgbgMiniWorkload)
    variant.init_model_fn(RNGS["pytorch"](3))
    base.init_model_fn(RNGS["pytorch"](3))
    shapes, base_shapes = variant.param_shapes, base.param_shapes
    assert shapes["node_embedding.weight"] == (32, base_shapes["node_embedding.weight"][1])
    assert base_shapes["node_embedding.weight"][0] == 64
    second_dense, third_step = "layer_0.edge_mlp.dense_1.weight", "layer_2.edge_mlp.dense_0.weight"
    assert second_dense in shapes and second_dense not in base_shapes
    assert third_step in base_shapes and third_step not in shapes
