"""wmt_mini's variants (AlgoPerf's wmt post-layernorm, attention temperature 4.0 and GLU with tanh): each is
registered, holds PyTorch/JAX parity on the same weights (parameter trees, shapes and types; teacher-forced
logits and losses through the base tests' check; the whole eval with greedy decoding and BLEU), decodes
consistently with teacher forcing, and really changes the model: on the base model's weights and the same
batch, its logits differ from the base model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import by_torch_name, create_variant

from pytest_algoperf.spec import ForwardPassMode

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

import test_wmt_mini as base_tests  # noqa: E402

from algoperf_workloads.wmt_mini import VARIANT_CLASSES, data  # noqa: E402
from algoperf_workloads.wmt_mini import jax as wmt_jax  # noqa: E402
from algoperf_workloads.wmt_mini import pytorch as wmt_torch  # noqa: E402
from algoperf_workloads.wmt_mini.workload import TransformerSwitches  # noqa: E402

VARIANTS = sorted(VARIANT_CLASSES)
SWITCHES = {
    "wmt_mini_post_ln": TransformerSwitches(pre_layer_norm=False),
    "wmt_mini_attention_temp": TransformerSwitches(attention_temperature=4.0),
    "wmt_mini_glu_tanh": TransformerSwitches(activation="tanh", glu=True),
}
# Parameters the variant adds to (+) or drops from (-) the base model's state dict.
CHANGED = {
    "wmt_mini_post_ln": {
        f"-{stack}.norm.{leaf}" for stack in ("encoder", "decoder") for leaf in ("weight", "bias")
    },
    "wmt_mini_attention_temp": set(),
    "wmt_mini_glu_tanh": {
        f"+{stack}.blocks_{i}.mlp_gate.{leaf}"
        for stack in ("encoder", "decoder")
        for i in range(wmt_torch.NUM_LAYERS)
        for leaf in ("weight", "bias")
    },
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def variant_workloads(variant: str) -> dict[str, Any]:
    modules = {"pytorch": wmt_torch, "jax": wmt_jax}
    return {fw: base_tests.small(getattr(m, VARIANT_CLASSES[variant])) for fw, m in modules.items()}


def test_variants_are_registered_with_their_base_and_switches() -> None:
    for variant in VARIANTS:
        for framework in ("pytorch", "jax"):
            workload = create_variant(variant, "wmt_mini", framework)
            assert workload.switches == SWITCHES[variant] != base_tests.CLASSES[framework].switches


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_parity(variant: str) -> None:
    """Same parameter tree, shapes and types in both frameworks; on the same weights, the base tests'
    forward/loss parity check passes, and PyTorch's cached greedy decoding agrees with teacher forcing
    (and with JAX's decoding under post-LN, the variant that rewires the decoding step; the others change
    only attention and MLP code that teacher forcing shares with decoding)."""
    workloads = variant_workloads(variant)
    model, _ = workloads["pytorch"].init_model_fn(base_tests.RNGS["pytorch"](3))
    flax_params = base_tests.torch_to_flax(model)
    # The Flax tree's shapes by tracing its init (compiling it, as init_model_fn does, takes seconds).
    tokens = jnp.ones((1, data.MAX_LENGTH), jnp.int32)
    init = wmt_jax.transformer(SWITCHES[variant]).init
    params = jax.eval_shape(init, jax.random.PRNGKey(0), tokens, tokens)["params"]
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, flax_params)
    workloads["jax"].record_param_shapes(params)
    jax_types = by_torch_name(workloads["jax"].model_params_types, base_tests.TORCH_LEAVES)
    assert jax_types == workloads["pytorch"].model_params_types
    models = (workloads["pytorch"], workloads["jax"], model, flax_params)
    base_tests.test_forward_and_loss_parity(models)
    inputs = base_tests.small_splits()["test"].inputs[:16]
    tokens = wmt_torch.greedy_decode(model, torch.from_numpy(inputs))
    if variant == "wmt_mini_post_ln":
        decode = jax.jit(wmt_jax.greedy_decode, static_argnames="switches")
        jax_tokens = decode(flax_params, jnp.asarray(inputs), switches=SWITCHES[variant])
        np.testing.assert_array_equal(tokens.numpy(), np.asarray(jax_tokens))
    with torch.no_grad():
        forced = model(torch.from_numpy(inputs), tokens).argmax(dim=-1).numpy()
    for row, decoded in zip(forced, tokens.numpy(), strict=True):
        length = len(data.strip(decoded))
        assert row[:length].tolist() == data.strip(decoded)


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_changes_the_model(variant: str) -> None:
    """On the base model's weights (the variant's own where it adds some) and one batch, the variant's
    eval logits differ from the base model's; only GLU adds parameters, only post-LN drops some."""
    base_workload = base_tests.small(wmt_torch.WmtMiniWorkload)
    workload = variant_workloads(variant)["pytorch"]
    base_model, _ = base_workload.init_model_fn(base_tests.RNGS["pytorch"](3))
    model, _ = workload.init_model_fn(base_tests.RNGS["pytorch"](4))
    missing, unexpected = model.load_state_dict(base_model.state_dict(), strict=False)
    assert {f"+{name}" for name in missing} | {f"-{name}" for name in unexpected} == CHANGED[variant]
    batch = base_workload.batch_to_device(base_tests.small_splits()["validation"].arrays())

    def logits(workload: Any, model: Any) -> np.ndarray:
        outputs, _ = workload.model_fn(model, batch, None, ForwardPassMode.EVAL, None, False)
        return outputs.numpy()

    assert np.abs(logits(workload, model) - logits(base_workload, base_model)).max() > 1e-2
