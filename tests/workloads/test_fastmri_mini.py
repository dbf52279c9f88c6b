"""fastmri_mini: SSIM on known answers, the phantom data, AdamW steps and one eval per framework, and
asserted PyTorch/JAX parity with the same weights (outputs, losses, parameter counts and types, metrics).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from functools import cached_property
from typing import Any

import numpy as np
import pytest
from helpers import (
    adamw,
    adamw_update,
    assert_eval_unchanged,
    assert_metrics_agree,
    assert_metrics_finite,
    assert_same_tree_shapes,
    both_losses,
    flat_parameters,
    sizes_and_types,
)

from algoperf_workloads.fastmri_mini.data import (
    IMAGE_SIZE,
    SPLIT_SIZES,
    MriSplit,
    column_masks,
    load_splits,
    make_split,
)
from algoperf_workloads.fastmri_mini.workload import batch_ssim, structural_similarity, zero_filled_ssim
from pytest_algoperf.score.search_space import load_search_space
from pytest_algoperf.spec import ForwardPassMode

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from algoperf_workloads.fastmri_mini import jax as fastmri_jax  # noqa: E402
from algoperf_workloads.fastmri_mini import pytorch as fastmri_torch  # noqa: E402
from pytest_algoperf.frameworks.numpy_rng import make_key  # noqa: E402

SMALL_SPLIT = 32
SMALL_EVAL_BATCH = 16

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def key_for(framework: str, seed: int) -> Any:
    """The rng key of ``framework``'s workloads."""
    return make_key(seed) if framework == "pytorch" else jax.random.PRNGKey(seed)


def small(split: MriSplit, size: int = SMALL_SPLIT) -> MriSplit:
    return MriSplit(**{key: value[:size] for key, value in split.arrays().items()})


def with_small_data(workload_class: type) -> type:
    """The real data cut to a few examples per split, evaluated in several batches."""

    class Small(workload_class):
        eval_batch_size = SMALL_EVAL_BATCH

        @cached_property
        def splits(self) -> dict[str, MriSplit]:
            return {name: small(split) for name, split in load_splits(self.data_seed).items()}

    return Small


SmallTorchWorkload = with_small_data(fastmri_torch.FastMriMiniWorkload)
SmallJaxWorkload = with_small_data(fastmri_jax.FastMriMiniWorkload)
SMALL_WORKLOADS = {"pytorch": SmallTorchWorkload, "jax": SmallJaxWorkload}


# ---- SSIM: known answers ---------------------------------------------------------------------------


def naive_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """SSIM by explicit loops over 7x7 windows of the symmetrically padded images (no cumsums)."""
    x = np.pad(np.asarray(x, np.float64), 3, mode="symmetric")
    y = np.pad(np.asarray(y, np.float64), 3, mode="symmetric")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    height, width = x.shape[0] - 6, x.shape[1] - 6
    values = []
    for i in range(3, height - 3):  # the 3-pixel border of the SSIM map is left out
        for j in range(3, width - 3):
            a, b = x[i : i + 7, j : j + 7].ravel(), y[i : i + 7, j : j + 7].ravel()
            va, vb = a.var(ddof=1), b.var(ddof=1)
            cov = ((a - a.mean()) * (b - b.mean())).sum() / 48
            luminance = (2 * a.mean() * b.mean() + c1) / (a.mean() ** 2 + b.mean() ** 2 + c1)
            values.append(luminance * (2 * cov + c2) / (va + vb + c2))
    return float(np.mean(values))


def test_constant_offset_of_a_constant_image_by_hand() -> None:
    # y = 0.5 everywhere, x = y + 0.5 = 1.0, data range 1: no variance, so the structure term is
    # C2 / C2 = 1 and SSIM is the luminance term (2 * 0.5 * 1.0 + C1) / (0.5**2 + 1.0**2 + C1), C1 = 1e-4.
    y = np.full((1, 10, 10), 0.5)
    expected = (2 * 0.5 * 1.0 + 1e-4) / (0.25 + 1.0 + 1e-4)  # = 1.0001 / 1.2501 = 0.80002
    np.testing.assert_allclose(structural_similarity(y + 0.5, y, data_range=1.0), [expected], rtol=1e-9)


def test_negated_row_image_by_hand() -> None:
    # A 7x7 image: the map keeps only the centre pixel, whose window is the whole image (no padding).
    # y has one row of ones (7 of 49 pixels), x = 1 - y. Means 1/7 and 6/7; sample variances
    # 49/48 * (1/7 - 1/49) = 1/8 each; sample covariance 49/48 * (0 - 6/49) = -1/8. With C1 = 1e-4, C2 = 9e-4:
    # SSIM = (2 * 6/49 + C1) / (1/49 + 36/49 + C1) * (2 * -1/8 + C2) / (1/8 + 1/8 + C2) = -0.3221
    y = np.zeros((7, 7))
    y[2] = 1.0
    expected = (12 / 49 + 1e-4) / (37 / 49 + 1e-4) * (-0.25 + 9e-4) / (0.25 + 9e-4)
    np.testing.assert_allclose(structural_similarity(1 - y, y, data_range=1.0), [expected], rtol=1e-9)
    assert expected == pytest.approx(-0.32209, abs=1e-5)


def test_offset_random_image_matches_the_loop_reference_and_keeps_structure() -> None:
    # x = y + c: equal variances and covariance, so only the luminance term lowers SSIM below one.
    y = np.random.default_rng(1).uniform(0, 1, size=(12, 13))
    got = structural_similarity(np.stack([y + 0.3, y * 0.5]), np.stack([y, y]), data_range=1.0)
    np.testing.assert_allclose(got, [naive_ssim(y + 0.3, y, 1.0), naive_ssim(y * 0.5, y, 1.0)], rtol=1e-10)
    assert 0.5 < got[0] < 1.0


def test_identical_images_score_one_and_the_data_range_is_per_image() -> None:
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 3, size=(4, 16, 16))
    np.testing.assert_allclose(structural_similarity(images, images, data_range=3.0), 1.0, atol=1e-12)
    x, y = rng.uniform(0, 1, size=(2, 9, 9)), rng.uniform(0, 1, size=(2, 9, 9))
    both = structural_similarity(x, y, data_range=np.array([1.0, 4.0]))
    assert both[0] == pytest.approx(structural_similarity(x[:1], y[:1], 1.0)[0])
    assert both[1] == pytest.approx(structural_similarity(x[1:], y[1:], 4.0)[0])
    assert np.all(np.abs(both) <= 1.0)
    # A zero data range (AlgoPerf's padded examples) is treated as one, not divided by.
    assert structural_similarity(x[:1], y[:1], 0.0)[0] == pytest.approx(
        structural_similarity(x[:1], y[:1], 1.0)[0]
    )


def test_matches_skimage_when_installed() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(3)
    for _ in range(3):
        y = rng.uniform(0, 2, size=(20, 24))
        x = y + rng.normal(0, 0.3, size=y.shape)
        expected = metrics.structural_similarity(x, y, data_range=float(y.max()))
        assert structural_similarity(x, y, float(y.max()))[0] == pytest.approx(expected, abs=1e-10)


def test_batch_ssim_undoes_the_normalisation_before_comparing() -> None:
    split = small(load_splits()["validation"], 8)
    np.testing.assert_allclose(batch_ssim(split.targets, split.arrays()), 1.0, atol=1e-12)
    original = split.targets * split.std[:, None, None] + split.mean[:, None, None]
    expected = structural_similarity(
        split.inputs * split.std[:, None, None] + split.mean[:, None, None], original, split.volume_max
    )
    np.testing.assert_allclose(batch_ssim(split.inputs, split.arrays()), expected, rtol=1e-6)


# ---- data ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_arrays_and_the_splits_are_cached() -> None:
    first, second = make_split(np.random.SeedSequence(7), 8), make_split(np.random.SeedSequence(7), 8)
    for key, value in first.arrays().items():
        np.testing.assert_array_equal(value, second.arrays()[key])
    assert not np.array_equal(first.targets, make_split(np.random.SeedSequence(8), 8).targets)
    assert load_splits() is load_splits()


def test_splits_have_their_sizes_are_finite_standardised_float32_and_disjoint() -> None:
    seen: dict[str, str] = {}
    for name, split in load_splits().items():
        assert split.inputs.shape == split.targets.shape == (SPLIT_SIZES[name], IMAGE_SIZE, IMAGE_SIZE)
        for key, value in split.arrays().items():
            assert value.dtype == np.float32, key
            assert np.all(np.isfinite(value)), key
        assert np.all(split.std > 0) and np.all(split.volume_max > 0)
        # Standardised by the input's own mean and std, as AlgoPerf does; clipped to [-6, 6].
        np.testing.assert_allclose(split.inputs.mean(axis=(1, 2)), 0.0, atol=2e-2)
        np.testing.assert_allclose(split.inputs.std(axis=(1, 2)), 1.0, atol=2e-2)
        assert np.abs(split.targets).max() <= 6.0
        for image in split.targets:
            digest = hashlib.sha1(image.tobytes()).hexdigest()
            assert seen.setdefault(digest, name) == name, f"an image of {name} is also in {seen[digest]}"


def test_masks_keep_the_centre_and_a_quarter_of_the_columns() -> None:
    masks = column_masks(np.random.default_rng(0), 4000, 32)
    assert masks[:, 15:17].all()  # int(0.08 * 32) = 2 central columns, starting at (32 - 2 + 1) // 2
    assert masks.mean() == pytest.approx(0.25, abs=0.005)
    assert len({row.tobytes() for row in masks[:100]}) > 90  # one mask per example


def test_the_zero_filled_input_is_a_poor_but_not_hopeless_reconstruction() -> None:
    """The trivial baseline: the identity model scores the zero-filled input's SSIM."""
    assert 0.35 < zero_filled_ssim(load_splits()["validation"]) < 0.55


def test_a_briefly_trained_unet_beats_the_zero_filled_input() -> None:
    """30 AdamW steps (a 100-step schedule) lift validation SSIM from ~0.44 to ~0.69: a learnable task."""
    workload = fastmri_torch.FastMriMiniWorkload()
    workload.calibration = dataclasses.replace(workload.calibration, step_hint=100)
    submission, hyperparameters = adamw_first_point("pytorch")
    params, state = workload.init_model_fn(make_key(0))
    optimizer_state = submission.module.init_optimizer_state(workload, params, state, hyperparameters, None)
    queue = workload.build_input_queue(make_key(1), "train", None, 16)
    for step in range(30):
        optimizer_state, params, state = adamw_update(
            submission, workload, params, state, optimizer_state, next(queue), step, make_key(step),
            hyperparameters,
        )  # fmt: skip
    validation = small(load_splits()["validation"], 128)
    batch = {key: torch.from_numpy(value) for key, value in validation.arrays().items()}
    outputs, _ = workload.model_fn(params, batch, None, ForwardPassMode.EVAL, None, False)
    trained = batch_ssim(outputs.numpy(), validation.arrays()).mean()
    assert trained > zero_filled_ssim(validation) + 0.15


# ---- one AdamW step and one eval per framework ------------------------------------------------------


def adamw_first_point(framework: str) -> tuple[Any, Any]:
    """The adamw submission and its first search-space point (the baseline the targets are set with)."""
    submission = adamw(framework)
    point = load_search_space(submission.source.search_space_path).first_point()
    return submission, collections.namedtuple("Hyperparameters", sorted(point))(**point)


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_one_adamw_step_and_one_eval(framework: str) -> None:
    workload = SMALL_WORKLOADS[framework]()
    rng = key_for(framework, 0)
    params, state = workload.init_model_fn(rng)
    submission, hyperparameters = adamw_first_point(framework)
    assert submission.get_batch_size(workload.name, workload.base_name) == 16
    optimizer_state = submission.module.init_optimizer_state(workload, params, state, hyperparameters, rng)
    batch = next(workload.build_input_queue(rng, "train", None, 16))
    assert batch["inputs"].shape == batch["targets"].shape == (16, IMAGE_SIZE, IMAGE_SIZE)
    before = flat_parameters(params)
    # Two steps: warmup starts the learning rate at zero, so the first step leaves the weights as they are.
    for step in range(2):
        optimizer_state, params, state = adamw_update(
            submission, workload, params, state, optimizer_state, batch, step, key_for(framework, step),
            hyperparameters,
        )  # fmt: skip
    after = flat_parameters(params)
    assert np.all(np.isfinite(after)) and not np.array_equal(before, after)
    metrics = workload.eval_model(workload.eval_batch_size, params, state, rng, None, 1)
    assert_eval_unchanged(metrics, f"{framework} after two AdamW steps, small splits")
    assert_metrics_finite(metrics, ("ssim", "loss"))
    assert all(-1.0 <= metrics[f"{split}/ssim"] <= 1.0 for split in ("train", "validation", "test"))


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_kernels_start_lecun_normal_and_the_bias_at_zero_in_both_frameworks(framework: str) -> None:
    """The same scheme in both: truncated at 2 sigma, variance 1 / fan_in (fan_in = in * kh * kw)."""
    workload = SMALL_WORKLOADS[framework]()
    params, _ = workload.init_model_fn(key_for(framework, 5))
    if framework == "pytorch":  # weights (out, in, kh, kw); transpose convs (in, out, kh, kw)
        named = {name: p.detach().numpy() for name, p in params.named_parameters()}
        fan_in = {n: v.size // v.shape[1 if "transpose" in n else 0] for n, v in named.items()}
    else:  # kernels (kh, kw, in, out)
        named = {
            jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(params)
        }
        fan_in = {n: v.size // v.shape[-1] for n, v in named.items()}
    for name, value in named.items():
        if value.ndim == 1:
            assert not value.any(), name
            continue
        stddev = np.sqrt(1.0 / fan_in[name])
        assert np.abs(value).max() <= 2 * stddev / 0.8796256 * (1 + 1e-5), name
        if value.size >= 2000:
            assert value.std() == pytest.approx(stddev, rel=0.1), name


# ---- parity ------------------------------------------------------------------------------------------


def flax_params_from_torch(model: Any) -> dict[str, Any]:
    """The explicit weight mapping: conv (out, in, kh, kw) -> (kh, kw, in, out); transpose conv (in, out,
    kh, kw) -> (kh, kw, in, out) spatially flipped, since torch's ConvTranspose2d is the gradient of a
    convolution (a flipped kernel) while Flax's ConvTranspose (transpose_kernel=False) slides it as is."""

    def conv(weight: Any) -> jax.Array:
        return jnp.asarray(weight.detach().numpy().transpose(2, 3, 1, 0))

    def block(module: Any) -> dict[str, Any]:
        return {
            "conv_0": {"kernel": conv(module.conv_0.weight)},
            "conv_1": {"kernel": conv(module.conv_1.weight)},
        }

    params: dict[str, Any] = {f"down_{i}": block(b) for i, b in enumerate(model.down)}
    params["bottleneck"] = block(model.bottleneck)
    for i, (transpose, up) in enumerate(zip(model.up_transpose, model.up, strict=True)):
        kernel = transpose.conv_transpose.weight.detach().numpy().transpose(2, 3, 0, 1)[::-1, ::-1]
        params[f"up_transpose_{i}"] = {"conv_transpose": {"kernel": jnp.asarray(kernel.copy())}}
        params[f"up_{i}"] = block(up)
    params["output"] = {
        "kernel": conv(model.output.weight),
        "bias": jnp.asarray(model.output.bias.detach().numpy()),
    }
    return params


@pytest.fixture(scope="module")
def twins() -> tuple[Any, Any, Any, Any]:
    """A PyTorch model and the same weights as Flax params, with both (small-data) workloads."""
    torch_workload, jax_workload = SmallTorchWorkload(), SmallJaxWorkload()
    model, _ = torch_workload.init_model_fn(make_key(3))
    flax_params, _ = jax_workload.init_model_fn(jax.random.PRNGKey(3))
    copied = flax_params_from_torch(model)
    assert_same_tree_shapes(copied, flax_params)
    return torch_workload, model, jax_workload, copied


def both_forward(
    twins: tuple[Any, Any, Any, Any], mode: ForwardPassMode, rate: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Both models' outputs on the validation split, with dropout ``rate`` (and key 0) in train mode."""
    torch_workload, model, jax_workload, params = twins
    arrays = torch_workload.split_arrays("validation")
    out_t, _ = torch_workload.model_fn(
        model, torch_workload.batch_to_device(arrays), None, mode, make_key(0), True, rate
    )
    out_j, _ = jax_workload.model_fn(
        params, jax_workload.batch_to_device(arrays), None, mode, jax.random.PRNGKey(0), True, rate
    )
    return out_t.detach().numpy(), np.asarray(out_j)


@pytest.mark.parametrize("mode", [ForwardPassMode.EVAL, ForwardPassMode.TRAIN])
def test_parity_forward_outputs(twins: tuple[Any, Any, Any, Any], mode: ForwardPassMode) -> None:
    out_t, out_j = both_forward(twins, mode)
    assert out_t.shape == out_j.shape == (SMALL_SPLIT, IMAGE_SIZE, IMAGE_SIZE)
    np.testing.assert_allclose(out_j, out_t, atol=1e-4, rtol=0)


def test_parity_losses_with_and_without_mask(twins: tuple[Any, Any, Any, Any]) -> None:
    torch_workload, _, jax_workload, _ = twins
    out_t, out_j = both_forward(twins, ForwardPassMode.EVAL)
    targets = torch_workload.split_arrays("validation")["targets"]
    mask = (np.arange(SMALL_SPLIT) % 3 != 0).astype(np.float32)
    for mask_batch in (None, mask):
        loss_t, loss_j = both_losses(torch_workload, jax_workload, targets, out_t, mask_batch)
        np.testing.assert_allclose(float(loss_j["summed"]), float(loss_t["summed"]), rtol=1e-6)
        np.testing.assert_allclose(
            np.asarray(loss_j["per_example"]), loss_t["per_example"].numpy(), rtol=1e-6
        )
        assert float(loss_j["n_valid_examples"]) == float(loss_t["n_valid_examples"])
    # The two models' outputs give the same loss, too.
    summed_j = jax_workload.loss_fn(jnp.asarray(targets), jnp.asarray(out_j))["summed"]
    assert float(summed_j) == pytest.approx(float(np.abs(out_t - targets).mean(axis=(1, 2)).sum()), abs=1e-4)


def test_parity_parameter_counts_and_types(twins: tuple[Any, Any, Any, Any]) -> None:
    torch_workload, model, jax_workload, _ = twins
    torch_entries, jax_entries = sizes_and_types(torch_workload, jax_workload)
    assert torch_entries == jax_entries
    assert sum(size for size, _ in torch_entries) == sum(p.numel() for p in model.parameters()) == 116_385
    assert collections.Counter(kind for _, kind in torch_entries) == {"CONV_WEIGHT": 13, "BIAS": 1}
    assert torch_workload.is_output_params("output.weight") and jax_workload.is_output_params("output")


def test_parity_eval_metrics(twins: tuple[Any, Any, Any, Any]) -> None:
    torch_workload, model, jax_workload, params = twins
    metrics_t = torch_workload.eval_model(SMALL_EVAL_BATCH, model, None, make_key(0), None, 0)
    metrics_j = jax_workload.eval_model(SMALL_EVAL_BATCH, params, None, jax.random.PRNGKey(0), None, 0)
    assert_metrics_agree(metrics_j, metrics_t, 1e-4)


def test_dropout_is_a_model_fn_argument_and_drops_whole_channels(twins: tuple[Any, Any, Any, Any]) -> None:
    torch_workload, model, _, _ = twins
    arrays = torch_workload.split_arrays("validation")
    eval_t, _ = torch_workload.model_fn(
        model, torch_workload.batch_to_device(arrays), None, ForwardPassMode.EVAL, None, False
    )
    eval_t = eval_t.detach().numpy()
    train_t, train_j = both_forward(twins, ForwardPassMode.TRAIN, rate=0.5)
    assert not np.allclose(eval_t, train_t)
    assert not np.allclose(train_j, eval_t, atol=1e-3)

    class Probe(fastmri_jax.nn.Module):
        @fastmri_jax.nn.compact
        def __call__(self, x: jax.Array, rate: Any) -> jax.Array:
            return fastmri_jax.channel_dropout(self, x, rate, train=True)

    x = jnp.ones((64, 4, 4, 8))
    # The rate may arrive traced (the adamw submission jits its step with dropout_rate as an argument).
    dropped = jax.jit(lambda r: Probe().apply({}, x, r, rngs={"dropout": jax.random.PRNGKey(1)}))(0.5)
    per_channel = np.asarray(dropped)[:, 0, 0, :]
    np.testing.assert_array_equal(
        np.asarray(dropped), np.broadcast_to(per_channel[:, None, None, :], x.shape)
    )
    assert set(np.unique(per_channel)) == {0.0, 2.0}
    np.testing.assert_array_equal(Probe().apply({}, x, 0.0, rngs={"dropout": jax.random.PRNGKey(1)}), x)
