"""criteo1tb_mini: data, the log-loss metric, a train step and eval per framework, PyTorch/JAX parity.

Most tests run on small click logs drawn by the workload's own generator (4,096 training and 2,000 eval
impressions; every eval split then has 2,000 rows, so JAX compiles one eval shape). Parity copies the
PyTorch weights into the Flax tree (Linear weight -> kernel transposed; embeddings and biases as they are)
and asserts float32 eval-mode logits within 1e-4, equal losses, parameter counts and parameter types.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import Counter
from functools import cache
from typing import Any

import numpy as np
import pytest
from helpers import (
    ADAMW_FIRST_POINT,
    RNGS,
    adamw,
    adamw_steps,
    adamw_update,
    assert_eval_unchanged,
    assert_metrics_agree,
    both_losses,
    builtin_entry,
    flat_parameters,
    sizes_and_types,
)

from algoperf_workloads.criteo1tb_mini import data
from algoperf_workloads.criteo1tb_mini.workload import BaseCriteo1TbMiniWorkload
from pytest_algoperf.spec import ForwardPassMode, LossType, ParameterType

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy


SMALL_SEED = 11
SMALL_TRAIN, SMALL_EVAL = 4_096, 2_000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(
    framework: str, train_size: int = SMALL_TRAIN, name: str = "criteo1tb_mini"
) -> BaseCriteo1TbMiniWorkload:
    """The workload (or the variant ``name``) on small logs from the same generator and teacher family
    (another seed)."""

    class Small(builtin_entry(name).workload_class(framework)):  # type: ignore[misc, valid-type]
        @property
        def data(self) -> data.ClickLogs:
            return data.make_click_logs(SMALL_SEED, train_size, SMALL_EVAL)

    workload = Small()
    workload.name, workload.base_name = name, "criteo1tb_mini"
    return workload


def torch_to_flax(model: Any) -> dict[str, Any]:
    """Flax params for the PyTorch DLRM: the same names; a Linear's weight is its kernel transposed."""
    tree: dict[str, Any] = {}
    for name, parameter in model.named_parameters():
        value = parameter.detach().cpu().numpy()
        if name == "embedding":
            tree[name] = jnp.asarray(value)
            continue
        layer, leaf = name.split(".")
        if "norm" in layer:  # a layernorm (the layernorm variant's): Flax calls its weight "scale"
            tree.setdefault(layer, {})["scale" if leaf == "weight" else "bias"] = jnp.asarray(value)
            continue
        tree.setdefault(layer, {})["kernel" if leaf == "weight" else "bias"] = jnp.asarray(
            value.T if leaf == "weight" else value
        )
    return tree


@cache
def paired_models(name: str = "criteo1tb_mini") -> tuple[Any, Any, Any, Any]:
    """A PyTorch model, its weights in Flax, and both workloads (on the small logs) of ``name``."""
    torch_workload, jax_workload = small("pytorch", name=name), small("jax", name=name)
    model, _ = torch_workload.init_model_fn(RNGS["pytorch"](0))
    jax_workload.init_model_fn(RNGS["jax"](0))  # sets param_shapes
    return torch_workload, jax_workload, model, torch_to_flax(model)


# ---- data ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_arrays_and_another_seed_does_not() -> None:
    first = data.make_click_logs.__wrapped__(5, 1_000, 300)
    again = data.make_click_logs.__wrapped__(5, 1_000, 300)
    other = data.make_click_logs.__wrapped__(6, 1_000, 300)
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(first.split(name).inputs, again.split(name).inputs)
        np.testing.assert_array_equal(first.split(name).targets, again.split(name).targets)
        assert not np.array_equal(first.split(name).inputs, other.split(name).inputs)


def test_eval_splits_do_not_depend_on_the_training_size() -> None:
    """Each split has its own seed, so resizing the training set leaves validation and test unchanged."""
    small_logs = data.make_click_logs(SMALL_SEED, SMALL_TRAIN, SMALL_EVAL)
    larger = data.make_click_logs.__wrapped__(SMALL_SEED, 2 * SMALL_TRAIN, SMALL_EVAL)
    np.testing.assert_array_equal(small_logs.validation.inputs, larger.validation.inputs)
    np.testing.assert_array_equal(small_logs.test.targets, larger.test.targets)


def test_splits_are_disjoint_well_formed_and_click_about_a_quarter_of_the_time() -> None:
    logs = data.make_click_logs(SMALL_SEED, SMALL_TRAIN, SMALL_EVAL)
    rows = {
        name: {row.tobytes() for row in logs.split(name).inputs} for name in ("train", "validation", "test")
    }
    assert not rows["train"] & rows["validation"]
    assert not rows["train"] & rows["test"]
    assert not rows["validation"] & rows["test"]
    for name in ("train", "validation", "test"):
        split = logs.split(name)
        assert split.inputs.dtype == np.float32 and split.inputs.shape[1] == 39
        assert np.isfinite(split.inputs).all() and np.isfinite(split.targets).all()
        dense, ids = split.inputs[:, :13], split.inputs[:, 13:]
        assert (dense >= 0).all()  # log(1 + count) of non-negative counts
        assert (ids == np.round(ids)).all() and (ids >= 0).all()
        assert (ids < np.array(data.VOCAB_SIZES)).all()
        assert set(np.unique(split.targets)) <= {0.0, 1.0}
        assert 0.2 < split.targets.mean() < 0.3


def test_ids_follow_a_zipf_law_a_few_frequent_and_many_rare() -> None:
    ids = data.make_click_logs(SMALL_SEED, SMALL_TRAIN, SMALL_EVAL).train.inputs[:, 13:].astype(np.int64)
    largest = int(np.argmax(data.VOCAB_SIZES))
    counts = np.sort(np.bincount(ids[:, largest], minlength=data.VOCAB_SIZES[largest]))[::-1]
    assert counts[:10].sum() > 0.4 * len(ids)  # the ten most frequent ids of a 1,500-id feature
    assert (counts == 0).sum() > data.VOCAB_SIZES[largest] / 2  # most ids unseen in 4,096 impressions


def test_labels_carry_structure_the_teacher_beats_the_base_rate_by_far() -> None:
    """Measurable structure: the teacher's own probabilities score well below the base-rate entropy."""
    logs = data.make_click_logs(SMALL_SEED, SMALL_TRAIN, SMALL_EVAL)
    rate = float(logs.train.targets.mean())
    trivial = data.log_loss(np.full(SMALL_EVAL, math.log(rate / (1 - rate))), logs.validation.targets)
    assert data.bayes_log_loss(logs.validation) < trivial - 0.1


def test_a_briefly_trained_dlrm_beats_the_trivial_predictor() -> None:
    """100 AdamW steps of 2,048 on 100,000 impressions (2 epochs): validation log loss clearly below the base
    rate's."""
    workload = small("pytorch", train_size=100_000)
    rate = float(workload.data.train.targets.mean())
    trivial = data.log_loss(
        np.full(SMALL_EVAL, math.log(rate / (1 - rate))), workload.data.validation.targets
    )
    workload.calibration = dataclasses.replace(workload.calibration, step_hint=100)  # the schedule's length
    params, model_state = workload.init_model_fn(RNGS["pytorch"](0))
    run = adamw_steps(workload, "pytorch", params, model_state, 100, first_update_seed=3)
    metrics = workload.eval_model(workload.eval_batch_size, run.params, run.model_state, None, None, 100)
    assert metrics["validation/loss"] < trivial - 0.03


# ---- metric ----------------------------------------------------------------------------------------


def test_log_loss_known_answers() -> None:
    # logit 0 predicts 1/2: ln 2 whatever the label.
    assert data.log_loss(np.zeros(4), np.array([0, 1, 1, 0])) == pytest.approx(math.log(2))
    # By hand: logit 0 on a click costs ln 2; logit ln 3 (p = 3/4) on a non-click costs -ln(1/4) = ln 4;
    # the mean is (ln 2 + ln 4) / 2 = 1.5 ln 2.
    assert data.log_loss(np.array([0.0, math.log(3)]), np.array([1.0, 0.0])) == pytest.approx(
        1.5 * math.log(2)
    )
    # Confident and right costs ~0; confident and wrong costs ~|logit|, without overflow.
    assert data.log_loss(np.array([50.0, -50.0]), np.array([1.0, 0.0])) == pytest.approx(0.0, abs=1e-12)
    assert data.log_loss(np.array([1000.0]), np.array([0.0])) == pytest.approx(1000.0)


def test_summarize_eval_accumulates_batches_into_the_whole_split_log_loss() -> None:
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=100), (rng.random(100) < 0.3).astype(np.float32)
    totals = {"logits": logits, "targets": targets}
    assert BaseCriteo1TbMiniWorkload.summarize_eval(None, totals, 100) == {  # type: ignore[arg-type]
        "loss": pytest.approx(data.log_loss(logits, targets))
    }


def test_the_workload_is_registered_lower_is_better_with_sensible_calibration() -> None:
    entry = builtin_entry("criteo1tb_mini")
    assert set(entry.implementations) == {"pytorch", "jax"}
    workload = small("pytorch")
    assert workload.loss_type is LossType.SIGMOID_CROSS_ENTROPY and workload.target_metric_name == "loss"
    target = workload.validation_target_value
    assert 0.3 < target < 0.56  # between the teacher's loss and the base rate's entropy
    assert workload.has_reached_validation_target({"validation/loss": target - 1e-3})
    assert not workload.has_reached_validation_target({"validation/loss": target + 1e-3})
    assert not workload.has_reached_validation_target({"validation/loss": math.nan})


# ---- one train step and one eval per framework ------------------------------------------------------


def setup_training(workload: Any, submission: Any, framework: str) -> tuple[Any, Any, Any, Any]:
    params, model_state = workload.init_model_fn(RNGS[framework](0))
    optimizer_state = submission.module.init_optimizer_state(
        workload, params, model_state, ADAMW_FIRST_POINT, RNGS[framework](1)
    )
    batch_size = submission.get_batch_size("criteo1tb_mini", "criteo1tb_mini")
    queue = workload.build_input_queue(RNGS[framework](2), "train", None, batch_size)
    return params, model_state, optimizer_state, queue


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_one_adamw_step_and_one_eval(framework: str) -> None:
    workload, submission = small(framework), adamw(framework)
    params, model_state, optimizer_state, queue = setup_training(workload, submission, framework)
    batch = next(queue)
    assert batch["inputs"].shape == (2048, 39) and batch["targets"].shape == (2048,)
    before = flat_parameters(params)
    for step in range(2):  # the warmup's learning rate is 0 at step 0, both on the same batch
        optimizer_state, params, model_state = adamw_update(
            submission, workload, params, model_state, optimizer_state, batch, step, RNGS[framework](3 + step)
        )
    after = flat_parameters(params)
    assert np.isfinite(after).all() and not np.array_equal(before, after)
    metrics = workload.eval_model(workload.eval_batch_size, params, model_state, None, None, 1)
    assert set(metrics) == {"train/loss", "validation/loss", "test/loss"}
    assert all(0.0 < value < 5.0 for value in metrics.values())


# ---- parity ----------------------------------------------------------------------------------------


def test_forward_outputs_agree_within_1e4_in_eval_mode() -> None:
    torch_workload, jax_workload, model, flax_params = paired_models()
    inputs = torch_workload.data.validation.inputs
    torch_logits, _ = torch_workload.model_fn(
        model, {"inputs": torch.from_numpy(inputs)}, None, ForwardPassMode.EVAL, None, False
    )
    jax_logits, _ = jax_workload.model_fn(
        flax_params, {"inputs": jnp.asarray(inputs)}, None, ForwardPassMode.EVAL, None, False
    )
    assert torch_logits.shape == jax_logits.shape == (SMALL_EVAL, 1)
    np.testing.assert_allclose(torch_logits.detach().numpy(), np.asarray(jax_logits), rtol=0, atol=1e-4)


def test_eval_metrics_agree() -> None:
    torch_workload, jax_workload, model, flax_params = paired_models()
    torch_metrics = torch_workload.eval_model(torch_workload.eval_batch_size, model, None, None, None, 0)
    jax_metrics = jax_workload.eval_model(jax_workload.eval_batch_size, flax_params, None, None, None, 0)
    assert_metrics_agree(torch_metrics, jax_metrics, 1e-5)
    assert_eval_unchanged(torch_metrics, "pytorch at init")
    assert_eval_unchanged(jax_metrics, "jax with the PyTorch weights")


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("masked", [False, True])
def test_losses_agree_masked_or_not_and_ignore_smoothing(label_smoothing: float, masked: bool) -> None:
    torch_workload, jax_workload, _, _ = paired_models()
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 2.0, (64, 1)).astype(np.float32)
    labels = (rng.random(64) < 0.25).astype(np.float32)
    mask = (rng.random(64) < 0.7).astype(np.float32) if masked else None
    torch_loss, jax_loss = both_losses(torch_workload, jax_workload, labels, logits, mask, label_smoothing)
    for key in ("summed", "n_valid_examples"):
        assert float(torch_loss[key]) == pytest.approx(float(jax_loss[key]), rel=1e-6)
    np.testing.assert_allclose(
        torch_loss["per_example"].numpy(), np.asarray(jax_loss["per_example"]), rtol=1e-6, atol=1e-6
    )
    # By hand for the first example: softplus(l) - t l with the label itself, smoothing or not (AlgoPerf's
    # criteo1tb ignores label_smoothing).
    expected = math.log1p(math.exp(logits[0, 0])) - labels[0] * logits[0, 0]
    assert float(jax_loss["per_example"][0]) == pytest.approx(
        expected * (1 if mask is None else mask[0]), 1e-5
    )


def test_parameter_counts_shapes_and_types_agree() -> None:
    torch_workload, jax_workload, model, flax_params = paired_models()
    torch_types = assert_parameters_agree(torch_workload, jax_workload, model, flax_params)
    counts = Counter(torch_types.values())
    assert counts == {ParameterType.EMBEDDING: 1, ParameterType.WEIGHT: 8, ParameterType.BIAS: 8}
    assert torch_workload.is_output_params("top_4.weight") and jax_workload.is_output_params("top_4")
    assert not torch_workload.is_output_params("top_3.weight")


def test_one_embedding_table_gives_each_feature_its_own_block_of_rows() -> None:
    """As AlgoPerf's DLRM-small, all 26 features share one table (9,352 rows): feature i's id k is row
    offset_i + k, so changing one row moves exactly the examples whose feature i is k, in both frameworks."""
    torch_workload, jax_workload, model, flax_params = paired_models()
    assert tuple(model.embedding.shape) == (sum(data.VOCAB_SIZES), 16) == (9_352, 16)
    assert flax_params["embedding"].shape == (9_352, 16)
    offsets = np.cumsum((0, *data.VOCAB_SIZES[:-1]))
    feature = 20  # the largest vocabulary, 1,500 ids
    inputs = torch_workload.split_arrays("validation")["inputs"][:256]
    row_id = int(inputs[0, data.NUM_DENSE_FEATURES + feature])
    hit = inputs[:, data.NUM_DENSE_FEATURES + feature] == row_id
    assert 0 < hit.sum() < len(hit)
    nudged_model = copy.deepcopy(model)
    with torch.no_grad():
        nudged_model.embedding[offsets[feature] + row_id] += 1.0
        before = model(torch.as_tensor(inputs)).numpy().ravel()
        after = nudged_model(torch.as_tensor(inputs)).numpy().ravel()
    changed = ~np.isclose(before, after, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(changed, hit)
    flax_nudged = torch_to_flax(nudged_model)
    jax_before, jax_after = (
        np.asarray(jax_workload._model.apply({"params": p}, jnp.asarray(inputs), train=False)).ravel()
        for p in (flax_params, flax_nudged)
    )
    np.testing.assert_array_equal(~np.isclose(jax_before, jax_after, rtol=0, atol=1e-7), hit)


def assert_parameters_agree(torch_workload: Any, jax_workload: Any, model: Any, flax_params: Any) -> Any:
    """Same tree, shapes, count and (size, type) pairs in both frameworks; returns PyTorch's types."""
    # The explicit mapping yields exactly the Flax init's tree and shapes.
    assert jax.tree.structure(flax_params) == jax.tree.structure(jax_workload.param_shapes, is_leaf=_is_shape)
    assert jax.tree.leaves(jax.tree.map(jnp.shape, flax_params), is_leaf=_is_shape) == jax.tree.leaves(
        jax_workload.param_shapes, is_leaf=_is_shape
    )
    torch_count = sum(p.numel() for p in model.parameters())
    jax_count = sum(
        int(np.prod(shape)) for shape in jax.tree.leaves(jax_workload.param_shapes, is_leaf=_is_shape)
    )
    assert torch_count == jax_count
    torch_pairs, jax_pairs = sizes_and_types(torch_workload, jax_workload)
    assert torch_pairs == jax_pairs
    return torch_workload.model_params_types


def _is_shape(node: Any) -> bool:
    return isinstance(node, tuple)


# ---- dropout ---------------------------------------------------------------------------------------


def test_dropout_is_a_model_fn_argument_active_only_in_training() -> None:
    torch_workload, jax_workload, model, flax_params = paired_models()
    inputs = torch_workload.data.validation.inputs[:128]
    eval_logits, _ = jax_workload.model_fn(
        flax_params, {"inputs": jnp.asarray(inputs)}, None, ForwardPassMode.EVAL, None, False, 0.5
    )

    @jax.jit
    def train_logits(rate: jax.Array) -> jax.Array:  # a traced rate, as a submission may pass it
        logits, _ = jax_workload.model_fn(
            flax_params,
            {"inputs": jnp.asarray(inputs)},
            None,
            ForwardPassMode.TRAIN,
            RNGS["jax"](0),
            True,
            rate,
        )
        return logits

    np.testing.assert_allclose(np.asarray(train_logits(0.0)), np.asarray(eval_logits), atol=1e-6)
    assert not np.allclose(np.asarray(train_logits(0.5)), np.asarray(eval_logits), atol=1e-3)
    torch_inputs = {"inputs": torch.from_numpy(inputs)}
    torch_eval, _ = torch_workload.model_fn(model, torch_inputs, None, ForwardPassMode.EVAL, None, False, 0.5)
    torch_train, _ = torch_workload.model_fn(
        model, torch_inputs, None, ForwardPassMode.TRAIN, RNGS["pytorch"](0), True, 0.5
    )
    np.testing.assert_allclose(torch_eval.detach().numpy(), np.asarray(eval_logits), atol=1e-4)
    assert not np.allclose(torch_train.detach().numpy(), torch_eval.detach().numpy(), atol=1e-3)


def test_both_frameworks_initialise_with_algoperfs_scheme() -> None:
    """Same distributions per parameter: embeddings uniform in [0, 1/sqrt(V)), bottom kernels Glorot
    uniform, top kernels normal with variance 2 / (fan_in + fan_out), biases normal, variance 1/fan_out."""
    _, jax_workload, model, _ = paired_models()
    flax_params, _ = jax_workload.init_model_fn(RNGS["jax"](0))
    flat_flax = {
        jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(flax_params)
    }
    flat_torch = {
        jax.tree_util.keystr(path): leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(torch_to_flax(model))
    }
    assert flat_flax.keys() == flat_torch.keys()
    for key, torch_value in flat_torch.items():
        torch_value, flax_value = np.asarray(torch_value), np.asarray(flat_flax[key])
        expected_mean = 0.0
        if "embedding" in key:
            bound = 1 / math.sqrt(len(flax_value))
            assert flax_value.min() >= 0 and flax_value.max() < bound and torch_value.max() < bound
            expected_mean = bound / 2
        if torch_value.size >= 500:  # enough draws to compare the spread
            assert np.std(flax_value) == pytest.approx(np.std(torch_value), rel=0.15), key
            assert float(np.mean(flax_value)) == pytest.approx(
                expected_mean, abs=0.2 * float(np.std(torch_value))
            )
