"""librispeech_conformer_mini's variants (AlgoPerf's conformer attention temperature, no post-layernorm and
GELU): each is registered, holds the same PyTorch/JAX parity as the base model (the base tests' parity checks
run on the variant's models), and really changes the model: on the base model's weights and the same batch,
its outputs differ from the base model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import create_variant

from pytest_algoperf.spec import ForwardPassMode

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

import test_librispeech_conformer_mini as base_tests  # noqa: E402

from algoperf_workloads.librispeech_conformer_mini import VARIANT_CLASSES  # noqa: E402
from algoperf_workloads.librispeech_conformer_mini import jax as conformer_jax  # noqa: E402
from algoperf_workloads.librispeech_conformer_mini import pytorch as conformer_torch  # noqa: E402

VARIANTS = sorted(VARIANT_CLASSES)
# What each variant switches on the framework-neutral base class.
SWITCHES = {
    "librispeech_conformer_mini_attention_temperature": ("attention_temperature", 1.6),
    "librispeech_conformer_mini_layernorm": ("post_layer_norm", False),
    "librispeech_conformer_mini_gelu": ("activation", "gelu"),
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def variant_workloads(variant: str) -> dict[str, Any]:
    modules = {"pytorch": conformer_torch, "jax": conformer_jax}
    return {fw: base_tests.small(getattr(m, VARIANT_CLASSES[variant])) for fw, m in modules.items()}


def test_variants_are_registered_with_their_base_and_switch_one_attribute() -> None:
    for variant in VARIANTS:
        attribute, value = SWITCHES[variant]
        for framework in ("pytorch", "jax"):
            workload = create_variant(variant, "librispeech_conformer_mini", framework)
            assert getattr(workload, attribute) == value
            assert getattr(base_tests.CLASSES[framework], attribute) != value


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_parity(variant: str) -> None:
    """The base tests' parity checks on the variant: same trees, counts, shapes and types; logits within
    1e-4, equal losses and batch-norm statistics moved alike in train mode (the base tests cover eval
    mode, which differs from train mode only in the batch norm no variant touches)."""
    workloads = variant_workloads(variant)
    model, _ = workloads["pytorch"].init_model_fn(base_tests.RNGS["pytorch"](3))
    with torch.no_grad():
        for buffer in model.buffers():
            buffer.mul_(torch.rand_like(buffer) + 0.5)
    models = (workloads["pytorch"], workloads["jax"], model, *base_tests.torch_to_flax(model))
    base_tests.test_parameter_counts_shapes_and_types_agree(models)
    base_tests.test_forward_and_loss_parity(models, ForwardPassMode.TRAIN)


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_changes_the_model(variant: str) -> None:
    """On the base model's weights (less the dropped post-block layer norms) and one batch, the variant's
    eval logits differ from the base model's, and only the layernorm variant drops parameters."""
    base_workload = base_tests.small(conformer_torch.ConformerMiniWorkload)
    workload = variant_workloads(variant)["pytorch"]
    base_model, _ = base_workload.init_model_fn(base_tests.RNGS["pytorch"](3))
    model, _ = workload.init_model_fn(base_tests.RNGS["pytorch"](4))
    missing, unexpected = model.load_state_dict(base_model.state_dict(), strict=False)
    assert missing == []
    dropped = [
        f"blocks.{i}.norm.{leaf}" for i in range(conformer_torch.NUM_BLOCKS) for leaf in ("weight", "bias")
    ]
    assert sorted(unexpected) == (sorted(dropped) if variant.endswith("_layernorm") else [])
    batch = base_workload.batch_to_device(base_tests.host_batch(8))

    def logits(workload: Any, model: Any) -> np.ndarray:
        outputs, _ = workload.model_fn(model, batch, None, ForwardPassMode.EVAL, None, False, 0.0)
        return outputs[0].detach().numpy()

    assert np.abs(logits(workload, model) - logits(base_workload, base_model)).max() > 1e-2
