"""The framework-neutral part of the mnist workload: data, targets, budget, metric and the eval loop.

Model: AlgoPerf's MNIST MLP (one hidden layer of 128 sigmoid units), on scikit-learn's 8x8 digits by default
or on real MNIST idx files from ``--algoperf-data-dir``. The framework modules add model, loss and batches.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from algoperf_workloads.mnist.data import MnistData, load_mnist
from pytest_algoperf.calibration import CalibratedWorkload
from pytest_algoperf.spec import LossType

HIDDEN_UNITS = 128
NUM_CLASSES = 10
NUM_EVAL_TRAIN_EXAMPLES = 300


class BaseMnistWorkload(CalibratedWorkload):
    name = "mnist"
    base_name = "mnist"

    @cached_property
    def data(self) -> MnistData:
        return load_mnist(self.data_dir)

    @property
    def data_description(self) -> str:
        return (
            f"{self.data.source}: {self.num_train_examples} train, {self.num_validation_examples} validation"
        )

    calibration_file = Path(__file__).with_name("calibration.json")

    @property
    def calibration_entry(self) -> str:
        return self.data.source  # digits and real MNIST have their own targets

    target_metric_name = "accuracy"
    loss_type = LossType.SOFTMAX_CROSS_ENTROPY
    eval_batch_size = 10_000

    @property
    def num_train_examples(self) -> int:
        return len(self.data.train.labels)

    @property
    def num_eval_train_examples(self) -> int:
        return min(NUM_EVAL_TRAIN_EXAMPLES, self.num_train_examples)

    @property
    def num_validation_examples(self) -> int:
        return len(self.data.validation.labels)

    @property
    def num_test_examples(self) -> int:
        return len(self.data.test.labels)

    def build_input_queue(
        self, data_rng: Any, split: str, data_dir: str | None, global_batch_size: int
    ) -> Iterator[dict[str, Any]]:
        """Endless shuffled epochs of ``split`` (the remainder of each epoch dropped), on the run's device.

        Batches are gathered on the host and then moved: for data this small, one transfer per batch is
        far cheaper than a device gather (600 us against 45 us per step in JAX on the CPU)."""
        arrays = self.data.split(split)
        shuffler = np.random.default_rng(_seed_from(data_rng))
        batches_per_epoch = len(arrays.labels) // global_batch_size
        while True:
            order = shuffler.permutation(len(arrays.labels))
            for i in range(batches_per_epoch):
                index = order[i * global_batch_size : (i + 1) * global_batch_size]
                yield {
                    "inputs": self.to_device(arrays.inputs[index]),
                    "targets": self.to_device(arrays.labels[index]),
                }

    def eval_model(
        self,
        global_batch_size: int,
        params: Any,
        model_state: Any,
        rng: Any,
        data_dir: str | None,
        global_step: int,
    ) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for split, limit in (("train", self.num_eval_train_examples), ("validation", None), ("test", None)):
            arrays = self.data.split(split)
            inputs, labels = arrays.inputs[:limit], arrays.labels[:limit]
            loss_sum = correct = 0.0
            for start in range(0, len(labels), global_batch_size):
                batch = {
                    "inputs": self.to_device(inputs[start : start + global_batch_size]),
                    "targets": self.to_device(labels[start : start + global_batch_size]),
                }
                batch_loss, batch_correct = self.eval_batch(params, model_state, batch)
                loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
            metrics[f"{split}/loss"] = loss_sum / len(labels)
            metrics[f"{split}/accuracy"] = correct / len(labels)
        return metrics

    @abc.abstractmethod
    def to_device(self, array: np.ndarray) -> Any:
        """Turn a numpy array into the framework's array on the run's device."""

    @abc.abstractmethod
    def eval_batch(self, params: Any, model_state: Any, batch: dict[str, Any]) -> tuple[float, float]:
        """Summed loss and number of correct predictions on one batch, as Python floats."""


def _seed_from(rng: Any) -> int:
    """A numpy seed from either framework's random key (a JAX key or a numpy key pair)."""
    return int(
        np.random.SeedSequence(np.asarray(rng).astype(np.uint32).ravel().tolist()).generate_state(1)[0]
    )
