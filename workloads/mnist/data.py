"""MNIST data: real idx files when a data directory holds them, else scikit-learn's 8x8 digits.

scikit-learn ships the 1,797 8x8 handwritten digits of the UCI "optdigits" set, so the default workload needs
no download. They are split once, deterministically, into disjoint train / validation / test sets.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pytest_algoperf.data_cache import disk_cached

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DIGITS_SPLIT_SEED = 0
DIGITS_VALIDATION_SIZE = 300
DIGITS_TEST_SIZE = 300
IDX_VALIDATION_SIZE = 10_000


@dataclass(frozen=True)
class Split:
    inputs: np.ndarray  # float32, flattened
    labels: np.ndarray  # int64


@dataclass(frozen=True)
class MnistData:
    source: str  # "digits" or "idx", which also names the calibration entry
    train: Split
    validation: Split
    test: Split

    @classmethod
    def standardized(cls, source: str, train: Split, validation: Split, test: Split) -> MnistData:
        """Scale every split by the training set's mean and standard deviation, as AlgoPerf's MNIST does."""
        mean, std = float(train.inputs.mean()), float(train.inputs.std())

        def scale(split: Split) -> Split:
            return Split(((split.inputs - mean) / std).astype(np.float32), split.labels)

        return cls(source, scale(train), scale(validation), scale(test))

    @property
    def num_features(self) -> int:
        return self.train.inputs.shape[1]

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


def load_mnist(data_dir: str | None) -> MnistData:
    """Real MNIST from ``data_dir`` (or ``data_dir/mnist``) when its four idx files are there, else digits."""
    folder = find_idx_folder(Path(data_dir)) if data_dir else None
    return load_idx(folder) if folder is not None else load_digits_splits()


def find_idx_folder(data_dir: Path) -> Path | None:
    for folder in (data_dir, data_dir / "mnist"):
        if all(_idx_path(folder, name) is not None for name in IDX_FILES.values()):
            return folder
    return None


@disk_cached(version=1)
def load_digits_splits() -> MnistData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    inputs = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    test, validation = (
        order[:DIGITS_TEST_SIZE],
        order[DIGITS_TEST_SIZE : DIGITS_TEST_SIZE + DIGITS_VALIDATION_SIZE],
    )
    train = order[DIGITS_TEST_SIZE + DIGITS_VALIDATION_SIZE :]
    return MnistData.standardized(
        "digits",
        Split(inputs[train], labels[train]),
        Split(inputs[validation], labels[validation]),
        Split(inputs[test], labels[test]),
    )


def load_idx(folder: Path) -> MnistData:
    """The standard split: the last 10,000 training images are validation, t10k is test."""
    train_images = read_idx(_idx_path(folder, IDX_FILES["train_images"]))
    train_labels = read_idx(_idx_path(folder, IDX_FILES["train_labels"]))
    test_images = read_idx(_idx_path(folder, IDX_FILES["test_images"]))
    test_labels = read_idx(_idx_path(folder, IDX_FILES["test_labels"]))
    n_validation = min(IDX_VALIDATION_SIZE, len(train_labels) // 6)  # small test files keep a train split

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        return Split((images.reshape(len(images), -1) / 255.0).astype(np.float32), labels.astype(np.int64))

    return MnistData.standardized(
        "idx",
        split(train_images[:-n_validation], train_labels[:-n_validation]),
        split(train_images[-n_validation:], train_labels[-n_validation:]),
        split(test_images, test_labels),
    )


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzipped): a big-endian magic with the dtype and rank, then the dims."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (bad magic number)")
    rank = raw[3]
    dims = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} values; the file is truncated")
    return data.reshape(dims)


def _idx_path(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None
