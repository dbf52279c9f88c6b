"""cifar: the CIFAR-10 binary loader on small files written here, its splits and errors, augmentation and
normalisation, one AdamW step and one eval per framework, PyTorch/JAX parity with copied weights (asserted,
not printed), and the skip with its reason when no data dir is given.

The ResNet and its weight mapping are imagenet_resnet_mini's; the parity helpers come from its test module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import both_losses, one_adamw_step, tree_get

from algoperf_workloads.cifar import data
from pytest_algoperf.spec import ForwardPassMode

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from test_imagenet_resnet_mini import (  # noqa: E402
    ADAMW_POINT,
    RESNET_PARAMETERS,
    assert_eval_metrics,
    assert_same_losses,
    copy_into_flax,
    flax_logits,
    flax_path,
    randomise_torch_model,
)

from algoperf_workloads.cifar import jax as cifar_jax  # noqa: E402
from algoperf_workloads.cifar import pytorch as cifar_torch  # noqa: E402

RECORDS_PER_FILE = 8  # 40 training records: 36 train, 4 validation; 8 test
SMALL_BATCH = 16
TOLERANCE = 1e-4
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_cifar(folder: Path, records: int = RECORDS_PER_FILE, seed: int = 0) -> dict[str, tuple]:
    """The six binary files with random labels and pixels; returns each file's (labels, NHWC images).

    Records are encoded here independently of the loader: label byte, then the red, green and blue planes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in (*data.TRAIN_FILES, data.TEST_FILE):
        labels = rng.integers(0, 10, records).astype(np.uint8)
        images = rng.integers(0, 256, (records, 32, 32, 3)).astype(np.uint8)
        with open(folder / name, "wb") as file:
            for label, image in zip(labels, images, strict=True):
                file.write(bytes([label]))
                for channel in range(3):
                    file.write(image[:, :, channel].tobytes())  # row by row
        written[name] = (labels, images)
    return written


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple]]:
    folder = tmp_path_factory.mktemp("cifar")
    return folder, write_cifar(folder / data.SUBFOLDER)


def workload_on(framework: str, folder: Path) -> Any:
    module = {"pytorch": cifar_torch, "jax": cifar_jax}[framework]
    workload = module.CifarWorkload(data_dir=str(folder))
    workload.name = workload.base_name = "cifar"
    return workload


# ---- the loader -----------------------------------------------------------------------------------------


def test_one_hand_built_record_decodes_to_its_label_and_channel_planes(tmp_path: Path) -> None:
    planes = [(np.arange(1024) * k + k) % 256 for k in (1, 3, 7)]  # red, green, blue: distinct per pixel
    (tmp_path / "one.bin").write_bytes(bytes([7]) + b"".join(p.astype(np.uint8).tobytes() for p in planes))
    split = data.read_batch_file(tmp_path / "one.bin")
    assert split.labels.tolist() == [7] and split.labels.dtype == np.int32
    assert split.inputs.shape == (1, 32, 32, 3) and split.inputs.dtype == np.uint8
    for row, column in ((0, 0), (0, 31), (1, 2), (31, 5)):
        expected = [plane[row * 32 + column] for plane in planes]
        assert split.inputs[0, row, column].tolist() == expected


def test_splits_follow_algoperf_and_pixels_and_labels_decode_exactly(
    small_dir: tuple[Path, dict[str, tuple]],
) -> None:
    """The training files in order, the last tenth validation (AlgoPerf's 45,000 / 5,000), test as test."""
    folder, written = small_dir
    loaded = data.load_cifar(str(folder))
    assert loaded.folder == folder / data.SUBFOLDER
    labels = np.concatenate([written[name][0] for name in data.TRAIN_FILES])
    images = np.concatenate([written[name][1] for name in data.TRAIN_FILES])
    assert (len(loaded.train.labels), len(loaded.validation.labels), len(loaded.test.labels)) == (36, 4, 8)
    np.testing.assert_array_equal(loaded.train.labels, labels[:36])
    np.testing.assert_array_equal(loaded.train.inputs, images[:36])
    np.testing.assert_array_equal(loaded.validation.labels, labels[36:])
    np.testing.assert_array_equal(loaded.validation.inputs, images[36:])
    np.testing.assert_array_equal(loaded.test.labels, written[data.TEST_FILE][0])
    np.testing.assert_array_equal(loaded.test.inputs, written[data.TEST_FILE][1])
    workload = workload_on("pytorch", folder)
    assert (workload.num_train_examples, workload.num_validation_examples, workload.num_test_examples) == (
        36,
        4,
        8,
    )
    assert workload.num_eval_train_examples == 36  # AlgoPerf's rounding up to the eval batch, capped


def test_files_directly_in_the_data_dir_are_found_too(tmp_path: Path) -> None:
    written = write_cifar(tmp_path, records=2, seed=1)
    loaded = data.load_cifar(str(tmp_path))
    assert loaded.folder == tmp_path
    np.testing.assert_array_equal(loaded.test.inputs, written[data.TEST_FILE][1])


def test_missing_truncated_and_foreign_files_raise_errors_naming_file_and_layout(tmp_path: Path) -> None:
    folder = tmp_path / data.SUBFOLDER
    write_cifar(folder, records=2)
    (folder / "data_batch_3.bin").unlink()
    with pytest.raises(data.CifarDataError, match=r"lacks data_batch_3\.bin; expected .*test_batch\.bin"):
        data.load_cifar(str(tmp_path))
    write_cifar(folder, records=2)
    test_file = folder / data.TEST_FILE
    test_file.write_bytes(test_file.read_bytes()[:-1])
    with pytest.raises(data.CifarDataError, match=r"test_batch\.bin: 6145 bytes .* truncated"):
        data.load_cifar(str(tmp_path))
    test_file.write_bytes(bytes([10]) + bytes(3072))
    with pytest.raises(data.CifarDataError, match=r"record 0 has label 10"):
        data.load_cifar(str(tmp_path))
    with pytest.raises(data.CifarDataError, match=r"--algoperf-data-dir"):
        data.load_cifar(None)
    with pytest.raises(data.CifarDataError, match=r"lacks data_batch_1\.bin"):
        workload_on("pytorch", tmp_path / "empty").num_train_examples  # noqa: B018 - the load raises


# ---- augmentation, normalisation, the input queue ------------------------------------------------------


def test_augmentation_is_a_crop_of_the_4_pixel_black_padded_image_with_optional_flip() -> None:
    batch = np.random.default_rng(0).integers(1, 256, (24, 32, 32, 3)).astype(np.uint8)
    augmented = data.augment(batch, np.random.default_rng(3))
    np.testing.assert_array_equal(augmented, data.augment(batch, np.random.default_rng(3)))
    padded = np.pad(batch, ((0, 0), (4, 4), (4, 4), (0, 0)))
    shifts = set()
    for image, source in zip(augmented, padded, strict=True):
        matches = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            for crop in [source[dy : dy + 32, dx : dx + 32]]
            if np.array_equal(image, crop) or np.array_equal(image, crop[:, ::-1])
        ]
        assert matches
        shifts.update(matches)
    assert len(shifts) > 5  # offsets vary over the batch; pixels 1..255 keep the black border visible
    assert (augmented == 0).any() and not np.array_equal(augmented, batch)


def test_normalisation_uses_algoperf_channel_statistics() -> None:
    pixels = np.array([0, 255, 128], np.uint8).reshape(1, 1, 3, 1).repeat(3, axis=3)
    normalised = data.normalize(pixels)
    assert normalised.dtype == np.float32
    np.testing.assert_allclose(normalised[0, 0, 0], -data.MEAN / data.STDDEV, rtol=1e-6)
    np.testing.assert_allclose(normalised[0, 0, 1], (1 - data.MEAN) / data.STDDEV, rtol=1e-6)
    np.testing.assert_allclose(data.MEAN, [0.49139968, 0.48215827, 0.44653124])


def test_input_queue_is_deterministic_and_augments_only_training_batches(
    small_dir: tuple[Path, dict[str, tuple]],
) -> None:
    from pytest_algoperf.frameworks import numpy_rng

    workload = workload_on("pytorch", small_dir[0])
    key = numpy_rng.make_key(0)
    first = next(workload.build_input_queue(key, "train", None, SMALL_BATCH))
    again = next(workload.build_input_queue(key, "train", None, SMALL_BATCH))
    torch.testing.assert_close(first["inputs"], again["inputs"], rtol=0, atol=0)
    assert first["inputs"].shape == (SMALL_BATCH, 32, 32, 3) and first["inputs"].dtype == torch.float32
    raw = {image.tobytes() for image in data.normalize(workload.data.train.inputs)}
    assert sum(image.numpy().tobytes() in raw for image in first["inputs"]) < SMALL_BATCH
    validation = next(workload.build_input_queue(key, "validation", None, 4))["inputs"].numpy()
    expected = {image.tobytes() for image in data.normalize(workload.data.validation.inputs)}
    assert {image.tobytes() for image in validation} == expected


# ---- one AdamW step and one eval per framework ----------------------------------------------------------


def adamw_step_and_eval(workload: Any, framework: str, rng: Any) -> tuple[Any, Any, dict[str, float]]:
    """Init, one step of the AdamW baseline on an augmented batch, one eval of the small splits."""
    params, initial_state, model_state = one_adamw_step(workload, framework, rng, ADAMW_POINT, SMALL_BATCH)
    # Eval batches of 4 divide every small split: JAX compiles one eval shape.
    metrics = workload.eval_model(4, params, model_state, rng, None, 1)
    assert_eval_metrics(metrics)
    return jax.tree.map(np.asarray, initial_state), model_state, metrics


def test_pytorch_adamw_step_and_eval(small_dir: tuple[Path, dict[str, tuple]]) -> None:
    from pytest_algoperf.frameworks import numpy_rng

    adamw_step_and_eval(workload_on("pytorch", small_dir[0]), "pytorch", numpy_rng.make_key(0))


def test_jax_adamw_step_and_eval_moves_the_batch_norm_statistics_in_model_state(
    small_dir: tuple[Path, dict[str, tuple]],
) -> None:
    before, after, _ = adamw_step_and_eval(workload_on("jax", small_dir[0]), "jax", jax.random.PRNGKey(0))
    pairs = zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True)
    assert all(not np.array_equal(old, new) for old, new in pairs)  # adamw trains with update_batch_norm


def test_pytorch_batch_norm_statistics_move_only_with_update_batch_norm(
    small_dir: tuple[Path, dict[str, tuple]],
) -> None:
    from pytest_algoperf.frameworks import numpy_rng

    workload = workload_on("pytorch", small_dir[0])
    model, _ = workload.init_model_fn(numpy_rng.make_key(0))
    batch = {"inputs": torch.from_numpy(data.normalize(workload.data.train.inputs[:8]))}

    def stats() -> list[Any]:
        return [buffer.clone() for name, buffer in model.named_buffers() if "running" in name]

    before = stats()
    workload.model_fn(model, batch, None, ForwardPassMode.TRAIN, None, update_batch_norm=False)
    workload.model_fn(model, batch, None, ForwardPassMode.EVAL, None, update_batch_norm=False)
    assert all(torch.equal(a, b) for a, b in zip(before, stats(), strict=True))
    workload.model_fn(model, batch, None, ForwardPassMode.TRAIN, None, update_batch_norm=True)
    assert all(not torch.equal(a, b) for a, b in zip(before, stats(), strict=True))


# ---- parity ---------------------------------------------------------------------------------------------


def test_parity_outputs_losses_parameter_counts_and_types(small_dir: tuple[Path, dict[str, tuple]]) -> None:
    """PyTorch weights (randomised batch norm and head) copied into Flax: eval-mode logits on normalised
    CIFAR pixels within 1e-4, equal losses with and without label smoothing, equal parameter counts and
    parameter-type trees."""
    from pytest_algoperf.frameworks import numpy_rng

    torch_workload, jax_workload = workload_on("pytorch", small_dir[0]), workload_on("jax", small_dir[0])
    model, _ = torch_workload.init_model_fn(numpy_rng.make_key(0))
    randomise_torch_model(model)
    params, stats = copy_into_flax(model)
    jax_params, jax_state = jax_workload.init_model_fn(jax.random.PRNGKey(0))
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, jax_params)
    assert jax.tree.map(jnp.shape, stats) == jax.tree.map(jnp.shape, jax_state)

    count = sum(p.numel() for p in model.parameters())
    assert count == sum(leaf.size for leaf in jax.tree.leaves(params)) == RESNET_PARAMETERS
    jax_types = jax_workload.model_params_types
    for name, kind in torch_workload.model_params_types.items():
        assert tree_get(jax_types, flax_path(name)) == kind, name
    assert len(jax.tree.leaves(jax_types)) == len(torch_workload.model_params_types)

    inputs = data.normalize(torch_workload.data.test.inputs)
    labels = torch_workload.data.test.labels
    torch_logits = torch_workload.model_fn(
        model, {"inputs": torch.from_numpy(inputs)}, None, ForwardPassMode.EVAL, None, False
    )[0].numpy()
    forward = jax.jit(jax_workload.model_fn, static_argnames=("mode", "update_batch_norm"))
    jax_logits, _ = flax_logits(forward, params, stats, inputs, ForwardPassMode.EVAL, False)
    assert np.abs(torch_logits).max() > 0.5  # a meaningful comparison, not two near-zero outputs
    np.testing.assert_allclose(torch_logits, np.asarray(jax_logits), rtol=0, atol=TOLERANCE)
    for smoothing in (0.0, 0.1):
        assert_same_losses(*both_losses(torch_workload, jax_workload, labels, torch_logits, None, smoothing))


# ---- the benchmark without data ------------------------------------------------------------------------


def test_without_a_data_dir_the_benchmark_is_skipped_with_a_reason_naming_option_and_files(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        *QUIET_PLUGINS,
        "--algoperf-threads=1",
        "--algoperf-output=out",
        "--algoperf-submission=adamw",
        "--algoperf-workloads=cifar",
        "--algoperf-framework=pytorch,jax",
        "-rs",
    )
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*SKIPPED*cifar needs --algoperf-data-dir=DIR*data_batch_1.bin*test_batch.bin*"
            "cifar-10-batches-bin/*"
        ]
    )
