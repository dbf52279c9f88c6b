"""wmt_mini: the synthetic language pair, BLEU and loss known answers, a train step and eval per framework,
PyTorch/JAX parity (forward, losses, parameters, greedy decoding) with copied weights, dropout semantics.

Parity copies the PyTorch weights into the Flax tree (names match; Linear weights are transposed into
kernels, the embedding and layernorm weights renamed) and asserts float32 eval-mode outputs within 1e-4.
Every small split holds 64 sentences, so JAX compiles one eval shape for the whole file.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import pytest
from helpers import (
    RNGS,
    adamw_steps,
    adamw_steps_and_eval,
    assert_metrics_agree,
    assert_metrics_finite,
    shapes_and_types_by_torch_name,
    tree_set,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from algoperf_workloads.wmt_mini import data
from algoperf_workloads.wmt_mini.workload import corpus_bleu, corpus_bleu_of_tokens, cross_entropy
from pytest_algoperf.spec import ForwardPassMode, ParameterType

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from algoperf_workloads.wmt_mini import jax as wmt_jax  # noqa: E402
from algoperf_workloads.wmt_mini import pytorch as wmt_torch  # noqa: E402

SMALL_SIZES = {"train": 64, "validation": 64, "test": 64}
CLASSES = {"pytorch": wmt_torch.WmtMiniWorkload, "jax": wmt_jax.WmtMiniWorkload}
PARAMETERS = 303_552
# Flax leaf -> PyTorch parameter name's last part.
TORCH_LEAVES = {"kernel": "weight", "scale": "weight", "embedding": "weight"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@cache
def small_splits() -> dict[str, data.TranslationSplit]:
    return data.generate_splits(5, SMALL_SIZES)


def small(workload_class: type) -> Any:
    """The workload on a few sentences per split, so a train step and an eval take well under a second."""

    class Small(workload_class):
        def split(self, split: str) -> data.TranslationSplit:
            return small_splits()[split]

    workload = Small()
    workload.name = workload.base_name = "wmt_mini"
    return workload


def torch_to_flax(model: Any) -> dict[str, Any]:
    """The Flax params for a PyTorch Transformer: same module paths; Linear weight -> kernel (transposed),
    LayerNorm weight -> scale, Embedding weight -> embedding, biases as they are."""
    tree: dict[str, Any] = {}
    for name, parameter in model.named_parameters():
        *path, leaf = name.split(".")
        value = parameter.detach().cpu().numpy()
        if path[-1] == "shared_embedding":
            leaf = "embedding"
        elif leaf == "weight" and (path[-1].startswith("ln") or path[-1] == "norm"):
            leaf = "scale"
        elif leaf == "weight":
            leaf, value = "kernel", value.T
        tree_set(tree, [*path, leaf], jnp.asarray(value))
    return tree


@pytest.fixture(scope="module")
def workloads() -> dict[str, Any]:
    """One small workload per framework, shared so JAX's jitted eval compiles once."""
    return {framework: small(workload_class) for framework, workload_class in CLASSES.items()}


@pytest.fixture(scope="module")
def models(workloads: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Both small workloads, a PyTorch model after 40 AdamW steps (so that it translates something other
    than one repeated token) and the same weights as Flax params."""
    model, _ = workloads["pytorch"].init_model_fn(RNGS["pytorch"](3))
    model = adamw_steps(workloads["pytorch"], "pytorch", model, None, 40).params
    return workloads["pytorch"], workloads["jax"], model, torch_to_flax(model)


# ---- data --------------------------------------------------------------------------------------------


def test_same_seed_same_sentences_and_other_seed_differs() -> None:
    first, second, other = data.generate_pairs(5, 50), data.generate_pairs(5, 50), data.generate_pairs(6, 50)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert data.load_split("validation") is data.load_split("validation")  # cached: generated once


def test_real_splits_are_disjoint_well_formed_and_translated_by_the_rules() -> None:
    splits = {name: data.load_split(name) for name in data.SPLITS}
    assert {name: len(split) for name, split in splits.items()} == data.SPLIT_SIZES
    sentences = {name: {row.tobytes() for row in split.inputs} for name, split in splits.items()}
    assert sum(len(s) for s in sentences.values()) == sum(data.SPLIT_SIZES.values())  # no repeats at all
    for split in splits.values():
        for tokens in (split.inputs, split.targets):
            lengths = (tokens != data.PAD).sum(axis=1)
            assert (tokens[np.arange(len(tokens)), lengths - 1] == data.EOS).all()  # EOS, then padding only
            assert ((tokens != data.PAD).cumprod(axis=1).sum(axis=1) == lengths).all()
            assert tokens.min() >= 0 and tokens.max() < data.VOCAB_SIZE
        assert (split.targets >= data.TARGET_START).sum() == (split.targets > data.EOS).sum()
        assert (split.arrays()["weights"] == (split.targets != data.PAD)).all()
    # The vectorised generator and the sentence-by-sentence parser agree on every rule.
    for split in (splits["validation"], splits["test"]):
        for source, target in zip(split.inputs, split.targets, strict=True):
            assert data.translate(data.strip(source)) == data.strip(target)


def test_translate_applies_each_rule() -> None:
    words = data.lexicon()
    _, adj, noun, verb, adverb = (words.offsets[c] for c in data.CATEGORIES)
    d = words.dictionary

    def determiner(noun_token: int, choice: int = 0) -> int:
        """A determiner that agrees with the noun (one of its class's)."""
        return words.offsets["determiner"] + int(
            words.determiners_of_class[words.word_class(noun_token), choice]
        )

    cat = next(n for n in range(noun + 1, noun + data.NOUNS) if words.word_class(n) != words.word_class(noun))
    the, a = determiner(noun), determiner(cat, 1)
    # "the(det) big(adj) dog(noun) sees(verb) a(det) cat(noun) quickly(adverb)"
    sentence = [the, adj, noun, verb, a, cat, adverb]
    expected = [d[the], d[noun], d[adj], d[a], d[cat], d[adverb], d[verb], words.suffix(noun)]
    assert data.translate(sentence) == expected
    assert words.suffix(noun) != words.suffix(cat)  # the subject's class, not the object's
    assert words.suffix(noun) == data.SUFFIX_START + words.determiner_class(the)
    assert sorted(np.bincount(words.noun_class).tolist()) == [data.NOUNS // data.NUM_CLASSES] * 3
    assert words.determiners_of_class.size == data.DETERMINERS
    for not_a_sentence in ([the, adj, verb], [a, noun, verb]):  # no noun phrase; disagreeing determiner
        with pytest.raises(ValueError):
            data.translate(not_a_sentence)


def test_the_task_needs_more_than_a_dictionary() -> None:
    """The word-by-word gloss (no reordering, no agreement) scores below 5 BLEU; the rules score 100."""
    split = data.load_split("validation")
    sources = [data.strip(row) for row in split.inputs]
    references = [data.strip(row) for row in split.targets]
    assert corpus_bleu([data.gloss(s) for s in sources], references) < 5.0
    assert corpus_bleu([data.translate(s) for s in sources], references) == pytest.approx(100.0)


# ---- metric and loss ---------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sentences=st.integers(1, 30), noise=st.floats(0.0, 1.0))
def test_bleu_of_token_arrays_is_sacrebleus(seed: int, sentences: int, noise: float) -> None:
    """BLEU counted with numpy on token arrays equals sacrebleu's on the stripped sentences: translations
    of references with tokens replaced, sentences cut short by EOS or PAD anywhere, some left empty."""
    rng = np.random.default_rng(seed)
    references = data.load_split("validation").targets[rng.integers(0, 500, sentences)]
    hypotheses = references.copy()
    replaced = rng.random(hypotheses.shape) < noise
    hypotheses[replaced] = rng.integers(0, 40, replaced.sum())  # small ids: repeats, EOS (1) and PAD (0)
    expected = corpus_bleu([data.strip(h) for h in hypotheses], [data.strip(r) for r in references])
    assert corpus_bleu_of_tokens(hypotheses, references) == pytest.approx(expected, abs=1e-9)


def test_corpus_bleu_known_answers() -> None:
    # One sentence, 6 tokens, the last one wrong: n-gram precisions 5/6, 4/5, 3/4, 2/3, no brevity
    # penalty; BLEU = 100 * (5/6 * 4/5 * 3/4 * 2/3) ** (1/4) = 100 * (1/3) ** (1/4).
    assert corpus_bleu([[1, 2, 3, 4, 5, 6]], [[1, 2, 3, 4, 5, 9]]) == pytest.approx(100 / 3**0.25, rel=1e-6)
    # A correct prefix of 4 of 6 tokens: precisions 1, brevity penalty exp(1 - 6/4).
    assert corpus_bleu([[1, 2, 3, 4]], [[1, 2, 3, 4, 5, 6]]) == pytest.approx(100 * math.exp(-0.5), rel=1e-6)
    # Corpus level: counts are summed over sentences before the ratios (9/10, 7/8, 5/6, 3/4 here).
    pair = corpus_bleu([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10]], [[1, 2, 3, 4, 5, 9], [7, 8, 9, 10]])
    assert pair == pytest.approx(100 * (9 / 10 * 7 / 8 * 5 / 6 * 3 / 4) ** 0.25, rel=1e-6)
    assert corpus_bleu([[5, 6, 7, 8]], [[1, 2, 3, 4]]) == 0.0


def test_cross_entropy_known_answers() -> None:
    vocab = 5
    logits = np.zeros((1, 2, vocab))
    logits[0, 1, 3] = 2.0
    targets, weights = np.array([[1, 3]]), np.array([[1.0, 0.0]])
    np.testing.assert_allclose(cross_entropy(logits, targets, weights), [[math.log(vocab), 0.0]])
    z = math.log(4 + math.exp(2.0))
    full = cross_entropy(logits, targets, np.ones((1, 2)))
    np.testing.assert_allclose(full[0, 1], z - 2.0)
    # Label smoothing s: targets (1 - s) one-hot + s / V; a uniform prediction still costs log V.
    smoothed = cross_entropy(logits, targets, np.ones((1, 2)), label_smoothing=0.1)
    np.testing.assert_allclose(smoothed[0, 0], math.log(vocab))
    np.testing.assert_allclose(smoothed[0, 1], 0.9 * (z - 2.0) + 0.1 / vocab * (5 * z - 2.0))


# ---- one train step and one eval per framework ------------------------------------------------------


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_train_step_and_eval(workloads: dict[str, Any], framework: str) -> None:
    """Init, two AdamW steps (the first has learning rate 0: warmup starts there), then eval_model."""
    run = adamw_steps_and_eval(workloads[framework], framework)
    metrics = run.metrics
    assert_metrics_finite(metrics, ("loss", "accuracy", "bleu"))
    assert 0.0 <= metrics["validation/bleu"] <= 100.0 and 0.0 <= metrics["test/accuracy"] <= 1.0
    assert metrics["train/loss"] != run.before["train/loss"]  # the second step changed the model


def test_a_hundred_steps_learn_to_translate() -> None:
    """Learnable: 120 AdamW steps (schedule sized for 240) on the real training data predict far more
    validation tokens, teacher-forced, than the best constant per position (the majority baseline, 14%).
    The AdamW baseline then gets every rule right: see calibration.json."""

    class Short(wmt_torch.WmtMiniWorkload):
        step_hint = 240

    workload = Short()
    workload.name = workload.base_name = "wmt_mini"
    model, _ = workload.init_model_fn(RNGS["pytorch"](0))
    model = adamw_steps(workload, "pytorch", model, None, 120).params
    validation = data.load_split("validation").arrays()
    batch = workload.batch_to_device(validation)
    logits, _ = workload.model_fn(model, batch, None, ForwardPassMode.EVAL, None, False)
    weights = validation["weights"]
    accuracy = ((logits.argmax(dim=-1).numpy() == validation["targets"]) * weights).sum() / weights.sum()
    targets = validation["targets"]
    majority = (
        sum(
            np.bincount(column[column != data.PAD]).max()
            for column in targets.T
            if (column != data.PAD).any()
        )
        / (targets != data.PAD).sum()
    )
    assert majority < 0.2 and accuracy > 2 * majority


# ---- parity ------------------------------------------------------------------------------------------


def test_parameter_counts_shapes_and_types_agree(models: tuple[Any, ...]) -> None:
    torch_workload, jax_workload, model, flax_params = models
    jax_workload.init_model_fn(jax.random.PRNGKey(0))
    from_torch, from_jax = shapes_and_types_by_torch_name(
        torch_workload, jax_workload, TORCH_LEAVES, transposed=lambda name: "embedding" not in name
    )
    assert from_torch == from_jax
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(x.size for x in jax.tree.leaves(flax_params)) == PARAMETERS
    kinds = [kind for _, kind in from_torch.values()]
    assert kinds.count(ParameterType.EMBEDDING) == 1  # shared by encoder, decoder and output
    for attention_kind in (ParameterType.ATTENTION_Q, ParameterType.ATTENTION_OUT):
        assert kinds.count(attention_kind) == 3 * wmt_torch.NUM_LAYERS  # no attention biases
    assert torch_workload.is_output_params("shared_embedding.weight")
    assert jax_workload.is_output_params("shared_embedding")


def test_forward_and_loss_parity(models: tuple[Any, ...]) -> None:
    """Same weights, eval mode, float32: logits within 1e-4; losses with and without the padding mask and
    label smoothing agree with each other and with the numpy reference."""
    torch_workload, jax_workload, model, flax_params = models
    batch = small_splits()["validation"].arrays()
    torch_batch = torch_workload.batch_to_device(batch)
    torch_logits, _ = torch_workload.model_fn(model, torch_batch, None, ForwardPassMode.EVAL, None, False)
    jax_batch = jax_workload.batch_to_device(batch)
    jax_logits, _ = jax_workload.model_fn(flax_params, jax_batch, None, ForwardPassMode.EVAL, None, False)
    logits = torch_logits.numpy()
    assert logits.shape == (SMALL_SIZES["validation"], data.MAX_LENGTH, data.VOCAB_SIZE)
    np.testing.assert_allclose(logits, np.asarray(jax_logits), atol=1e-4, rtol=0)
    targets, weights = batch["targets"], batch["weights"]
    for mask in (weights, None):
        for label_smoothing in (0.0, 0.1):
            torch_loss = torch_workload.loss_fn(
                torch_batch["targets"], torch_logits, None if mask is None else torch_batch["weights"],
                label_smoothing,
            )  # fmt: skip
            jax_loss = jax_workload.loss_fn(
                jax_batch["targets"],
                jax_logits,
                None if mask is None else jax_batch["weights"],
                label_smoothing,
            )
            for key in ("summed", "n_valid_examples"):
                assert float(torch_loss[key]) == pytest.approx(float(jax_loss[key]), rel=1e-5)
            per_example = torch_loss["per_example"].numpy()
            np.testing.assert_allclose(per_example, np.asarray(jax_loss["per_example"]), atol=1e-4)
            full = np.ones_like(weights) if mask is None else mask
            np.testing.assert_allclose(
                per_example, cross_entropy(logits, targets, full, label_smoothing), atol=1e-4
            )
    assert float(torch_loss["n_valid_examples"]) == targets.size  # no mask: every position counts


def test_greedy_decoding_agrees_and_matches_teacher_forcing(models: tuple[Any, ...]) -> None:
    """Both frameworks translate the same; and the cached decoder is the trained one: teacher-forcing the
    greedy translation reproduces it token by token (argmax at every position up to EOS)."""
    _, _, model, flax_params = models
    inputs = small_splits()["test"].inputs
    torch_tokens = wmt_torch.greedy_decode(model, torch.from_numpy(inputs)).numpy()
    jax_tokens = np.asarray(jax.jit(wmt_jax.greedy_decode)(flax_params, jnp.asarray(inputs)))
    np.testing.assert_array_equal(torch_tokens, jax_tokens)
    assert len({tuple(data.strip(row)) for row in torch_tokens}) > 1  # not one repeated answer
    with torch.no_grad():
        forced = model(torch.from_numpy(inputs), torch.from_numpy(torch_tokens)).argmax(dim=-1).numpy()
    for row, decoded in zip(forced, torch_tokens, strict=True):
        length = len(data.strip(decoded))
        assert row[:length].tolist() == data.strip(decoded)
        assert length == data.MAX_LENGTH or decoded[length] in (data.EOS, data.PAD)


def test_eval_model_parity(models: tuple[Any, ...]) -> None:
    """The whole eval (teacher-forced sums, greedy decoding, the shared numpy BLEU) agrees across
    frameworks."""
    torch_workload, jax_workload, model, flax_params = models
    torch_metrics = torch_workload.eval_model(torch_workload.eval_batch_size, model, None, None, None, 0)
    jax_metrics = jax_workload.eval_model(jax_workload.eval_batch_size, flax_params, None, None, None, 0)
    assert_metrics_agree(torch_metrics, jax_metrics, 1e-4)


def test_dropout_is_a_model_fn_argument(models: tuple[Any, ...]) -> None:
    """Rate 0 in train mode equals eval mode; a positive rate, and None (the default 0.1), change the
    output. JAX runs it jitted with the rate traced, and with None static."""
    torch_workload, jax_workload, model, flax_params = models
    batch = small_splits()["test"].arrays()
    torch_batch, jax_batch = torch_workload.batch_to_device(batch), jax_workload.batch_to_device(batch)
    evaluated, _ = torch_workload.model_fn(model, torch_batch, None, ForwardPassMode.EVAL, None, False)
    evaluated = evaluated.numpy()

    def jax_train(params: Any, batch: dict[str, jax.Array], rate: Any) -> jax.Array:
        key = jax.random.PRNGKey(0)
        return jax_workload.model_fn(params, batch, None, ForwardPassMode.TRAIN, key, False, rate)[0]

    def torch_train(rate: float | None) -> np.ndarray:
        rng = RNGS["pytorch"](0)
        logits, _ = torch_workload.model_fn(model, torch_batch, None, ForwardPassMode.TRAIN, rng, False, rate)
        return logits.detach().numpy()

    def jax_traced(rate: float) -> np.ndarray:
        return np.asarray(traced(flax_params, jax_batch, rate))

    traced = jax.jit(jax_train)  # a Python float argument is traced, not static

    for forward in (torch_train, jax_traced):
        np.testing.assert_allclose(forward(0.0), evaluated, atol=1e-4)
        assert np.abs(forward(0.5) - evaluated).max() > 1e-2
    jax_default = jax.jit(jax_train, static_argnums=2)(flax_params, jax_batch, None)
    for default in (torch_train(None), np.asarray(jax_default)):
        assert np.abs(default - evaluated).max() > 1e-3
    model.eval()
