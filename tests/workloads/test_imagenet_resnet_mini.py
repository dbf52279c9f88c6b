"""imagenet_resnet_mini: the shared image generator, the numpy metrics, one AdamW step and one eval per
framework, batch-norm semantics, and PyTorch/JAX parity with copied weights (asserted, not printed)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import (
    ADAMW_FIRST_POINT,
    assert_eval_unchanged,
    assert_metrics_finite,
    assert_same_tree_shapes,
    both_losses,
    one_adamw_step,
    tree_get,
    tree_set,
)

from algoperf_workloads.imagenet_resnet_mini import images
from algoperf_workloads.imagenet_resnet_mini import jax as resnet_jax
from algoperf_workloads.imagenet_resnet_mini import pytorch as resnet_torch
from algoperf_workloads.imagenet_resnet_mini.workload import BaseImageWorkload, accuracy, cross_entropy
from pytest_algoperf.frameworks import numpy_rng
from pytest_algoperf.spec import ForwardPassMode

ADAMW_POINT = ADAMW_FIRST_POINT._replace(label_smoothing=0.1)
SMALL_EVAL = 64  # examples per split in the eval smoke tests, to keep them fast
TOLERANCE = 1e-4
PARITY_BATCH = 16
RESNET_PARAMETERS = 78_042


def small_splits(workload: BaseImageWorkload) -> None:
    """Shrink the eval splits of this workload instance (the generator itself is tested on the real data)."""
    full = workload.split_arrays
    workload.split_arrays = lambda split: {k: v[:SMALL_EVAL] for k, v in full(split).items()}  # type: ignore[method-assign]


def adamw_step_and_eval(
    workload: Any, framework: str, rng: Any, hyperparameters: Any = ADAMW_POINT
) -> dict[str, float]:
    """Init, one step of the AdamW baseline on a real augmented batch, and one eval on small splits."""
    params, _, model_state = one_adamw_step(workload, framework, rng, hyperparameters)
    small_splits(workload)
    metrics = workload.eval_model(workload.eval_batch_size, params, model_state, rng, None, 1)
    assert_eval_unchanged(metrics, f"{workload.name} {framework} after one AdamW step, small splits")
    return metrics


def assert_eval_metrics(metrics: dict[str, float]) -> None:
    assert_metrics_finite(metrics, ("loss", "accuracy"))
    assert all(0.0 <= metrics[f"{s}/accuracy"] <= 1.0 for s in ("train", "validation", "test"))


# ---- data -----------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_images_and_another_seed_different_ones() -> None:
    first = images.render_split(np.random.default_rng(7), 100)
    again = images.render_split(np.random.default_rng(7), 100)
    other = images.render_split(np.random.default_rng(8), 100)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    assert images.load_images() is images.load_images()  # cached: a second run does not regenerate


def test_splits_are_disjoint_finite_normalised_and_cover_every_class() -> None:
    data = images.load_images()
    digests = {
        name: {hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in data.split(name).inputs}
        for name in ("train", "validation", "test")
    }
    assert [len(digests[name]) for name in digests] == list(images.SPLIT_SIZES.values())  # no duplicates
    assert not digests["train"] & digests["validation"]
    assert not digests["train"] & digests["test"]
    assert not digests["validation"] & digests["test"]
    for name in ("train", "validation", "test"):
        split = data.split(name)
        assert (
            split.inputs.shape == (images.SPLIT_SIZES[name], 24, 24, 3) and split.inputs.dtype == np.float32
        )
        assert np.isfinite(split.inputs).all()
        assert set(np.unique(split.labels)) == set(range(images.NUM_CLASSES))
    np.testing.assert_allclose(data.train.inputs.mean(axis=(0, 1, 2), dtype=np.float64), 0.0, atol=1e-4)
    np.testing.assert_allclose(data.train.inputs.std(axis=(0, 1, 2), dtype=np.float64), 1.0, atol=1e-4)
    assert data.mean.shape == data.stddev.shape == (3,) and (data.stddev > 0).all()


def test_images_have_learnable_but_not_trivial_structure() -> None:
    """Measurable structure: the nearest class-mean image (on 4x4-pooled pixels) beats the majority class
    by far, yet stays far from solving the task: the colour palettes show, shapes and textures must be
    learned (a briefly trained ResNet passes 0.6 where this stays below 0.4)."""
    from sklearn.neighbors import NearestCentroid

    data = images.load_images()

    def pooled(inputs: np.ndarray) -> np.ndarray:
        return inputs.reshape(len(inputs), 6, 4, 6, 4, 3).mean(axis=(2, 4)).reshape(len(inputs), -1)

    train, validation = data.train, data.validation
    centroid = NearestCentroid().fit(pooled(train.inputs), train.labels)
    score = centroid.score(pooled(validation.inputs), validation.labels)
    majority = np.bincount(validation.labels).max() / len(validation.labels)
    assert 2 * majority < score < 0.4


def test_augmentation_is_a_padded_crop_with_optional_flip_and_deterministic() -> None:
    batch = images.load_images().train.inputs[:16]
    augmented = images.augment(batch, np.random.default_rng(3))
    np.testing.assert_array_equal(augmented, images.augment(batch, np.random.default_rng(3)))
    assert augmented.shape == batch.shape
    pad = images.CROP_PADDING
    padded = np.pad(batch, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    size = batch.shape[1]
    for image, source in zip(augmented, padded, strict=True):
        candidates = [
            crop[:, ::-1] if flip else crop
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            for crop in [source[dy : dy + size, dx : dx + size]]
            for flip in (False, True)
        ]
        assert any(np.array_equal(image, candidate) for candidate in candidates)
    assert not np.array_equal(augmented, batch)


def test_input_queue_is_deterministic_from_the_data_key_and_augments_only_training_batches() -> None:
    workload = resnet_torch.ImagenetResNetMiniWorkload()
    key = numpy_rng.make_key(0)
    first = next(workload.build_input_queue(key, "train", None, 32))
    again = next(workload.build_input_queue(key, "train", None, 32))
    torch.testing.assert_close(first["inputs"], again["inputs"], rtol=0, atol=0)
    assert first["inputs"].shape == (32, 24, 24, 3) and first["targets"].dtype == torch.int32
    raw = {images.load_images().train.inputs[i].tobytes() for i in range(images.SPLIT_SIZES["train"])}
    assert sum(image.numpy().tobytes() in raw for image in first["inputs"]) < 32
    validation = next(workload.build_input_queue(key, "validation", None, 32))["inputs"].numpy()
    valid_raw = {image.tobytes() for image in images.load_images().validation.inputs}
    assert all(image.tobytes() in valid_raw for image in validation)


# ---- metrics --------------------------------------------------------------------------------------------


def test_accuracy_and_cross_entropy_known_answers() -> None:
    labels = np.array([0, 1, 2])
    perfect = 50.0 * np.eye(3)
    assert accuracy(perfect, labels) == 1.0
    np.testing.assert_allclose(cross_entropy(perfect, labels), 0.0, atol=1e-12)
    # Rows: right, wrong, a tie (argmax takes index 0, label 2): 1 of 3 correct.
    logits = np.array([[2.0, 1.0, 0.0], [3.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    assert accuracy(logits, labels) == pytest.approx(1 / 3)
    # Row 2: softmax of (3, 0, 0) gives label 1 the probability 1 / (e^3 + 2).
    np.testing.assert_allclose(cross_entropy(logits, labels)[1], np.log(np.exp(3.0) + 2.0), rtol=1e-12)
    # Uniform logits: log(number of classes).
    np.testing.assert_allclose(cross_entropy(np.zeros((2, 4)), np.array([0, 3])), np.log(4.0), rtol=1e-12)
    summary = resnet_torch.ImagenetResNetMiniWorkload().summarize_eval(
        {"logits": logits, "targets": labels}, 3
    )
    assert summary["accuracy"] == pytest.approx(1 / 3)


# ---- one step and one eval per framework, batch norm ----------------------------------------------------


def test_pytorch_adamw_step_and_eval() -> None:
    workload = resnet_torch.ImagenetResNetMiniWorkload()
    assert_eval_metrics(adamw_step_and_eval(workload, "pytorch", numpy_rng.make_key(0)))


def test_jax_adamw_step_and_eval() -> None:
    workload = resnet_jax.ImagenetResNetMiniWorkload()
    assert_eval_metrics(adamw_step_and_eval(workload, "jax", jax.random.PRNGKey(0)))


def test_pytorch_batch_norm_statistics_move_only_in_train_mode_with_update_batch_norm() -> None:
    workload = resnet_torch.ImagenetResNetMiniWorkload()
    model, _ = workload.init_model_fn(numpy_rng.make_key(0))
    batch = {"inputs": torch.from_numpy(images.load_images().train.inputs[:8])}

    def stats() -> list[torch.Tensor]:
        return [b.clone() for name, b in model.named_buffers() if "running" in name]

    before = stats()
    frozen, _ = workload.model_fn(model, batch, None, ForwardPassMode.TRAIN, None, update_batch_norm=False)
    assert all(torch.equal(a, b) for a, b in zip(before, stats(), strict=True))
    workload.model_fn(model, batch, None, ForwardPassMode.EVAL, None, update_batch_norm=True)
    assert all(torch.equal(a, b) for a, b in zip(before, stats(), strict=True))
    moving, _ = workload.model_fn(model, batch, None, ForwardPassMode.TRAIN, None, update_batch_norm=True)
    assert all(not torch.equal(a, b) for a, b in zip(before, stats(), strict=True))
    torch.testing.assert_close(frozen, moving)  # both normalise by the batch's statistics


@pytest.fixture(scope="module")
def jax_resnet() -> dict[str, Any]:
    """One initialised JAX workload and its jitted ``model_fn`` (eager Flax would compile op by op)."""
    workload = resnet_jax.ImagenetResNetMiniWorkload()
    params, state = workload.init_model_fn(jax.random.PRNGKey(0))
    forward = jax.jit(workload.model_fn, static_argnames=("mode", "update_batch_norm"))
    return {"workload": workload, "params": params, "state": state, "forward": forward}


def test_jax_batch_norm_statistics_move_only_in_train_mode_with_update_batch_norm(
    jax_resnet: dict[str, Any],
) -> None:
    params, state, forward = jax_resnet["params"], jax_resnet["state"], jax_resnet["forward"]
    batch = {"inputs": jnp.asarray(images.load_images().validation.inputs[:PARITY_BATCH])}

    def run(mode: ForwardPassMode, update: bool) -> tuple[jax.Array, Any]:
        return forward(params, batch, state, mode=mode, rng=None, update_batch_norm=update)

    def same(tree: Any) -> bool:
        pairs = zip(jax.tree.leaves(state), jax.tree.leaves(tree), strict=True)
        return all(np.array_equal(a, b) for a, b in pairs)

    frozen, kept = run(ForwardPassMode.TRAIN, False)
    assert same(kept)
    assert same(run(ForwardPassMode.EVAL, False)[1])
    moving, moved = run(ForwardPassMode.TRAIN, True)
    pairs = zip(jax.tree.leaves(state), jax.tree.leaves(moved), strict=True)
    assert all(not np.array_equal(a, b) for a, b in pairs)
    np.testing.assert_allclose(frozen, moving, rtol=0, atol=1e-6)  # both use the batch's statistics


# ---- parity ---------------------------------------------------------------------------------------------


def randomise_torch_model(model: torch.nn.Module, seed: int = 1) -> None:
    """Non-trivial batch-norm scales, biases and running statistics, and a non-tiny head, so the copied
    model exercises every weight (the zero-initialised last scales would hide the residual convolutions)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.normal_(0.0, 0.2, generator=generator)
                module.running_mean.normal_(0.0, 0.2, generator=generator)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
        model.head.weight.normal_(0.0, 0.3, generator=generator)
        model.head.bias.normal_(0.0, 0.3, generator=generator)


def flax_path(torch_name: str) -> tuple[str, ...]:
    """``blocks.1.proj_bn.weight`` -> ``('blocks_1', 'proj_bn', 'scale')``; the one mapping rule per kind."""
    parts = torch_name.replace("blocks.", "blocks_").split(".")
    module, leaf = parts[-2], parts[-1]
    if "bn" in module:
        leaf = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}[leaf]
    else:
        leaf = {"weight": "kernel", "bias": "bias"}[leaf]
    return (*parts[:-1], leaf)


def to_flax(name: str, tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().numpy()
    if array.ndim == 4:  # conv (out, in, kh, kw) -> (kh, kw, in, out)
        return array.transpose(2, 3, 1, 0)
    return array.T if array.ndim == 2 else array  # linear (out, in) -> (in, out)


def copy_into_flax(model: torch.nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
    params: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    tensors = [(n, t, params) for n, t in model.named_parameters()]
    tensors += [(n, t, stats) for n, t in model.named_buffers() if "running" in n]
    for name, tensor, tree in tensors:
        tree_set(tree, flax_path(name), jnp.asarray(to_flax(name, tensor)))
    return params, stats


def flax_logits(
    forward: Any, params: Any, stats: Any, inputs: np.ndarray, mode: ForwardPassMode, update: bool
) -> tuple[jax.Array, Any]:
    """A jitted Flax ResNet ``model_fn`` (static ``mode`` and ``update_batch_norm``) on numpy ``inputs``:
    the logits and the batch statistics."""
    batch = {"inputs": jnp.asarray(inputs)}
    return forward(params, batch, stats, mode=mode, rng=None, update_batch_norm=update)


def assert_same_losses(torch_loss: dict[str, Any], jax_loss: dict[str, Any]) -> None:
    """Two frameworks' loss_fn results agree: the summed loss, the example count, each example's loss."""
    for key in ("summed", "n_valid_examples", "per_example"):
        np.testing.assert_allclose(
            np.asarray(torch_loss[key]), np.asarray(jax_loss[key]), rtol=1e-6, atol=TOLERANCE
        )


def assert_losses_agree_with_the_numpy_loss(
    torch_workload: Any,
    jax_workload: Any,
    logits: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    smoothings: Sequence[float],
) -> None:
    """Both frameworks' loss_fn on the same logits agree, with and without ``mask`` and at each label
    smoothing; unsmoothed and unmasked, they are the numpy eval loss."""
    for smoothing in smoothings:
        for weights in (None, mask):
            torch_loss, jax_loss = both_losses(
                torch_workload, jax_workload, labels, logits, weights, smoothing
            )
            assert_same_losses(torch_loss, jax_loss)
            if smoothing == 0.0 and weights is None:  # the training loss is the numpy eval loss
                reference = cross_entropy(logits, labels)
                np.testing.assert_allclose(torch_loss["per_example"].numpy(), reference, atol=TOLERANCE)


@pytest.fixture(scope="module")
def models(jax_resnet: dict[str, Any]) -> dict[str, Any]:
    """A PyTorch ResNet with randomised weights and the same weights copied into Flax's trees."""
    torch_workload = resnet_torch.ImagenetResNetMiniWorkload()
    model, _ = torch_workload.init_model_fn(numpy_rng.make_key(0))
    randomise_torch_model(model)
    params, stats = copy_into_flax(model)
    assert_same_tree_shapes(params, jax_resnet["params"])
    assert_same_tree_shapes(stats, jax_resnet["state"])
    return {
        "torch": (torch_workload, model),
        "jax": (jax_resnet["workload"], params, stats, jax_resnet["forward"]),
        "batch": images.load_images().validation.inputs[:PARITY_BATCH],
    }


def test_parameter_counts_and_types_agree(models: dict[str, Any]) -> None:
    torch_workload, model = models["torch"]
    jax_workload, params, _, _ = models["jax"]
    torch_count = sum(p.numel() for p in model.parameters())
    assert torch_count == sum(leaf.size for leaf in jax.tree.leaves(params)) == RESNET_PARAMETERS
    torch_types = torch_workload.model_params_types
    jax_types = jax_workload.model_params_types
    for name in torch_types:
        assert tree_get(jax_types, flax_path(name)) == torch_types[name], name
    assert sorted(t.name for t in torch_types.values()) == sorted(t.name for t in jax.tree.leaves(jax_types))
    assert torch_workload.is_output_params("head.weight") and jax_workload.is_output_params("head")


def test_eval_mode_outputs_and_losses_agree(models: dict[str, Any]) -> None:
    torch_workload, model = models["torch"]
    jax_workload, params, stats, forward = models["jax"]
    inputs = models["batch"]
    torch_logits, _ = torch_workload.model_fn(
        model, {"inputs": torch.from_numpy(inputs)}, None, ForwardPassMode.EVAL, None, False
    )
    jax_logits, _ = flax_logits(forward, params, stats, inputs, ForwardPassMode.EVAL, False)
    torch_logits = torch_logits.numpy()
    assert np.abs(torch_logits).max() > 0.5  # a meaningful comparison, not two near-zero outputs
    np.testing.assert_allclose(torch_logits, np.asarray(jax_logits), rtol=0, atol=TOLERANCE)

    labels = images.load_images().validation.labels[:PARITY_BATCH]
    mask = (np.arange(PARITY_BATCH) % 3 != 0).astype(np.float32)
    assert_losses_agree_with_the_numpy_loss(
        torch_workload, jax_workload, torch_logits, labels, mask, smoothings=(0.0, 0.1)
    )


def test_train_mode_outputs_and_running_statistics_agree(models: dict[str, Any]) -> None:
    """Batch statistics in train mode; the running means agree, and the running variances once PyTorch's
    unbiased batch variance (n / (n - 1), n = batch x height x width) is accounted for: each framework's
    native BatchNorm, as in AlgoPerf's two implementations."""
    torch_workload, model = models["torch"]
    _, params, stats, forward = models["jax"]
    inputs = models["batch"]
    counts: dict[str, int] = {}
    hooks = [
        module.register_forward_hook(
            lambda m, args, out, name=name: counts.__setitem__(name, args[0].numel() // args[0].shape[1])
        )
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.BatchNorm2d)
    ]
    old = {name: buffer.clone() for name, buffer in model.named_buffers() if "running" in name}
    try:
        torch_logits, _ = torch_workload.model_fn(
            model, {"inputs": torch.from_numpy(inputs)}, None, ForwardPassMode.TRAIN, None, True
        )
    finally:
        for hook in hooks:
            hook.remove()
        new = {name: buffer.clone() for name, buffer in model.named_buffers() if "running" in name}
        with torch.no_grad():  # restore, so the module fixture is unchanged for other tests
            for name, buffer in model.named_buffers():
                if name in old:
                    buffer.copy_(old[name])
    jax_logits, jax_stats = flax_logits(forward, params, stats, inputs, ForwardPassMode.TRAIN, True)
    np.testing.assert_allclose(torch_logits.detach().numpy(), np.asarray(jax_logits), rtol=0, atol=TOLERANCE)
    for name, value in new.items():
        flax_value = np.asarray(tree_get(jax_stats, flax_path(name)))
        if name.endswith("running_var"):
            n = counts[name.rpartition(".")[0]]
            prior = 0.9 * old[name].numpy()
            flax_value = prior + (flax_value - prior) * n / (n - 1)
        np.testing.assert_allclose(value.numpy(), flax_value, rtol=1e-5, atol=1e-5, err_msg=name)
