"""fastmri_mini's variants (AlgoPerf's fastmri model size, tanh and layer norm): each is registered under its
base workload, agrees across PyTorch and JAX as the base does (copied weights, outputs within 1e-4, equal
losses, parameter counts, shapes and types), and really changes the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import assert_same_tree_shapes, both_losses, registered_variant, tree_get
from test_fastmri_mini import flax_params_from_torch, with_small_data

from algoperf_workloads.fastmri_mini.data import IMAGE_SIZE
from pytest_algoperf.spec import ForwardPassMode

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from algoperf_workloads.fastmri_mini import jax as fastmri_jax  # noqa: E402
from algoperf_workloads.fastmri_mini import pytorch as fastmri_torch  # noqa: E402
from pytest_algoperf.frameworks.numpy_rng import make_key  # noqa: E402

BASE = "fastmri_mini"
VARIANTS = {
    "fastmri_mini_model_size": "FastMriMiniModelSizeWorkload",
    "fastmri_mini_tanh": "FastMriMiniTanhWorkload",
    "fastmri_mini_layernorm": "FastMriMiniLayerNormWorkload",
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(framework_module: Any, class_name: str) -> Any:
    return with_small_data(getattr(framework_module, class_name))()


def flax_params_with_norms(model: torch.nn.Module) -> dict[str, Any]:
    """``flax_params_from_torch`` plus the layer-norm variant's norms: ``down.0.norm_1.weight`` is
    ``down_0/norm_1/scale`` (a per-channel vector in both)."""
    params = flax_params_from_torch(model)
    for name, parameter in model.named_parameters():
        if ".norm_" in name:
            *modules, norm, leaf = name.replace("down.", "down_").replace("up.", "up_").split(".")
            node = params[modules[0]].setdefault(norm, {})
            node["scale" if leaf == "weight" else "bias"] = jnp.asarray(parameter.detach().numpy())
    return params


def torch_outputs(workload: Any, model: torch.nn.Module) -> np.ndarray:
    batch = workload.batch_to_device(workload.split_arrays("validation"))
    outputs, _ = workload.model_fn(model, batch, None, ForwardPassMode.EVAL, None, False)
    return outputs.detach().numpy()


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_is_registered_under_its_base_workload(name: str) -> None:
    """Registered with its own PyTorch and JAX classes, under the base's name and with its budget."""
    workload = registered_variant(name, BASE, {"pytorch": fastmri_torch, "jax": fastmri_jax}, VARIANTS[name])
    assert 0.0 < workload.validation_target_value < 1.0  # its own calibrated targets


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_parity(name: str) -> None:
    """PyTorch weights (layer-norm scales and biases randomised) copied into Flax: the Flax init's tree,
    shapes and initial norm values, parameter types and counts, outputs and the loss agree."""
    torch_workload = small(fastmri_torch, VARIANTS[name])
    jax_workload = small(fastmri_jax, VARIANTS[name])
    model, _ = torch_workload.init_model_fn(make_key(3))
    jax_init, _ = jax_workload.init_model_fn(jax.random.PRNGKey(3))
    initial = flax_params_with_norms(model)
    assert_same_tree_shapes(initial, jax_init)
    for path, value in jax.tree_util.tree_leaves_with_path(jax_init):  # scales 1 and biases 0 in both
        if str(path[-2].key).startswith("norm_"):
            node = tree_get(initial, (key.key for key in path))
            np.testing.assert_array_equal(np.asarray(value), np.asarray(node))
    torch_types = sorted(kind.name for kind in torch_workload.model_params_types.values())
    jax_types = sorted(kind.name for kind in jax.tree.leaves(jax_workload.model_params_types))
    assert torch_types == jax_types
    assert sum(p.numel() for p in model.parameters()) == sum(leaf.size for leaf in jax.tree.leaves(jax_init))

    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if ".norm_" in parameter_name:
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    params = flax_params_with_norms(model)
    outputs = torch_outputs(torch_workload, model)
    arrays = jax_workload.split_arrays("validation")
    jax_outputs, _ = jax_workload.model_fn(
        params, jax_workload.batch_to_device(arrays), None, ForwardPassMode.EVAL, None, False
    )
    assert outputs.shape == (len(arrays["inputs"]), IMAGE_SIZE, IMAGE_SIZE)
    np.testing.assert_allclose(np.asarray(jax_outputs), outputs, atol=1e-4, rtol=0)
    torch_loss, jax_loss = both_losses(
        torch_workload, jax_workload, arrays["targets"], outputs, jax_logits=jax_outputs
    )
    assert float(torch_loss["summed"]) == pytest.approx(float(jax_loss["summed"]), abs=1e-4)


@pytest.mark.parametrize("name", ["fastmri_mini_tanh", "fastmri_mini_layernorm"])
def test_activation_and_norm_variants_change_the_output_of_the_same_kernels(name: str) -> None:
    """The same kernels (same seed, same shapes) in the base U-Net give other outputs: only the activation
    or the conv blocks' norm differs (the layer norms start at scale 1, bias 0, yet normalise over the
    channels too)."""
    variant, base = small(fastmri_torch, VARIANTS[name]), small(fastmri_torch, "FastMriMiniWorkload")
    model, _ = variant.init_model_fn(make_key(3))
    base_model, _ = base.init_model_fn(make_key(3))
    kernels = {key: value for key, value in model.state_dict().items() if ".norm_" not in key}
    assert kernels.keys() == base_model.state_dict().keys()
    assert all(torch.equal(value, base_model.state_dict()[key]) for key, value in kernels.items())
    assert np.abs(torch_outputs(variant, model) - torch_outputs(base, base_model)).max() > 1e-2


def test_layernorm_variant_adds_a_scale_and_bias_per_conv_block_norm() -> None:
    workload = small(fastmri_torch, "FastMriMiniLayerNormWorkload")
    workload.init_model_fn(make_key(0))
    norms = {name: shape for name, shape in workload.param_shapes.items() if ".norm_" in name}
    assert len(norms) == 2 * 2 * 5  # scale and bias, two norms per conv block, five conv blocks
    assert norms["down.0.norm_0.weight"] == (16,) and norms["bottleneck.norm_1.bias"] == (64,)


def test_model_size_variant_doubles_the_channels_and_drops_a_pool() -> None:
    variant, base = (
        small(fastmri_torch, VARIANTS["fastmri_mini_model_size"]),
        small(fastmri_torch, "FastMriMiniWorkload"),
    )
    variant.init_model_fn(make_key(0))
    base.init_model_fn(make_key(0))
    assert variant.param_shapes["down.0.conv_0.weight"] == (32, 1, 3, 3)
    assert base.param_shapes["down.0.conv_0.weight"] == (16, 1, 3, 3)
    assert "down.1.conv_0.weight" in base.param_shapes and "down.1.conv_0.weight" not in variant.param_shapes
