"""The framework-neutral part of criteo1tb_mini: data, sizes, targets, loss type and the log-loss metric.

AlgoPerf's criteo1tb trains DLRM-small on the Criteo 1TB click logs and scores the validation log loss
(lower is better). Here the logs are synthetic (``data.py`` documents the generator) and the model is
DLRM-small scaled down 8x in width: bottom MLP 13 -> 64 -> 32 -> 16, one 16-dim embedding table for all
26 categorical features (AlgoPerf hashes all 26 into one 4M-row table; here each feature owns its own block
of rows, 20 to 1,500, 9,352 in all, so ids never collide), dot interactions of the 27 vectors (upper
triangle with the diagonal, as AlgoPerf's ``dot_interact``), then a top MLP 394 -> 128 -> 128 -> 64 -> 32 -> 1
with dropout before the last layer. The initialisation is AlgoPerf's, in both frameworks: bottom kernels
Glorot-uniform, top kernels normal with variance 2 / (fan_in + fan_out), biases normal with variance
1 / fan_out, the embedding table uniform in [0, 1 / sqrt(its rows)).

One table, not one per feature, and batches of 2,048 keep AlgoPerf's balance between the model and the
optimizer (VALIDITY.md, rule 1): an update touches one tensor instead of 26, so a per-tensor optimizer (a
preconditioner, a Python loop over parameters) costs here what it costs on AlgoPerf's criteo1tb, and the
forward and backward pass over 2,048 examples outweighs an update of the table.

Variants (AlgoPerf's ``Criteo1TbDlrmSmall{LayerNorm,ResNet,EmbedInit}Workload``) are switches on the base
class below, read by both frameworks' models:

- ``use_layer_norm``: a layernorm (epsilon 1e-6) after every hidden ReLU of both MLPs and one shared
  layernorm over each embedding vector before the interactions, as AlgoPerf's DlrmSmall places them.
- ``use_resnet``: AlgoPerf's DLRMResNet, 8x narrower like the base: bottom MLP 13 -> 32 -> 32 -> 32 and top
  MLP 448 -> 32 -> 32 -> 32 -> 32 -> 1, every layer after the first of each MLP (but the output layer) a
  residual ``x + relu(dense(x))``; no dot interactions: the top MLP reads the bottom output concatenated
  with the 26 flattened embeddings; dropout acts on the last residual branch before it is added.
- ``embedding_init_multiplier``: the embedding table drawn uniform in [0, multiplier) instead of
  [0, 1 / sqrt(its rows)).

Batches are AlgoPerf's: ``inputs`` float32 (batch, 39) holding the 13 transformed dense features then the
26 ids as floats, ``targets`` float32 (batch,). The metric is computed here, in numpy, from the logits that
each framework's ``eval_batch`` returns, so PyTorch and JAX cannot disagree on it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from algoperf_workloads.criteo1tb_mini.data import (
    NUM_DENSE_FEATURES,
    NUM_SPARSE_FEATURES,
    VOCAB_SIZES,
    ClickLogs,
    log_loss,
    make_click_logs,
)
from pytest_algoperf.array_workload import ArrayWorkload
from pytest_algoperf.spec import LossType

EMBED_DIM = 16
BOTTOM_MLP_DIMS = (64, 32, EMBED_DIM)  # the last width is the embedding dimension: it joins the interactions
TOP_MLP_DIMS = (128, 128, 64, 32, 1)
NUM_INTERACTIONS = (NUM_SPARSE_FEATURES + 1) * (NUM_SPARSE_FEATURES + 2) // 2  # upper triangle of 27 x 27
TOP_MLP_INPUT_DIM = EMBED_DIM + NUM_INTERACTIONS
LAYER_NORM_EPSILON = 1e-6  # AlgoPerf's (PyTorch's layers are given it; it is Flax's default)
# AlgoPerf's DLRMResNet widths (256, 256, 256) and (256, 256, 256, 256, 1), 8x narrower as the base's are.
RESIDUAL_BOTTOM_MLP_DIMS = (32, 32, 32)
RESIDUAL_TOP_MLP_DIMS = (32, 32, 32, 32, 1)
NUM_EVAL_TRAIN_EXAMPLES = 2_000

__all__ = [
    "BOTTOM_MLP_DIMS",
    "EMBED_DIM",
    "LAYER_NORM_EPSILON",
    "NUM_DENSE_FEATURES",
    "NUM_SPARSE_FEATURES",
    "TOP_MLP_DIMS",
    "TOP_MLP_INPUT_DIM",
    "VOCAB_SIZES",
    "BaseCriteo1TbMiniWorkload",
    "EmbedInitVariant",
    "LayerNormVariant",
    "ResidualVariant",
    "embedding_offsets",
]


def embedding_offsets(vocab_sizes: tuple[int, ...]) -> np.ndarray:
    """Where each feature's rows start in the one embedding table: feature ``i``'s id ``k`` is row
    ``offsets[i] + k``."""
    return np.cumsum((0, *vocab_sizes[:-1])).astype(np.int32)


class BaseCriteo1TbMiniWorkload(ArrayWorkload):
    name = "criteo1tb_mini"
    base_name = "criteo1tb_mini"
    calibration_file = Path(__file__).with_name("calibration.json")

    # The model's shape, as class attributes so that variants can change them.
    vocab_sizes: tuple[int, ...] = VOCAB_SIZES
    embed_dim: int = EMBED_DIM
    bottom_mlp_dims: tuple[int, ...] = BOTTOM_MLP_DIMS
    top_mlp_dims: tuple[int, ...] = TOP_MLP_DIMS
    # Variant switches (see the module docstring); the base workload is DLRM-small as AlgoPerf's.
    use_layer_norm: bool = False
    use_resnet: bool = False
    embedding_init_multiplier: float | None = None  # None: 1 / sqrt(the table's rows)

    @cached_property
    def data(self) -> ClickLogs:
        return make_click_logs()  # cached per process: both frameworks and repeated runs share it

    target_metric_name = "loss"
    target_metric_higher_is_better = False
    loss_type = LossType.SIGMOID_CROSS_ENTROPY
    eval_batch_size = 8_192  # each eval split is one batch (one jitted shape in JAX)

    @property
    def num_train_examples(self) -> int:
        return len(self.data.train.targets)

    @property
    def num_eval_train_examples(self) -> int:
        return min(NUM_EVAL_TRAIN_EXAMPLES, self.num_train_examples)

    @property
    def num_validation_examples(self) -> int:
        return len(self.data.validation.targets)

    @property
    def num_test_examples(self) -> int:
        return len(self.data.test.targets)

    @property
    def num_dense_features(self) -> int:
        return NUM_DENSE_FEATURES

    def split_arrays(self, split: str) -> dict[str, np.ndarray]:
        arrays = self.data.split(split)
        return {"inputs": arrays.inputs, "targets": arrays.targets}

    def summarize_eval(self, totals: dict[str, Any], num_examples: int) -> dict[str, float]:
        """Log loss over the split from the concatenated per-example logits and targets."""
        return {"loss": log_loss(totals["logits"], totals["targets"])}


# The variants' switches, once for both frameworks: each framework's variant class puts one of these in
# front of its base workload class (``class X(LayerNormVariant, Criteo1TbMiniWorkload)``).
class LayerNormVariant(BaseCriteo1TbMiniWorkload):
    use_layer_norm = True


class ResidualVariant(BaseCriteo1TbMiniWorkload):
    use_resnet = True
    bottom_mlp_dims = RESIDUAL_BOTTOM_MLP_DIMS
    top_mlp_dims = RESIDUAL_TOP_MLP_DIMS


class EmbedInitVariant(BaseCriteo1TbMiniWorkload):
    embedding_init_multiplier = 1.0
