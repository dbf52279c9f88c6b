"""The framework-neutral part of cifar, AlgoPerf's CIFAR-10 development workload, on real files only.

Data (``data.py``): CIFAR-10 read from the binary files in ``--algoperf-data-dir`` (45,000 training, 5,000
validation and 10,000 test images, AlgoPerf's splits), normalised by AlgoPerf's fixed channel mean and
standard deviation; training batches get a random crop of the image padded by 4 pixels and a random
horizontal flip, on the host, from the input queue's random key. Nothing is downloaded: without the files
the benchmark test is skipped (see ``__init__``), and a data dir that lacks them raises ``CifarDataError``.

Model: AlgoPerf trains a ResNet-18 with batch norm; at CPU scale this is imagenet_resnet_mini's ResNet-8
(3x3 stem, three basic blocks of 16, 32 and 64 channels at strides 1, 2, 2, global average pooling, a
linear head; 78,042 parameters), imported with its loss, eval outputs and numpy metrics, not copied: the
framework modules combine this class with imagenet_resnet_mini's model half. Loss: softmax cross-entropy
with optional label smoothing; metric: accuracy (higher is better).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from algoperf_workloads.cifar.data import MEAN as TRAIN_MEAN
from algoperf_workloads.cifar.data import STDDEV as TRAIN_STDDEV
from algoperf_workloads.cifar.data import CifarData, augment, load_cifar, normalize
from algoperf_workloads.imagenet_resnet_mini.workload import BaseImageWorkload
from pytest_algoperf.array_workload import seed_from_key, shuffled_batches

EVAL_BATCH_SIZE = 1_000  # real splits are multiples of it: JAX compiles one eval shape


class BaseCifarWorkload(BaseImageWorkload):
    """CIFAR-10 splits from the data dir, AlgoPerf's normalisation and augmentation; the rest (metrics,
    the ``split_arrays`` of ``data.split``) is the image-classification base's."""

    name = "cifar"
    base_name = "cifar"
    calibration_file = Path(__file__).with_name("calibration.json")
    eval_batch_size = EVAL_BATCH_SIZE

    @cached_property
    def data(self) -> CifarData:  # type: ignore[override]  # the same interface, uint8 pixels
        return load_cifar(self.data_dir)

    @property
    def num_eval_train_examples(self) -> int:
        """AlgoPerf's rule: the validation size rounded up to a multiple of the eval batch size."""
        rounded = math.ceil(self.num_validation_examples / self.eval_batch_size) * self.eval_batch_size
        return min(rounded, self.num_train_examples)

    @property
    def train_mean(self) -> np.ndarray:
        return TRAIN_MEAN

    @property
    def train_stddev(self) -> np.ndarray:
        return TRAIN_STDDEV

    def batch_to_device(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Pixels are normalised per batch, on the way to the device (eval batches included)."""
        return super().batch_to_device({**batch, "inputs": normalize(batch["inputs"])})

    def build_input_queue(
        self, data_rng: Any, split: str, data_dir: str | None, global_batch_size: int
    ) -> Iterator[dict[str, Any]]:
        """Shuffled batches; training batches are cropped and flipped as raw pixels before normalisation."""
        shuffle_seed, augment_seed = np.random.SeedSequence(seed_from_key(data_rng)).spawn(2)
        augmenter = np.random.default_rng(augment_seed)
        batches = shuffled_batches(
            self.split_arrays(split), global_batch_size, int(shuffle_seed.generate_state(1)[0])
        )
        for batch in batches:
            if split == "train":
                batch = {**batch, "inputs": augment(batch["inputs"], augmenter)}
            yield self.batch_to_device(batch)
