"""librispeech_conformer_mini: data, CTC, greedy decoding and WER known answers, a train step and eval per
framework, PyTorch/JAX parity.

Parity copies the PyTorch weights and batch-norm buffers into the Flax trees (names match; Linear weights
become transposed kernels, convolution weights move their channel axes last) and asserts float32 outputs
within 1e-4 in eval and train mode, equal losses, parameter counts, shapes and types. Small splits of 48
utterances keep eval cheap and JAX at one eval shape.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import pytest
from helpers import RNGS, adamw_steps_and_eval, assert_metrics_finite, by_torch_name, tree_set

from algoperf_workloads.librispeech_conformer_mini import data
from algoperf_workloads.librispeech_conformer_mini.workload import (
    ctc_loss_reference,
    edit_distance,
    greedy_ctc_decode,
    normalized_arrays,
    speech_eval_outputs,
    word_error_rate,
    word_errors,
)
from pytest_algoperf.spec import ForwardPassMode, ParameterType

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from algoperf_workloads.librispeech_conformer_mini import jax as conformer_jax  # noqa: E402
from algoperf_workloads.librispeech_conformer_mini import pytorch as conformer_torch  # noqa: E402

SMALL_SPLIT_SIZE = 48
CLASSES = {"pytorch": conformer_torch.ConformerMiniWorkload, "jax": conformer_jax.ConformerMiniWorkload}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@cache
def small_split(name: str) -> data.SpeechSplit:
    return data.generate_split(name, SMALL_SPLIT_SIZE, 100 + data.SPLIT_SEEDS[name])


def small(workload_class: type, name: str = "librispeech_conformer_mini") -> Any:
    """The workload (named ``name``) on the small splits of 48 utterances."""

    class Small(workload_class):
        def split_arrays(self, split: str) -> dict[str, np.ndarray]:
            return small_split(split).arrays()

    workload = Small()
    workload.name = workload.base_name = name
    return workload


def host_batch(count: int, split: str = "validation") -> dict[str, np.ndarray]:
    return {key: value[:count] for key, value in small_split(split).arrays().items()}


def torch_to_flax(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flax params and batch_stats holding a PyTorch Conformer's weights and running statistics."""
    trees: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        *path, leaf = name.replace("blocks.", "blocks_").split(".")
        value, tree = tensor.detach().cpu().numpy(), trees[0]
        if leaf.startswith("running_"):
            leaf, tree = leaf.removeprefix("running_"), trees[1]
        elif leaf == "weight" and value.ndim == 1:
            leaf = "scale"
        elif leaf == "weight":  # (out, in[, k...]) -> ([k...,] in, out)
            leaf, value = "kernel", value.transpose(*range(2, value.ndim), 1, 0)
        tree_set(tree, [*path, leaf], jnp.asarray(value))
    return trees


@pytest.fixture(scope="module")
def workloads() -> dict[str, Any]:
    return {framework: small(workload_class) for framework, workload_class in CLASSES.items()}


@pytest.fixture(scope="module")
def models(workloads: dict[str, Any]) -> tuple[Any, ...]:
    """Both small workloads, a PyTorch model with non-trivial batch-norm statistics, the same as Flax."""
    model, _ = workloads["pytorch"].init_model_fn(RNGS["pytorch"](3))
    with torch.no_grad():
        for buffer in model.buffers():
            buffer.mul_(torch.rand_like(buffer) + 0.5)
    return (workloads["pytorch"], workloads["jax"], model, *torch_to_flax(model))


# ---- data --------------------------------------------------------------------------------------------


def test_same_seed_same_arrays_and_other_seed_differs() -> None:
    first, second = data.generate_split("test", 20, 5), data.generate_split("test", 20, 5)
    for key, value in first.arrays().items():
        np.testing.assert_array_equal(value, second.arrays()[key])
    assert not np.array_equal(first.inputs, data.generate_split("test", 20, 6).inputs)
    assert data.load_split("validation") is data.load_split("validation")  # cached: generated once


def test_splits_are_disjoint_and_shaped_as_documented() -> None:
    splits = {name: data.load_split(name) for name in data.SPLIT_SEEDS}
    texts = {name: set(split.transcripts) for name, split in splits.items()}
    assert not texts["train"] & texts["validation"] and not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    assert len(splits["validation"]) == 500
    for split in splits.values():
        assert split.inputs.shape[1:] == (data.MAX_FRAMES, data.NUM_BINS) and split.inputs.dtype == np.float32
        assert split.targets.dtype == np.int32 and split.targets.shape[1] == data.MAX_TARGET_LENGTH
        frames = (1 - split.input_paddings).sum(1)
        labels = (1 - split.target_paddings).sum(1)
        # Paddings are a real prefix then padding; padding frames are zero; every utterance fits CTC after
        # x2 subsampling (2+ frames per label, and no label repeats twice in a row).
        assert (np.diff(split.input_paddings, axis=1) >= 0).all()
        assert (split.inputs[split.input_paddings > 0] == 0).all()
        assert (frames >= 2 * labels).all() and frames.max() <= data.MAX_FRAMES
        real = split.target_paddings == 0
        assert not ((split.targets[:, 1:] == split.targets[:, :-1]) & real[:, 1:]).any()
        for text, target, pad in zip(
            split.transcripts[:50], split.targets, split.target_paddings, strict=False
        ):
            assert data.ids_to_text(target[pad == 0]) == text
            assert 2 <= len(text.split()) <= 4 and set(text.split()) <= set(data.LEXICON)


def test_utterances_have_structure_a_linear_probe_finds() -> None:
    """Learnable, not noise: least squares from an utterance's summed spectrum to its character counts,
    fitted on train, explains a third of their variance on validation (the constant predictor: none)."""
    train, validation = data.load_split("train"), data.load_split("validation")

    def features(split: data.SpeechSplit) -> np.ndarray:
        return np.concatenate([split.inputs.sum(1), np.ones((len(split), 1))], axis=1)

    def counts(split: data.SpeechSplit) -> np.ndarray:
        return np.stack([np.bincount(t[p == 0], minlength=data.NUM_CLASSES) for t, p in zip(
            split.targets, split.target_paddings, strict=True)]).astype(float)  # fmt: skip

    weights = np.linalg.lstsq(features(train), counts(train), rcond=None)[0]
    residual = ((features(validation) @ weights - counts(validation)) ** 2).sum()
    explained = 1 - residual / ((counts(validation) - counts(train).mean(0)) ** 2).sum()
    assert explained > 0.25


def test_inputs_are_standardised_per_bin_by_training_statistics() -> None:
    train, validation = normalized_arrays("train"), normalized_arrays("validation")
    real = train["input_paddings"] == 0
    np.testing.assert_allclose(train["inputs"][real].mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(train["inputs"][real].std(0), 1.0, atol=1e-4)
    assert (validation["inputs"][validation["input_paddings"] > 0] == 0).all()
    raw = data.load_split("validation")
    np.testing.assert_array_equal(validation["targets"], raw.targets)
    real = raw.input_paddings == 0  # on real frames each bin is an increasing affine map of the raw one
    assert np.corrcoef(validation["inputs"][real][:, 5], raw.inputs[real][:, 5])[0, 1] > 0.9999


# ---- CTC, decoding, WER known answers ----------------------------------------------------------------


def test_ctc_reference_known_answers() -> None:
    uniform = np.zeros((2, 2))  # blank and one label, each 1/2 per frame
    # Label 1 in 2 frames: alignments "1 1", "b 1", "1 b" -> 3/4.
    assert ctc_loss_reference(uniform, [1]) == pytest.approx(-math.log(3 / 4))
    assert ctc_loss_reference(uniform, []) == pytest.approx(-math.log(1 / 4))  # only "b b"
    three = np.zeros((3, 3))  # uniform over 3 classes: every path 1/27
    assert ctc_loss_reference(three, [1, 1]) == pytest.approx(-math.log(1 / 27))  # only "1 b 1"
    assert ctc_loss_reference(three[:2], [1, 1]) == math.inf  # a repeat needs a blank between
    # "1 2" in 3 frames: "1 1 2", "1 2 2", "b 1 2", "1 b 2", "1 2 b" -> 5/27.
    assert ctc_loss_reference(three, [1, 2]) == pytest.approx(-math.log(5 / 27))


def test_greedy_decode_merges_repeats_drops_blanks_and_padding() -> None:
    ids = np.array([[0, 3, 3, 0, 3, 1, 1, 0, 27, 2], [5, 5, 5, 0, 0, 0, 0, 0, 0, 9]])
    paddings = np.zeros((2, 10))
    paddings[:, -1] = 1.0  # the last frame is padding: its label is ignored
    decoded = greedy_ctc_decode(ids, paddings)
    assert [d.tolist() for d in decoded] == [[3, 3, 1, 27], [5]]
    logits = np.eye(28)[ids]  # the same through an argmax
    assert [d.tolist() for d in greedy_ctc_decode(logits, paddings)] == [[3, 3, 1, 27], [5]]
    assert data.ids_to_text(decoded[0]) == "cca "


def test_word_error_rate_known_answers() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert word_errors("the cat sat", "the bat sat on") == (2, 3)  # one substitution, one insertion
    assert word_errors("a b c", "") == (3, 3)
    assert word_error_rate(["a b", "c d e"], ["a b", "c e"]) == pytest.approx(1 / 5)  # corpus, not mean
    assert word_error_rate(["a"], ["b c d"]) == pytest.approx(3.0)  # may exceed 1


def test_eval_outputs_score_an_oracle_and_a_dropped_word() -> None:
    split = small_split("validation")
    targets, target_paddings = split.targets[:4], split.target_paddings[:4]
    # One frame per label, the real labels then blanks: decodes back to the transcripts.
    logits = np.eye(data.NUM_CLASSES)[targets] * 5.0
    out = speech_eval_outputs(logits, target_paddings, targets, target_paddings, np.ones(4))
    words = sum(len(t.split()) for t in split.transcripts[:4])
    assert out == {"ctc_loss_summed": 4.0, "num_labels": (1 - target_paddings).sum(), "word_errors": 0.0,
                   "num_words": words}  # fmt: skip
    blanked = target_paddings.copy()
    blanked[0, : len(split.transcripts[0].split()[0])] = 1.0  # hide the first word's frames
    assert speech_eval_outputs(logits, blanked, targets, target_paddings, np.ones(4))["word_errors"] == 1.0


def test_ctc_losses_agree_with_each_other_and_the_reference(workloads: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 12, data.NUM_CLASSES)).astype(np.float32)
    logit_paddings = np.zeros((3, 12), np.float32)
    logit_paddings[1, 9:] = logit_paddings[2, 5:] = 1.0
    targets = np.array([[3, 1, 20, 0], [4, 15, 7, 0], [1, 2, 0, 0]], np.int32)
    target_paddings = (targets == 0).astype(np.float32)
    torch_loss = workloads["pytorch"].loss_fn(
        tuple(map(torch.from_numpy, (targets, target_paddings))),
        tuple(map(torch.from_numpy, (logits, logit_paddings))),
    )
    jax_loss = workloads["jax"].loss_fn((targets, target_paddings), (logits, logit_paddings))
    reference = [
        ctc_loss_reference(logits[b][logit_paddings[b] == 0], targets[b][target_paddings[b] == 0])
        for b in range(3)
    ]
    np.testing.assert_allclose(torch_loss["per_example"].numpy(), reference, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(jax_loss["per_example"]), reference, rtol=1e-4)
    assert float(torch_loss["n_valid_examples"]) == float(jax_loss["n_valid_examples"]) == 8.0


# ---- one train step and one eval per framework ------------------------------------------------------


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_train_steps_and_eval(workloads: dict[str, Any], framework: str) -> None:
    """Init, two AdamW steps (the first at learning rate 0: warmup starts there), then eval_model."""
    workload = workloads[framework]
    run = adamw_steps_and_eval(workload, framework)
    assert_speech_batches(run.batches, run.batch_size)
    metrics = run.metrics
    assert_metrics_finite(metrics, ("ctc_loss", "wer"))
    assert metrics["validation/wer"] >= 0.0 and not workload.target_metric_higher_is_better
    assert metrics["train/ctc_loss"] != run.before["train/ctc_loss"]  # the second step changed the model
    if framework == "jax":  # update_batch_norm=True moved the running statistics
        assert any(np.abs(leaf).sum() > 0 for leaf in jax.tree.leaves(run.model_state) if leaf.ndim)


def assert_speech_batches(batches: list[dict[str, Any]], batch_size: int) -> None:
    """Training batches of ``batch_size`` full-length utterances: (inputs, paddings) and (targets,
    paddings) pairs, as the speech workloads' input queues give them."""
    for batch in batches:
        assert batch["inputs"][0].shape == (batch_size, data.MAX_FRAMES, data.NUM_BINS)
        assert batch["targets"][1].shape == (batch_size, data.MAX_TARGET_LENGTH)


# ---- parity ------------------------------------------------------------------------------------------


def test_parameter_counts_shapes_and_types_agree(models: tuple[Any, ...]) -> None:
    torch_workload, jax_workload, model, flax_params, flax_stats = models
    params, stats = jax_workload.init_model_fn(jax.random.PRNGKey(0))
    same_tree = lambda a, b: jax.tree.structure(a) == jax.tree.structure(b)  # noqa: E731
    assert same_tree(params, flax_params) and same_tree(stats, flax_stats)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, flax_params)
    jax_types = by_torch_name(jax_workload.model_params_types, {"kernel": "weight", "scale": "weight"})
    jax_types = {name.replace("blocks_", "blocks."): kind for name, kind in jax_types.items()}
    assert jax_types == torch_workload.model_params_types
    assert sum(p.numel() for p in model.parameters()) == sum(x.size for x in jax.tree.leaves(params))
    kinds = list(jax_types.values())
    for kind in ("Q", "K", "V", "OUT"):
        assert kinds.count(ParameterType[f"ATTENTION_{kind}"]) == conformer_torch.NUM_BLOCKS
    assert kinds.count(ParameterType.BATCH_NORM_SCALE) == kinds.count(ParameterType.CONV_WEIGHT) - 1


@pytest.mark.parametrize("mode", [ForwardPassMode.EVAL, ForwardPassMode.TRAIN])
def test_forward_and_loss_parity(models: tuple[Any, ...], mode: ForwardPassMode) -> None:
    """Same weights, float32: logits within 1e-4 and equal losses, in eval mode (running statistics) and
    in train mode (masked batch statistics, which both frameworks then fold into equal running ones)."""
    torch_workload, jax_workload, model, flax_params, flax_stats = models
    batch = host_batch(16)
    torch_batch, jax_batch = torch_workload.batch_to_device(batch), jax_workload.batch_to_device(batch)
    torch_logits, _ = torch_workload.model_fn(model, torch_batch, None, mode, None, False, 0.0)
    jax_logits, jax_stats = jax_workload.model_fn(flax_params, jax_batch, flax_stats, mode, None, True, 0.0)
    np.testing.assert_allclose(torch_logits[0].detach().numpy(), jax_logits[0], atol=1e-4, rtol=0)
    np.testing.assert_array_equal(torch_logits[1].numpy(), jax_logits[1])
    torch_loss = torch_workload.loss_fn(torch_batch["targets"], torch_logits)
    jax_loss = jax_workload.loss_fn(jax_batch["targets"], jax_logits)
    for key in ("summed", "n_valid_examples"):
        assert float(torch_loss[key].detach()) == pytest.approx(float(jax_loss[key]), rel=1e-5)
    if mode == ForwardPassMode.TRAIN:
        saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
        torch_workload.model_fn(model, torch_batch, None, mode, None, True, 0.0)  # now update the buffers
        _, moved_stats = torch_to_flax(model)
        model.load_state_dict(saved, strict=False)
        model.eval()
        for ours, theirs in zip(jax.tree.leaves(jax_stats), jax.tree.leaves(moved_stats), strict=True):
            np.testing.assert_allclose(ours, theirs, atol=1e-5)
        assert not np.allclose(jax.tree.leaves(jax_stats)[0], jax.tree.leaves(flax_stats)[0])


def test_padding_and_batch_mates_do_not_leak(models: tuple[Any, ...]) -> None:
    """An utterance's eval logits do not depend on its batch; train-mode batch statistics ignore an
    all-padding utterance (attention, convolution and batch norm all respect the masks)."""
    torch_workload, _, model, *_ = models
    batch = host_batch(6)

    def forward(arrays: dict[str, np.ndarray], mode: ForwardPassMode) -> Any:
        logits, _ = torch_workload.model_fn(
            model, torch_workload.batch_to_device(arrays), None, mode, None, False, 0.0
        )
        return logits[0].detach().numpy()

    together = forward(batch, ForwardPassMode.EVAL)
    for row in (0, 4):
        alone = forward({key: value[row : row + 1] for key, value in batch.items()}, ForwardPassMode.EVAL)
        np.testing.assert_allclose(together[row], alone[0], atol=1e-5)
    padded = {key: np.concatenate([value, np.zeros_like(value[:1])]) for key, value in batch.items()}
    padded["input_paddings"][-1] = padded["target_paddings"][-1] = 1.0
    with_padding = forward(padded, ForwardPassMode.TRAIN)
    np.testing.assert_allclose(forward(batch, ForwardPassMode.TRAIN), with_padding[:6], atol=1e-5)
    model.eval()


def test_dropout_is_a_model_fn_argument(models: tuple[Any, ...]) -> None:
    """Rate 0 gives the deterministic train-mode output; a positive rate changes it. JAX runs jitted with
    the rate traced, as a submission may pass it."""
    torch_workload, jax_workload, model, flax_params, flax_stats = models
    batch = host_batch(8, "test")
    torch_batch, jax_batch = torch_workload.batch_to_device(batch), jax_workload.batch_to_device(batch)

    @jax.jit
    def jax_forward(params: Any, stats: Any, batch: dict[str, Any], rate: jax.Array) -> jax.Array:
        key = jax.random.PRNGKey(0)
        return jax_workload.model_fn(params, batch, stats, ForwardPassMode.TRAIN, key, False, rate)[0][0]

    def torch_forward(rate: float) -> np.ndarray:
        logits, _ = torch_workload.model_fn(
            model, torch_batch, None, ForwardPassMode.TRAIN, None, False, rate
        )
        return logits[0].detach().numpy()

    deterministic = torch_forward(0.0)
    for forward in (
        torch_forward,
        lambda rate: np.asarray(jax_forward(flax_params, flax_stats, jax_batch, rate)),
    ):
        np.testing.assert_allclose(forward(0.0), deterministic, atol=1e-4)
        assert np.abs(forward(0.3) - deterministic).max() > 1e-2
    model.eval()
