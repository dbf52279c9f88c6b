"""The framework-neutral part of ogbg_mini: graph data, batching, targets, budget, loss and metric in numpy.

AlgoPerf's ogbg trains a jraph GraphNetwork on ogbg-molpcba (128 binary assays, missing labels masked) with
sigmoid cross-entropy and scores mean average precision. This analog keeps the model family (node and edge
encoders, message-passing steps with edge, node and global MLP updates, layer norm, dropout, a decoder from
the globals), the loss and the metric, on synthetic molecule-like graphs (see ``data.py``'s docstring for
the generator) with ``NUM_TASKS`` substructure tasks. The GNN's activation and sizes are switches on
``BaseOgbgMiniWorkload`` that AlgoPerf's variants change (the classes at the end of this module).

Batches: ArrayWorkload slices per-graph padded arrays as usual (shuffled training batches, sequential eval
batches); ``batch_to_device`` packs each slice into flat jraph-style arrays (``pack_graphs``) before moving
it, so the models read node and edge rows with sender/receiver and graph indices and aggregate them with
segment sums. Eval returns the logits and labels of every graph; loss and mean average precision are then
computed here once, in numpy, so the two frameworks cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from algoperf_workloads.ogbg_mini.data import NUM_TASKS, GraphSplit, load_split, pack_graphs
from pytest_algoperf.array_workload import ArrayWorkload, eval_batch_for
from pytest_algoperf.spec import LossType

LATENT_DIM = 64
HIDDEN_DIMS = (64,)
NUM_MESSAGE_PASSING_STEPS = 3
DEFAULT_DROPOUT_RATE = 0.1  # AlgoPerf's ogbg uses 0.1 when the submission passes dropout_rate=None
LAYER_NORM_EPSILON = 1e-6  # Flax's default; PyTorch's LayerNorm is set to match
NUM_EVAL_TRAIN_EXAMPLES = 250  # a quarter of validation (README, "Where we deviate": eval-train subsets)
# Divides every eval split (one jitted shape in JAX); on one CPU thread JAX evaluates batches of 25-50
# ~1.8x faster than 500, PyTorch ~10% faster.
EVAL_BATCH_SIZE = 50
ACCELERATOR_EVAL_BATCH_SIZE = 500  # on a GPU: the earlier size, fewer launches


def sigmoid_cross_entropy(
    logits: np.ndarray, targets: np.ndarray, weights: np.ndarray, label_smoothing: float = 0.0
) -> np.ndarray:
    """Per-label loss, zero where the label is missing, with AlgoPerf's ogbg label smoothing.

    AlgoPerf smooths towards ``label_smoothing / num_tasks`` (it divides by the label dimension, as for a
    softmax); both frameworks and this reference copy that formula.
    """
    logits = logits.astype(np.float64)
    smoothed = (1.0 - label_smoothing) * targets + label_smoothing / targets.shape[-1]
    losses = np.maximum(logits, 0.0) - logits * smoothed + np.log1p(np.exp(-np.abs(logits)))
    return np.where(weights > 0, losses, 0.0)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """sklearn's ``average_precision_score`` for one task, in numpy: the precision at each distinct score
    threshold (highest first), weighted by the recall it adds, summed. Tied scores form one threshold."""
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order].astype(np.float64)
    # The last example of each run of equal scores closes a threshold.
    closes = np.r_[scores[1:] != scores[:-1], True]
    true_positives = np.cumsum(labels)[closes]
    predicted = (np.arange(1, len(labels) + 1))[closes]
    precision = true_positives / predicted
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def mean_average_precision(logits: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> float:
    """AlgoPerf's ogbg metric: sklearn's average precision per task over the graphs that have its label,
    then the mean over tasks; a task whose labelled graphs lack a positive or a negative is skipped (its AP
    is undefined or trivially 1). NaN when no task qualifies. ``average_precision`` computes sklearn's
    value in numpy (0.2 s less per eval than sklearn's per-task calls; the tests compare the two).

    AlgoPerf checks for positives and negatives over all graphs, where missing labels read as 0; this
    checks among the labelled graphs only, which differs only when a task's labelled graphs are all
    positive.
    """
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    precisions = []
    for task in range(targets.shape[1]):
        labelled = weights[:, task] > 0
        labels = targets[labelled, task]
        if labels.size and 0 < labels.sum() < labels.size:
            precisions.append(average_precision(labels, probabilities[labelled, task]))
    return float(np.mean(precisions)) if precisions else float("nan")


class BaseOgbgMiniWorkload(ArrayWorkload):
    """ogbg_mini without a framework: the framework modules add the GNN, its loss and ``eval_batch``."""

    name = "ogbg_mini"
    base_name = "ogbg_mini"
    calibration_file = Path(__file__).with_name("calibration.json")
    target_metric_name = "mean_average_precision"
    loss_type = LossType.SIGMOID_CROSS_ENTROPY

    @property
    def eval_batch_size(self) -> int:
        return eval_batch_for(self.device, EVAL_BATCH_SIZE, ACCELERATOR_EVAL_BATCH_SIZE)

    num_tasks = NUM_TASKS
    # The model's switches, read by both frameworks' GNNs; the variants below change them.
    activation = "relu"  # "relu", "gelu" (tanh approximation, as AlgoPerf's PyTorch GNN) or "silu"
    latent_dim = LATENT_DIM
    hidden_dims = HIDDEN_DIMS
    num_message_passing_steps = NUM_MESSAGE_PASSING_STEPS

    def split(self, split: str) -> GraphSplit:
        return load_split(split)

    def split_arrays(self, split: str) -> dict[str, np.ndarray]:
        return self.split(split).arrays()

    def batch_to_device(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Pack the per-graph slice into flat arrays on the host (numpy, ~0.1 ms for 32 graphs), then move
        them: one transfer per array, as ArrayWorkload does for plain examples."""
        return {key: self.to_device(value) for key, value in pack_graphs(batch).items()}

    @property
    def num_train_examples(self) -> int:
        return len(self.split("train"))

    @property
    def num_eval_train_examples(self) -> int:
        return min(NUM_EVAL_TRAIN_EXAMPLES, self.num_train_examples)

    @property
    def num_validation_examples(self) -> int:
        return len(self.split("validation"))

    @property
    def num_test_examples(self) -> int:
        return len(self.split("test"))

    def eval_outputs(self, logits: np.ndarray, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """What ``eval_batch`` hands back: the real graphs' logits and labels, as numpy arrays."""
        real = np.asarray(batch["graph_mask"]).astype(bool)
        return {
            "logits": np.asarray(logits, dtype=np.float32)[real],
            "targets": np.asarray(batch["targets"])[real],
            "weights": np.asarray(batch["weights"])[real],
        }

    def summarize_eval(self, totals: dict[str, Any], num_examples: int) -> dict[str, float]:
        logits, targets, weights = totals["logits"], totals["targets"], totals["weights"]
        if len(logits) != num_examples:
            raise AssertionError(f"eval saw {len(logits)} graphs, expected {num_examples}")
        loss = sigmoid_cross_entropy(logits, targets, weights).sum() / max(weights.sum(), 1.0)
        return {
            "loss": float(loss),
            "mean_average_precision": mean_average_precision(logits, targets, weights),
        }


# ---- variants (ALGOPERF.md section 6): each framework's variant class puts one of these before its base ----


class GeluVariant:
    """AlgoPerf's OgbgGeluWorkload: GELU instead of ReLU after every MLP's layer norm."""

    activation = "gelu"


class SiluVariant:
    """AlgoPerf's OgbgSiluWorkload: SiLU instead of ReLU after every MLP's layer norm."""

    activation = "silu"


class ModelSizeVariant:
    """AlgoPerf's OgbgModelSizeWorkload, scaled as the base is: AlgoPerf goes from latent 256, MLPs (256,)
    and 5 steps to latent 128, MLPs (256, 256) and 3 steps (half the latent width, two layers per MLP, 3/5
    of the steps); here from latent 64, (64,) and 3 steps to latent 32, (64, 64) and 2 steps."""

    latent_dim = 32
    hidden_dims = (64, 64)
    num_message_passing_steps = 2
