"""The framework-neutral part of fastmri_mini: data, sizes, targets, loss type and the SSIM metric.

AlgoPerf's fastmri workload at CPU scale. Task: reconstruct an image from 4x undersampled k-space, given the
zero-filled reconstruction (``data.py`` documents the synthetic ellipse phantoms, the AlgoPerf sampling mask
and the per-image normalisation). Model: AlgoPerf's U-Net (conv 3x3 -> instance norm without affine
parameters -> leaky ReLU 0.2 -> channel dropout, twice per block; average-pool downsampling; 2x2 stride-2
transpose-conv upsampling with instance norm and leaky ReLU; skip connections by concatenation; a final 1x1
conv), with ``NUM_CHANNELS`` base channels and ``NUM_POOL_LAYERS`` pools instead of 32 and 4; its size,
activation and normalisation are switches on ``BaseFastMriMiniWorkload`` that AlgoPerf's variants change
(the classes at the end of this module). Loss: the
per-example mean absolute error on the normalised images (LossType.MEAN_ABSOLUTE_ERROR).

Metric: SSIM as AlgoPerf (after fastMRI and skimage) computes it, implemented once here in numpy so the two
frameworks cannot drift apart: outputs and targets are mapped back to the original intensity scale
(``x * std + mean``), then per image a 7x7 uniform window (symmetric padding at the borders), K1 = 0.01,
K2 = 0.03, sample covariances (49/48), data range = the target's maximum, the SSIM map averaged over the
image without its 3-pixel border, clipped to [-1, 1]; the split's SSIM is the mean over images. Each
framework's ``eval_batch`` returns the summed per-image SSIM from ``batch_ssim`` and the summed loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from algoperf_workloads.fastmri_mini.data import DATA_SEED, MriSplit, load_splits
from pytest_algoperf.array_workload import ArrayWorkload, eval_batch_for
from pytest_algoperf.spec import LossType

NUM_CHANNELS = 16
NUM_POOL_LAYERS = 2
# The train subset evaluated: a quarter of validation (README, "Where we deviate": eval-train subsets).
NUM_EVAL_TRAIN_EXAMPLES = 128
# Divides every eval split (128 / 512), so JAX compiles one eval shape; on one CPU thread batches of 32
# run ~15% faster than 128 and ~2x faster than 512 (activations that fit the caches).
EVAL_BATCH_SIZE = 32
ACCELERATOR_EVAL_BATCH_SIZE = 128  # on a GPU: the earlier size, fewer launches
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _uniform_filter(images: np.ndarray, size: int) -> np.ndarray:
    """The mean over a ``size`` x ``size`` window around every pixel of each (H, W) image in a batch, with
    symmetric padding (scipy's 'reflect', skimage's, AlgoPerf's jnp.pad 'symmetric'). scipy's filter
    computes it in C, a third of the time of numpy cumulative sums (0.1 s less per fastmri_mini eval)."""
    return ndimage.uniform_filter(images, size=(1, size, size), mode="reflect")


def structural_similarity(
    images: np.ndarray,
    references: np.ndarray,
    data_range: np.ndarray | float,
    win_size: int = SSIM_WINDOW,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> np.ndarray:
    """Per-image mean SSIM of (N, H, W) ``images`` against ``references``, in float64, clipped to [-1, 1].

    ``data_range`` is a scalar or one value per image; the formula is skimage's ``structural_similarity``
    with its defaults (uniform window, sample covariance), which AlgoPerf's ``ssim.py`` copies.
    """
    x = np.asarray(images, np.float64)
    y = np.asarray(references, np.float64)
    if x.ndim == 2:
        x, y = x[None], y[None]
    num_points = win_size * win_size
    cov_norm = num_points / (num_points - 1)
    ux, uy = _uniform_filter(x, win_size), _uniform_filter(y, win_size)
    vx = cov_norm * (_uniform_filter(x * x, win_size) - ux * ux)
    vy = cov_norm * (_uniform_filter(y * y, win_size) - uy * uy)
    vxy = cov_norm * (_uniform_filter(x * y, win_size) - ux * uy)
    data_range = np.broadcast_to(np.asarray(data_range, np.float64), (len(x),))
    # AlgoPerf maps a zero range (padded examples) to one rather than dividing by zero.
    data_range = np.where(data_range == 0, 1.0, data_range)[:, None, None]
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return np.clip(ssim_map[:, pad:-pad, pad:-pad].mean(axis=(1, 2)), -1.0, 1.0)


def batch_ssim(outputs: np.ndarray, batch: dict[str, np.ndarray]) -> np.ndarray:
    """Per-example SSIM of normalised model ``outputs`` against the batch's normalised targets, both mapped
    back to the original scale first, with the target maximum as data range (AlgoPerf's ``ssim``)."""
    mean = np.asarray(batch["mean"], np.float64)[:, None, None]
    std = np.asarray(batch["std"], np.float64)[:, None, None]
    outputs = np.asarray(outputs, np.float64) * std + mean
    targets = np.asarray(batch["targets"], np.float64) * std + mean
    return structural_similarity(outputs, targets, np.asarray(batch["volume_max"]))


def zero_filled_ssim(split: MriSplit) -> float:
    """The trivial baseline: the SSIM of the zero-filled input itself (what an identity model scores)."""
    return float(batch_ssim(split.inputs, split.arrays()).mean())


class BaseFastMriMiniWorkload(ArrayWorkload):
    """fastmri_mini's data, sizes, targets and metric; the framework modules add the U-Net and its loss.

    ``train_mean`` / ``train_stddev`` keep the defaults (0, 1): as in AlgoPerf, every image is standardised
    by its own input statistics, and there is no dataset-wide normalisation.
    """

    name = "fastmri_mini"
    base_name = "fastmri_mini"
    calibration_file = Path(__file__).with_name("calibration.json")
    data_seed = DATA_SEED

    target_metric_name = "ssim"
    loss_type = LossType.MEAN_ABSOLUTE_ERROR

    @property
    def eval_batch_size(self) -> int:
        return eval_batch_for(self.device, EVAL_BATCH_SIZE, ACCELERATOR_EVAL_BATCH_SIZE)

    # The U-Net's switches, read by both frameworks' models; the variants below change them.
    num_channels = NUM_CHANNELS
    num_pool_layers = NUM_POOL_LAYERS
    activation = "leaky_relu"  # or "tanh": after every norm, in conv and transpose-conv blocks alike
    normalization = "instance"  # or "layer": the conv blocks' norms (transpose-conv blocks keep instance)

    @property
    def splits(self) -> dict[str, MriSplit]:
        return load_splits(self.data_seed)

    def split_arrays(self, split: str) -> dict[str, np.ndarray]:
        return self.splits[split].arrays()

    @property
    def num_train_examples(self) -> int:
        return len(self.splits["train"].inputs)

    @property
    def num_eval_train_examples(self) -> int:
        return min(NUM_EVAL_TRAIN_EXAMPLES, self.num_train_examples)

    @property
    def num_validation_examples(self) -> int:
        return len(self.splits["validation"].inputs)

    @property
    def num_test_examples(self) -> int:
        return len(self.splits["test"].inputs)

    def summarize_eval(self, totals: dict[str, Any], num_examples: int) -> dict[str, float]:
        return {"ssim": totals["ssim"] / num_examples, "loss": totals["loss"] / num_examples}


# ---- variants (ALGOPERF.md section 6): each framework's variant class puts one of these before its base ----


class ModelSizeVariant:
    """AlgoPerf's FastMRIModelSizeWorkload, scaled as the base is: AlgoPerf goes from 32 channels and 4
    pools to 64 channels and 3 (twice the channels, one pool fewer); here from 16 and 2 to 32 and 1. It
    costs several times the base's compute per step, as AlgoPerf's does, within the base's budget."""

    num_channels = 2 * NUM_CHANNELS
    num_pool_layers = NUM_POOL_LAYERS - 1


class TanhVariant:
    """AlgoPerf's FastMRITanhWorkload: tanh instead of every leaky ReLU."""

    activation = "tanh"


class LayerNormVariant:
    """AlgoPerf's FastMRILayerNormWorkload: each conv block's two instance norms become layer norms over
    (height, width, channels) with a learned per-channel scale and bias (Flax's LayerNorm over axes 1-3,
    PyTorch's GroupNorm with one group; epsilon 1e-6, as AlgoPerf); the transpose-conv blocks keep their
    instance norms, as AlgoPerf's do."""

    normalization = "layer"
