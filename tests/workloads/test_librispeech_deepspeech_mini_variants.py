"""librispeech_deepspeech_mini's variants (AlgoPerf's DeepSpeech tanh, no residual connections, and layer
norm with more SpecAugment masks): each is registered, holds PyTorch/JAX parity on the same weights (trees,
shapes and types; the base tests' eval-mode logits and CTC losses; training-mode logits and batch-norm
statistics where it has batch norm), and really changes the model: on the base model's weights and one
batch, its logits differ. SpecAugment, shared by both frameworks, has known answers of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import create_variant

from algoperf_workloads.librispeech_conformer_mini.workload import (
    SPEC_AUGMENT_FREQ_MASK_MAX_BINS,
    spec_augment,
)
from pytest_algoperf.spec import ForwardPassMode, ParameterType

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

import test_librispeech_deepspeech_mini as base_tests  # noqa: E402

from algoperf_workloads.librispeech_deepspeech_mini import VARIANT_CLASSES  # noqa: E402
from algoperf_workloads.librispeech_deepspeech_mini import jax as ds_jax  # noqa: E402
from algoperf_workloads.librispeech_deepspeech_mini import pytorch as ds_torch  # noqa: E402
from algoperf_workloads.librispeech_deepspeech_mini.workload import DeepspeechSwitches  # noqa: E402

BASE = "librispeech_deepspeech_mini"
VARIANTS = sorted(VARIANT_CLASSES)
NORM_AND_SPEC_AUG = "librispeech_deepspeech_mini_norm_and_spec_aug"
SWITCHES = {
    "librispeech_deepspeech_mini_tanh": DeepspeechSwitches(activation="tanh"),
    "librispeech_deepspeech_mini_no_resnet": DeepspeechSwitches(residual_connections=False),
    NORM_AND_SPEC_AUG: DeepspeechSwitches(
        layer_norm_everywhere=True, decoder_layer_norm=False, time_mask_count=15, freq_mask_count=4
    ),
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def variant_workloads(variant: str) -> dict[str, Any]:
    modules = {"pytorch": ds_torch, "jax": ds_jax}
    return {fw: base_tests.small(getattr(m, VARIANT_CLASSES[variant])) for fw, m in modules.items()}


def test_variants_are_registered_with_their_base_and_switches() -> None:
    for variant in VARIANTS:
        for framework in ("pytorch", "jax"):
            workload = create_variant(variant, BASE, framework)
            assert workload.switches == SWITCHES[variant] != base_tests.CLASSES[framework].switches


def test_spec_augment_known_answers_and_frameworks_agree() -> None:
    """Masks zero whole frames within each utterance's real frames (at most 5% of them per mask) and whole
    bins (at most SPEC_AUGMENT_FREQ_MASK_MAX_BINS per mask); numpy, torch and jax.numpy agree; no masks, no
    change; the extreme draws give known masks."""
    rng = np.random.default_rng(0)
    paddings = np.zeros((3, 80), np.float32)
    paddings[1, 60:] = paddings[2, 40:] = 1.0
    inputs = rng.uniform(1.0, 2.0, (3, 80, 32)).astype(np.float32) * (1.0 - paddings)[:, :, None]
    uniforms = rng.random((3, 2 * (15 + 4))).astype(np.float32)
    masked = spec_augment(np, inputs, paddings, uniforms, 15, 4)
    for xp, to, back in ((torch, torch.from_numpy, np.asarray), (jnp, jnp.asarray, np.asarray)):
        np.testing.assert_array_equal(
            back(spec_augment(xp, *map(to, (inputs, paddings, uniforms)), 15, 4)), masked
        )
    zeroed = masked == 0.0
    frames, bins = zeroed.all(axis=2), zeroed.all(axis=1)
    assert not (zeroed & ~frames[:, :, None] & ~bins[:, None, :] & (paddings == 0)[:, :, None]).any()
    for row, length in enumerate((80, 60, 40)):
        assert 0 < frames[row, :length].sum() <= 15 * int(0.05 * length)
        assert 0 < bins[row].sum() <= 4 * SPEC_AUGMENT_FREQ_MASK_MAX_BINS
    np.testing.assert_array_equal(spec_augment(np, inputs, paddings, uniforms, 0, 0), inputs)
    # Near-widest masks (u -> 1: floor(0.999 * 4) frames of 80, floor(0.999 * 11) bins) at the start (u = 0).
    extreme = np.concatenate([np.full((3, 1), 0.999), np.zeros((3, 1))] * 2, axis=1).astype(np.float32)
    keep = spec_augment(np, np.ones_like(inputs), paddings, extreme, 1, 1)
    assert (keep[0, :3] == 0).all() and (keep[0, 3:, 10:] == 1).all() and (keep[0, :, :10] == 0).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_parity(variant: str) -> None:
    """Same trees, shapes and types; on the same weights and statistics, the base tests' eval-mode logits
    and CTC losses agree (the training-mode batch norm, which no variant changes, is the base tests'; the
    layer-norm variant has none: no model state)."""
    workloads = variant_workloads(variant)
    model, _ = workloads["pytorch"].init_model_fn(base_tests.RNGS["pytorch"](3))
    batch = workloads["pytorch"].batch_to_device(base_tests.batch_of(base_tests.small_split("train"), 16))
    workloads["pytorch"].model_fn(model, batch, None, ForwardPassMode.TRAIN, None, True, 0.0)  # move stats
    flax_params, flax_stats = base_tests.torch_to_flax(model)
    inputs, paddings = jnp.zeros((1, 8, 32)), jnp.zeros((1, 8))
    init = jax.eval_shape(
        lambda key: workloads["jax"]._model.init(key, inputs, paddings, 0.0, False), jax.random.PRNGKey(0)
    )
    assert jax.tree.map(jnp.shape, init["params"]) == jax.tree.map(jnp.shape, flax_params)
    assert jax.tree.map(jnp.shape, init.get("batch_stats", {})) == jax.tree.map(jnp.shape, flax_stats)
    workloads["jax"].record_param_shapes(init["params"])
    jax_types = {
        "/".join(str(key.key) for key in path): kind
        for path, kind in jax.tree_util.tree_leaves_with_path(workloads["jax"].model_params_types)
    }
    leaves = {"weight": "kernel", **{name: leaf for name, (leaf, _) in base_tests.LSTM_LEAVES.items()}}
    torch_types = {}
    for name, kind in workloads["pytorch"].model_params_types.items():
        *path, leaf = name.split(".")
        torch_types["/".join([*path, leaves.get(leaf, leaf)])] = kind
    assert torch_types == jax_types
    norms = list(jax_types.values()).count(ParameterType.LAYER_NORM_SCALE)
    assert norms == (3 if variant == NORM_AND_SPEC_AUG else 1)  # layer norms everywhere, none before the head
    models = {"pytorch": (model, None), "jax": (flax_params, flax_stats)}
    base_tests.test_forward_and_loss_parity(workloads, models)
    assert (flax_stats == {}) == (variant == NORM_AND_SPEC_AUG)


def test_spec_augment_acts_in_training_mode_with_an_rng() -> None:
    """The layer-norm variant's training-mode output depends on the rng (its SpecAugment masks), is the
    same for the same rng, and equals the unmasked output without one (PyTorch); eval mode never masks. JAX
    (jitted, with a fixed key) masks in training mode and not in eval mode."""
    workloads = variant_workloads(NORM_AND_SPEC_AUG)
    model, _ = workloads["pytorch"].init_model_fn(base_tests.RNGS["pytorch"](0))
    arrays = base_tests.batch_of(base_tests.small_split("validation"), 4, frames=48)
    batch = workloads["pytorch"].batch_to_device(arrays)

    def logits(mode: ForwardPassMode, seed: int | None) -> np.ndarray:
        rng = None if seed is None else base_tests.RNGS["pytorch"](seed)
        (outputs, _), _ = workloads["pytorch"].model_fn(model, batch, None, mode, rng, False, 0.0)
        return outputs.detach().numpy()

    plain, masked = logits(ForwardPassMode.TRAIN, None), logits(ForwardPassMode.TRAIN, 1)
    assert np.abs(masked - plain).max() > 1e-2
    np.testing.assert_allclose(logits(ForwardPassMode.EVAL, 1), plain, atol=1e-5)
    np.testing.assert_array_equal(logits(ForwardPassMode.TRAIN, 1), masked)
    assert np.abs(logits(ForwardPassMode.TRAIN, 2) - masked).max() > 1e-2

    params, _ = base_tests.torch_to_flax(model)
    jax_batch = workloads["jax"].batch_to_device(arrays)
    forward = [
        base_tests.jax_forward(workloads["jax"], params, {}, jax_batch, mode, False, 0.0)[0][0]
        for mode in (ForwardPassMode.EVAL, ForwardPassMode.TRAIN)
    ]
    np.testing.assert_allclose(np.asarray(forward[0]), plain, atol=1e-4)
    assert np.abs(np.asarray(forward[1]) - plain).max() > 1e-2


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_changes_the_model(variant: str) -> None:
    """On the base model's weights (the variant's own layer norms where it swaps batch norms for them) and
    one batch, the variant's eval logits differ from the base model's."""
    base_workload = base_tests.small(ds_torch.DeepspeechMiniWorkload)
    workload = variant_workloads(variant)["pytorch"]
    base_model, _ = base_workload.init_model_fn(base_tests.RNGS["pytorch"](3))
    model, _ = workload.init_model_fn(base_tests.RNGS["pytorch"](4))
    missing, unexpected = model.load_state_dict(base_model.state_dict(), strict=False)
    if variant == NORM_AND_SPEC_AUG:
        assert {name.rsplit(".", 1)[0] for name in missing} == {
            "lstm_0.layer_norm",
            "lstm_1.layer_norm",
            "ffn_0.layer_norm",
        }
        assert {name.rsplit(".", 1)[0] for name in unexpected} == {
            "lstm_0.norm",
            "lstm_1.norm",
            "ffn_0.norm",
            "final_norm",
        }
    else:
        assert missing == unexpected == []
    batch = base_workload.batch_to_device(base_tests.batch_of(base_tests.small_split("validation"), 8))

    def logits(workload: Any, model: Any) -> np.ndarray:
        (outputs, _), _ = workload.model_fn(model, batch, None, ForwardPassMode.EVAL, None, False)
        return outputs.numpy()

    assert np.abs(logits(workload, model) - logits(base_workload, base_model)).max() > 1e-2
