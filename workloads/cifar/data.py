"""CIFAR-10 read from the files of its "binary version" (cifar-10-binary.tar.gz, extracted); never downloaded.

Each file is a run of 3,073-byte records: one label byte (0-9), then the 32x32 image as 1,024 red, 1,024
green and 1,024 blue bytes, each plane row by row. The five ``data_batch_<k>.bin`` files (10,000 records
each) are the training images, ``test_batch.bin`` the test images. Splits follow AlgoPerf's cifar: the
training files in order, the last tenth held out as validation (45,000 / 5,000, as its PyTorch pipeline
takes ``indices[45000:]``), and the test file as test (10,000). Images stay uint8 NHWC on the host (180 MB
instead of 740 MB as float32); batches are augmented as raw pixels, then normalised (``normalize``) with
AlgoPerf's fixed CIFAR-10 channel statistics.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SIZE = 32
CHANNELS = 3
NUM_CLASSES = 10
RECORD_BYTES = 1 + CHANNELS * IMAGE_SIZE * IMAGE_SIZE
TRAIN_FILES = tuple(f"data_batch_{k}.bin" for k in range(1, 6))
TEST_FILE = "test_batch.bin"
SUBFOLDER = "cifar-10-batches-bin"
VALIDATION_FRACTION = 0.1  # 5,000 of the 50,000 training records
CROP_PADDING = 4
# AlgoPerf's train_mean / train_stddev for cifar: the CIFAR-10 training set's channel statistics in [0, 1].
MEAN = np.array([0.49139968, 0.48215827, 0.44653124], np.float32)
STDDEV = np.array([0.24703233, 0.24348505, 0.26158768], np.float32)
EXPECTED_LAYOUT = (
    f"the CIFAR-10 binary version (cifar-10-binary.tar.gz, extracted): {', '.join(TRAIN_FILES)} and "
    f"{TEST_FILE} in the data dir itself or in its {SUBFOLDER}/ subfolder"
)


class CifarDataError(ValueError):
    """Missing or malformed CIFAR-10 files; the message names the file and the expected layout."""


@dataclass(frozen=True)
class Split:
    inputs: np.ndarray  # uint8 (N, 32, 32, 3), raw pixels
    labels: np.ndarray  # int32 (N,)


@dataclass(frozen=True)
class CifarData:
    folder: Path
    train: Split
    validation: Split
    test: Split

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


def find_folder(data_dir: str | Path | None) -> Path:
    """The folder holding all six files: ``data_dir`` or ``data_dir/cifar-10-batches-bin``."""
    if not data_dir:
        raise CifarDataError(f"cifar needs --algoperf-data-dir (or --data-dir) pointing to {EXPECTED_LAYOUT}")
    root = Path(data_dir)
    candidates = [root, root / SUBFOLDER]
    needed = (*TRAIN_FILES, TEST_FILE)
    missing = {folder: [name for name in needed if not (folder / name).is_file()] for folder in candidates}
    for folder in candidates:
        if not missing[folder]:
            return folder
    # Name what is missing where the files were evidently meant to be: the candidate holding the most.
    folder = min(candidates, key=lambda f: len(missing[f]))
    raise CifarDataError(f"cifar: {folder} lacks {', '.join(missing[folder])}; expected {EXPECTED_LAYOUT}")


def read_batch_file(path: Path) -> Split:
    """Decode one binary file into NHWC uint8 images and int32 labels; reject truncated or foreign files."""
    raw = path.read_bytes()
    if not raw or len(raw) % RECORD_BYTES:
        raise CifarDataError(
            f"{path}: {len(raw)} bytes is not a whole number of {RECORD_BYTES}-byte records (1 label byte + "
            f"3,072 pixel bytes); the file is truncated or not {EXPECTED_LAYOUT}"
        )
    records = np.frombuffer(raw, np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int32)
    if labels.max() >= NUM_CLASSES:
        index = int(np.argmax(labels >= NUM_CLASSES))
        raise CifarDataError(
            f"{path}: record {index} has label {labels[index]}, but CIFAR-10 labels are 0-9; "
            f"expected {EXPECTED_LAYOUT}"
        )
    planes = records[:, 1:].reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    return Split(np.ascontiguousarray(planes.transpose(0, 2, 3, 1)), labels)


@functools.lru_cache(maxsize=2)
def load_cifar(data_dir: str | None) -> CifarData:
    """The three splits from ``data_dir``; cached per process, so both frameworks' workloads share them."""
    folder = find_folder(data_dir)
    batches = [read_batch_file(folder / name) for name in TRAIN_FILES]
    images = np.concatenate([batch.inputs for batch in batches])
    labels = np.concatenate([batch.labels for batch in batches])
    num_validation = max(1, round(len(labels) * VALIDATION_FRACTION))
    if num_validation >= len(labels):
        raise CifarDataError(f"cifar: {folder} holds {len(labels)} training records, too few to split")
    return CifarData(
        folder,
        Split(images[:-num_validation], labels[:-num_validation]),
        Split(images[-num_validation:], labels[-num_validation:]),
        read_batch_file(folder / TEST_FILE),
    )


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC pixels to float32, minus AlgoPerf's channel mean, over its channel stddev."""
    return (images.astype(np.float32) * np.float32(1 / 255) - MEAN) / STDDEV


def augment(images: np.ndarray, rng: np.random.Generator, padding: int = CROP_PADDING) -> np.ndarray:
    """A random 32x32 crop of each image zero-padded by ``padding`` pixels, then a random horizontal flip.

    Raw pixels are padded, so the border is black after normalisation, as torchvision's ``RandomCrop``
    (AlgoPerf's PyTorch pipeline) gives it. One gather over precomputed row and column indices."""
    n, height, width, _ = images.shape
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offset_y = rng.integers(0, 2 * padding + 1, n)
    offset_x = rng.integers(0, 2 * padding + 1, n)
    flip = rng.random(n) < 0.5
    columns = offset_x[:, None] + np.where(flip[:, None], np.arange(width)[::-1], np.arange(width))
    rows = offset_y[:, None] + np.arange(height)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], columns[:, None, :]]
