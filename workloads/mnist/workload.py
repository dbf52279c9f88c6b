"""The framework-neutral part of the mnist workload: data, targets, budget, metric and the eval loop.

Model: AlgoPerf's MNIST MLP (one hidden layer of 128 sigmoid units), on scikit-learn's 8x8 digits by default
or on real MNIST idx files from ``--algoperf-data-dir``. The framework modules add model, loss and batches.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from algoperf_workloads.mnist.data import MnistData, load_mnist
from pytest_algoperf.array_workload import ArrayWorkload
from pytest_algoperf.spec import LossType

HIDDEN_UNITS = 128
NUM_CLASSES = 10
NUM_EVAL_TRAIN_EXAMPLES = 300


class BaseMnistWorkload(ArrayWorkload):
    name = "mnist"
    base_name = "mnist"

    @cached_property
    def data(self) -> MnistData:
        return load_mnist(self.data_dir)

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

    def split_arrays(self, split: str) -> dict[str, np.ndarray]:
        arrays = self.data.split(split)
        return {"inputs": arrays.inputs, "targets": arrays.labels}

    def summarize_eval(self, totals: dict[str, float], num_examples: int) -> dict[str, float]:
        return {"loss": totals["loss"] / num_examples, "accuracy": totals["correct"] / num_examples}
