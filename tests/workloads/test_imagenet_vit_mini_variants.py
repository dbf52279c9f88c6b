"""imagenet_vit_mini's variants, AlgoPerf's imagenet_vit GLU / post-layernorm / MAP head: PyTorch/JAX parity
as for the base workload (copied randomised weights, eval-mode logits within 1e-4, losses, parameter counts
and types; test_imagenet_vit_mini.py's helpers) and, per variant, which parameters it adds or drops and that
its outputs differ from the base model's on the same weights."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest
import torch
from helpers import create_builtin
from test_imagenet_vit_mini import (
    assert_eval_mode_outputs_and_losses_agree,
    assert_parameter_counts_and_types_agree,
    paired_models,
)

from algoperf_workloads.imagenet_resnet_mini.images import load_images
from algoperf_workloads.imagenet_vit_mini import pytorch as vit_torch
from pytest_algoperf.spec import ForwardPassMode

BASE = "imagenet_vit_mini"
VARIANTS = ["imagenet_vit_mini_glu", "imagenet_vit_mini_post_ln", "imagenet_vit_mini_map"]
LINEAR = ("weight", "bias")
# Parameters each variant adds to (+) or drops from (-) the base model, by PyTorch name.
ADDED = {
    "imagenet_vit_mini_glu": {f"blocks.{i}.mlp_glu.{leaf}" for i in range(4) for leaf in LINEAR},
    "imagenet_vit_mini_post_ln": set(),
    "imagenet_vit_mini_map": {
        "map.probe",
        *(f"map.{layer}.{leaf}" for layer in ("ln", "mlp_in", "mlp_out") for leaf in LINEAR),
        *(f"map.attention.{p}.{leaf}" for p in ("query", "key", "value", "out") for leaf in LINEAR),
    },
}
DROPPED = {name: set() for name in VARIANTS} | {
    "imagenet_vit_mini_post_ln": {"encoder_norm.weight", "encoder_norm.bias"}
}


@cache
def variant_models(name: str) -> dict[str, Any]:
    return paired_models(create_builtin(name, "pytorch"), create_builtin(name, "jax"))


def test_the_variants_are_registered_with_their_own_targets_and_the_base_budget() -> None:
    base = create_builtin(BASE)
    for name in VARIANTS:
        workload = create_builtin(name)
        assert workload.name == name and workload.base_name == BASE
        assert 0.2 < workload.validation_target_value < 1 and 0.2 < workload.test_target_value < 1
        assert workload.max_allowed_runtime_sec == base.max_allowed_runtime_sec
        assert workload.step_hint == base.step_hint


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_parameters_outputs_and_losses_agree_across_frameworks(name: str) -> None:
    models = variant_models(name)
    assert_parameter_counts_and_types_agree(models)
    assert_eval_mode_outputs_and_losses_agree(models)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_changes_the_base_model(name: str) -> None:
    """Its parameters are the base's plus or minus the variant's own, and on the base's (randomised)
    weights for the parameters they share, its logits differ from the base model's."""
    torch_workload, model = variant_models(name)["torch"]
    base_workload = vit_torch.ImagenetVitMiniWorkload()
    base_model, _ = base_workload.init_model_fn(np.array([0, 1], dtype=np.uint32))
    names, base_names = set(torch_workload.param_shapes), set(base_workload.param_shapes)
    assert names - base_names == ADDED[name] and base_names - names == DROPPED[name]
    shared = {key: value for key, value in model.state_dict().items() if key in base_names}
    base_model.load_state_dict({**base_model.state_dict(), **shared})
    inputs = {"inputs": torch.from_numpy(load_images().validation.inputs[:8])}
    logits, base_logits = (
        workload.model_fn(m, inputs, None, ForwardPassMode.EVAL, None, False)[0]
        for workload, m in ((torch_workload, model), (base_workload, base_model))
    )
    assert not torch.allclose(logits, base_logits, atol=1e-2)
