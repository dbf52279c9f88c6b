"""criteo1tb_mini's variants, AlgoPerf's criteo1tb layernorm / resnet / embed_init: PyTorch/JAX parity as
for the base workload (copied weights, eval-mode logits within 1e-4, losses, parameter counts, shapes and
types) and, per variant, what it changes against the base model. The helpers are test_criteo1tb_mini.py's.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
from helpers import both_losses, builtin_entry

from pytest_algoperf.spec import ForwardPassMode, ParameterType

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from test_criteo1tb_mini import (  # noqa: E402
    RNGS,
    assert_parameters_agree,
    paired_models,
    small,
    torch_to_flax,
)

VARIANTS = ["criteo1tb_mini_layernorm", "criteo1tb_mini_residual", "criteo1tb_mini_embed_init"]
ROWS = 256  # validation rows per forward comparison


def torch_logits(workload: Any, model: Any, inputs: np.ndarray) -> np.ndarray:
    logits, _ = workload.model_fn(
        model, {"inputs": torch.from_numpy(inputs)}, None, ForwardPassMode.EVAL, None, False
    )
    return logits.detach().numpy()


def jax_logits(workload: Any, params: Any, inputs: np.ndarray) -> np.ndarray:
    logits, _ = workload.model_fn(
        params, {"inputs": jnp.asarray(inputs)}, None, ForwardPassMode.EVAL, None, False
    )
    return np.asarray(logits)


def test_the_variants_are_registered_under_the_base_workload() -> None:
    for name in VARIANTS:
        entry = builtin_entry(name)
        assert entry.is_variant and entry.base_name == "criteo1tb_mini"
        assert set(entry.implementations) == {"pytorch", "jax"}
        workload, base = small("pytorch", name=name), small("pytorch")
        assert workload.name == name and workload.base_name == "criteo1tb_mini"
        # Own targets (between the teacher's loss and the base rate's entropy), the base's budget.
        assert 0.3 < workload.validation_target_value < 0.56 and 0.3 < workload.test_target_value < 0.56
        assert workload.max_allowed_runtime_sec == base.max_allowed_runtime_sec
        assert workload.step_hint == base.step_hint


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_outputs_losses_and_parameters_agree_across_frameworks(name: str) -> None:
    torch_workload, jax_workload, model, _ = paired_models(name)
    model = copy.deepcopy(model)
    with torch.no_grad():  # layernorms start as the identity: move them so their mapping counts
        for key, parameter in model.named_parameters():
            if "norm" in key:
                parameter.add_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)) * 0.3)
    flax_params = torch_to_flax(model)
    assert_parameters_agree(torch_workload, jax_workload, model, flax_params)
    inputs = torch_workload.data.validation.inputs[:ROWS]
    targets = torch_workload.data.validation.targets[:ROWS]
    from_torch, from_jax = (
        torch_logits(torch_workload, model, inputs),
        jax_logits(jax_workload, flax_params, inputs),
    )
    assert from_torch.shape == from_jax.shape == (ROWS, 1)
    np.testing.assert_allclose(from_torch, from_jax, rtol=0, atol=1e-4)
    torch_loss, jax_loss = both_losses(torch_workload, jax_workload, targets, from_torch, jax_logits=from_jax)
    assert float(torch_loss["summed"]) == pytest.approx(float(jax_loss["summed"]), rel=1e-5)


def test_layernorm_variant_normalises_the_base_models_activations() -> None:
    """AlgoPerf's DlrmSmall with use_layer_norm: one layernorm after each hidden ReLU (3 bottom, 4 top) and
    one over the embeddings; with the base model's weights and identity layernorms the logits change."""
    torch_workload, _, model, _ = paired_models("criteo1tb_mini_layernorm")
    base_workload, _, base_model, _ = paired_models()
    norms = {key for key in dict(model.named_parameters()) if "norm" in key}
    assert {key.split(".")[0] for key in norms} == {
        *(f"bottom_norm_{i}" for i in range(3)),
        "embed_norm",
        *(f"top_norm_{i}" for i in range(4)),
    }
    counts = Counter(torch_workload.model_params_types.values())
    assert counts[ParameterType.LAYER_NORM_SCALE] == counts[ParameterType.LAYER_NORM_BIAS] == 8
    with_base_weights = copy.deepcopy(model)
    missing = with_base_weights.load_state_dict(base_model.state_dict(), strict=False).missing_keys
    assert set(missing) == norms
    inputs = base_workload.data.validation.inputs[:ROWS]
    base = torch_logits(base_workload, base_model, inputs)
    assert not np.allclose(torch_logits(torch_workload, with_base_weights, inputs), base, atol=1e-2)


def test_residual_variant_is_a_narrower_dlrm_resnet_without_interactions() -> None:
    """AlgoPerf's DLRMResNet 8x narrower: 32-wide MLPs whose top MLP reads the bottom output and the 26
    flattened embeddings (448 inputs, no dot interactions) instead of 16 + 378 interaction features."""
    torch_workload, jax_workload, model, _ = paired_models("criteo1tb_mini_residual")
    base_workload, _, base_model, _ = paired_models()
    assert torch_workload.param_shapes["top_0.weight"] == (32, 32 + 26 * 16)
    assert base_workload.param_shapes["top_0.weight"] == (128, 16 + 27 * 28 // 2)
    assert jax_workload.param_shapes["top_0"]["kernel"] == (448, 32)
    assert all(torch_workload.param_shapes[f"bottom_{i}.weight"][0] == 32 for i in range(3))
    assert torch_workload.is_output_params("top_4.weight") and jax_workload.is_output_params("top_4")
    assert not hasattr(model, "triu_flat")
    assert sum(p.numel() for p in model.parameters()) != sum(p.numel() for p in base_model.parameters())


def test_embed_init_variant_draws_the_tables_uniform_in_0_1_and_changes_nothing_else() -> None:
    """Embedding multiplier 1.0: with the same seed the table is the base's times sqrt(its rows),
    in both frameworks, and every other parameter is the base's."""
    _, jax_workload, model, _ = paired_models("criteo1tb_mini_embed_init")
    _, base_jax_workload, base_model, _ = paired_models()
    base_values = dict(base_model.named_parameters())
    jax_params, _ = jax_workload.init_model_fn(RNGS["jax"](0))
    base_jax_params, _ = base_jax_workload.init_model_fn(RNGS["jax"](0))
    for key, parameter in model.named_parameters():
        value, base = parameter.detach().numpy(), base_values[key].detach().numpy()
        if key == "embedding":
            scale = math.sqrt(len(value))
            assert value.min() >= 0 and value.max() < 1 and value.mean() == pytest.approx(0.5, abs=0.1)
            np.testing.assert_allclose(value, base * scale, rtol=1e-5)
            np.testing.assert_allclose(jax_params[key], base_jax_params[key] * scale, rtol=1e-5)
        else:
            np.testing.assert_array_equal(value, base)
