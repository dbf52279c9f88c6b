"""The framework-neutral part of imagenet_resnet_mini, and the image-classification base it shares with
imagenet_vit_mini.

Data (``images.py``): 10 procedurally generated classes of 24x24 colour images, each class a combination of
shape, texture and colour palette drawn at a random position, size and rotation over a cluttered, noisy
background; 10,000 training, 1,000 validation and 1,000 test images, normalised per channel by the training
mean and standard deviation (``train_mean`` / ``train_stddev``). Training batches get a random padded crop
and a horizontal flip on the host, from the input queue's random key.

Model: a ResNet with batch norm, as AlgoPerf's imagenet_resnet but small: a 3x3 stem, then three stages of
one basic block each (``STAGE_WIDTHS`` channels, strides 1, 2, 2; a 1x1 projection shortcut where the shape
changes), global average pooling and a linear head; its activation and the initial scale of each block's
last batch norm are switches on ``BaseImagenetResNetMiniWorkload``, which AlgoPerf's variants change (the
classes at the end of this module). Loss: softmax cross-entropy with optional label
smoothing; metric: accuracy (higher is better), computed here in numpy from the logits that each framework's
``eval_batch`` returns, so the two frameworks cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from algoperf_workloads.imagenet_resnet_mini.images import (
    CHANNELS,
    IMAGE_SIZE,
    NUM_CLASSES,
    ImageData,
    augment,
    load_images,
)
from pytest_algoperf.array_workload import ArrayWorkload, eval_batch_for, seed_from_key, shuffled_batches
from pytest_algoperf.spec import LossType

STAGE_WIDTHS = (16, 32, 64)
STAGE_STRIDES = (1, 2, 2)
NUM_EVAL_TRAIN_EXAMPLES = 250  # a quarter of validation (README, "Where we deviate": eval-train subsets)
# Every eval split is a multiple of it (one jitted shape in JAX); on one CPU thread, batches of 100-250
# evaluate the ResNet twice as fast as 1,000 (activations that fit the caches).
EVAL_BATCH_SIZE = 125
ACCELERATOR_EVAL_BATCH_SIZE = 1_000  # on a GPU: the earlier size, fewer launches
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, CHANNELS)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example softmax cross-entropy in float64 (the eval loss, without label smoothing)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=-1))
    return log_norm - np.take_along_axis(shifted, np.asarray(labels)[:, None], axis=-1)[:, 0]


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of examples whose largest logit is the label's (ties go to the lowest index, as argmax)."""
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


class BaseImageWorkload(ArrayWorkload):
    """Image classification on the procedural images: splits, augmented input queue, metrics."""

    target_metric_name = "accuracy"
    loss_type = LossType.SOFTMAX_CROSS_ENTROPY

    @property
    def eval_batch_size(self) -> int:
        return eval_batch_for(self.device, EVAL_BATCH_SIZE, ACCELERATOR_EVAL_BATCH_SIZE)

    num_classes = NUM_CLASSES

    @cached_property
    def data(self) -> ImageData:
        return load_images()

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

    @property
    def train_mean(self) -> np.ndarray:
        return self.data.mean

    @property
    def train_stddev(self) -> np.ndarray:
        return self.data.stddev

    def split_arrays(self, split: str) -> dict[str, np.ndarray]:
        arrays = self.data.split(split)
        return {"inputs": arrays.inputs, "targets": arrays.labels}

    def build_input_queue(
        self, data_rng: Any, split: str, data_dir: str | None, global_batch_size: int
    ) -> Iterator[dict[str, Any]]:
        """Shuffled batches; training batches are augmented (crop and flip) on the host before the move."""
        shuffle_seed, augment_seed = np.random.SeedSequence(seed_from_key(data_rng)).spawn(2)
        augmenter = np.random.default_rng(augment_seed)
        batches = shuffled_batches(
            self.split_arrays(split), global_batch_size, int(shuffle_seed.generate_state(1)[0])
        )
        for batch in batches:
            if split == "train":
                batch = {**batch, "inputs": augment(batch["inputs"], augmenter)}
            yield self.batch_to_device(batch)

    def summarize_eval(self, totals: dict[str, Any], num_examples: int) -> dict[str, float]:
        """``eval_batch`` returns the logits and labels; the loss and accuracy are computed once, here."""
        logits, labels = totals["logits"], totals["targets"]
        return {"loss": float(cross_entropy(logits, labels).mean()), "accuracy": accuracy(logits, labels)}


class BaseImagenetResNetMiniWorkload(BaseImageWorkload):
    name = "imagenet_resnet_mini"
    base_name = "imagenet_resnet_mini"
    calibration_file = Path(__file__).with_name("calibration.json")
    # The model's switches, read by both frameworks' ResNets (and inherited by cifar); the variants below
    # change them, as AlgoPerf's use_silu, use_gelu and bn_init_scale do.
    activation = "relu"  # every activation: stem, inside each block, after each residual sum
    bn_init_scale = 0.0  # the initial scale of each block's last batch norm (0: blocks start as identity)


# ---- variants (ALGOPERF.md section 6): each framework's variant class puts one of these before its base ----


class SiluVariant:
    """AlgoPerf's ImagenetResNetSiLUWorkload: SiLU instead of every ReLU."""

    activation = "silu"


class GeluVariant:
    """AlgoPerf's ImagenetResNetGELUWorkload: GELU instead of every ReLU, in its tanh approximation (Flax's
    ``nn.gelu`` default, and AlgoPerf's PyTorch ResNet asks for it to match)."""

    activation = "gelu"


class LargeBnInitVariant:
    """AlgoPerf's ImagenetResNetLargeBNScaleWorkload: each residual block's last batch-norm scale starts at
    8 instead of 0, so the residual branches are large from the first step."""

    bn_init_scale = 8.0
