"""Synthetic single-coil MRI: ellipse phantoms, 4x column-undersampled k-space, zero-filled reconstructions.

The generator, step by step (all numpy, float32 images, deterministic for a seed):

1. Phantom (``phantoms``): a Shepp-Logan-like head on a ``IMAGE_SIZE`` square grid over [-1, 1]^2. A skull
   ellipse of intensity 1 (semi-axes 0.7-0.92 by 0.8-0.95, centre within 0.05 of the origin, tilted up to
   0.3 rad), a brain ellipse inside it (85-93% of its size) that subtracts 0.6-0.85, then 3 to 8 features:
   ellipses with semi-axes 0.04-0.35, any angle, centres inside the brain, adding an intensity drawn from
   [-0.3, 0.6]. Intensities add where ellipses overlap and the image is clipped at 0. Edges are ramped over
   one pixel (an anti-aliased rasterisation), so the clean image is not itself full of aliasing.
2. k-space: the 2-D FFT of the phantom, centred (fftshift).
3. Mask (``column_masks``), exactly AlgoPerf's fastMRI rule for centre fraction 0.08 and acceleration 4: the
   ``int(0.08 * W)`` central columns, plus every other column with probability
   ``(W / 4 - n_low) / (W - n_low)``, so a quarter of the columns is kept on average. One fixed mask per
   example, drawn from the split's seed (AlgoPerf also fixes each training example's mask).
4. Input: the magnitude of the inverse FFT of the masked k-space (the zero-filled reconstruction), which is
   blurred and aliased along the undersampled axis. Target: the clean phantom.
5. Normalisation, as AlgoPerf's input pipeline does: input and target are both standardised by the
   *input's* per-image mean and standard deviation and clipped to [-6, 6]. ``mean``, ``std`` and
   ``volume_max`` (the target's maximum, SSIM's data range; AlgoPerf uses the maximum of the slice's whole
   volume, and our "volume" is one image) travel with each example so SSIM is computed on the original
   intensity scale.

Splits come from three independent child seeds of one ``SeedSequence``, so they are disjoint (tests check no
image repeats across them). Generating all 5,120 images takes about a second.

How hard it is: the zero-filled input itself scores SSIM ~0.44 on validation (the trivial baseline); the
AdamW baseline's U-Net passes 0.80 within ~100 steps and 0.90 after ~850, and levels off near 0.915 by step
2,000: a learning curve, not a step. (With 25% of the *non-central* columns instead of AlgoPerf's 25% in
total, the input would be less aliased: ~0.47.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pytest_algoperf.data_cache import disk_cached

IMAGE_SIZE = 32
CENTER_FRACTION = 0.08
ACCELERATION = 4.0
NORMALIZED_CLIP = 6.0
MIN_FEATURES, MAX_FEATURES = 3, 8
DATA_SEED = 0
SPLIT_SIZES = {"train": 4096, "validation": 512, "test": 512}


@dataclass(frozen=True)
class MriSplit:
    """One split: normalised ``inputs`` and ``targets`` (N, H, W), and per-example ``mean``, ``std``,
    ``volume_max`` (N,), all float32, keyed as AlgoPerf's fastMRI batches are."""

    inputs: np.ndarray
    targets: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    volume_max: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "inputs": self.inputs,
            "targets": self.targets,
            "mean": self.mean,
            "std": self.std,
            "volume_max": self.volume_max,
        }


def _add_ellipses(
    images: np.ndarray,
    centre_x: np.ndarray,
    centre_y: np.ndarray,
    semi_x: np.ndarray,
    semi_y: np.ndarray,
    angle: np.ndarray,
    value: np.ndarray,
) -> None:
    """Add one ellipse per image (parameters are per-image vectors) into ``images`` in place."""
    size = images.shape[-1]
    grid = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0).astype(np.float32)

    def column(values: np.ndarray) -> np.ndarray:
        return values.astype(np.float32)[:, None, None]

    cos, sin = column(np.cos(angle)), column(np.sin(angle))
    dx = grid[None, None, :] - column(centre_x)
    dy = grid[None, :, None] - column(centre_y)
    u = (dx * cos + dy * sin) / column(semi_x)
    v = (dy * cos - dx * sin) / column(semi_y)
    radius = np.sqrt(u * u + v * v)
    # 1 inside, 0 outside, a linear ramp about one pixel wide across the boundary (along the shorter axis).
    pixels_per_unit_radius = column(np.minimum(semi_x, semi_y)) * (size / 2.0)
    images += np.clip((1.0 - radius) * pixels_per_unit_radius + 0.5, 0.0, 1.0) * column(value)


def phantoms(rng: np.random.Generator, count: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """``count`` random head phantoms (float32, non-negative), as the module docstring describes."""
    uniform = rng.uniform
    images = np.zeros((count, size, size), np.float32)
    semi_x, semi_y = uniform(0.7, 0.92, count), uniform(0.8, 0.95, count)
    tilt = uniform(-0.3, 0.3, count)
    centre_x, centre_y = uniform(-0.05, 0.05, count), uniform(-0.05, 0.05, count)
    _add_ellipses(images, centre_x, centre_y, semi_x, semi_y, tilt, np.ones(count))
    shrink = uniform(0.85, 0.93, count)
    brain = -uniform(0.6, 0.85, count)
    _add_ellipses(images, centre_x, centre_y, semi_x * shrink, semi_y * shrink, tilt, brain)
    num_features = rng.integers(MIN_FEATURES, MAX_FEATURES + 1, count)
    for index in range(MAX_FEATURES):
        present = index < num_features
        radius, direction = uniform(0.0, 0.6, count), uniform(0.0, 2 * np.pi, count)
        _add_ellipses(
            images,
            centre_x + radius * np.cos(direction) * semi_x * 0.8,
            centre_y + radius * np.sin(direction) * semi_y * 0.8,
            uniform(0.04, 0.35, count),
            uniform(0.04, 0.35, count),
            uniform(0.0, np.pi, count),
            uniform(-0.3, 0.6, count) * present,
        )
    return np.clip(images, 0.0, None)


def column_masks(rng: np.random.Generator, count: int, width: int = IMAGE_SIZE) -> np.ndarray:
    """Boolean (count, width) masks over centred k-space columns: AlgoPerf's fastMRI sampling rule."""
    num_low = int(width * CENTER_FRACTION)
    start = (width - num_low + 1) // 2
    masks = np.zeros((count, width), bool)
    masks[:, start : start + num_low] = True
    probability = (width / ACCELERATION - num_low) / (width - num_low)
    return masks | (rng.uniform(size=(count, width)) < probability)


def zero_filled(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The magnitude of the inverse FFT of the column-masked (centred) k-space of ``images``."""
    kspace = np.fft.fftshift(np.fft.fft2(images), axes=(-2, -1))
    kspace = kspace * masks[:, None, :]
    return np.abs(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)))).astype(np.float32)


def make_split(seed: np.random.SeedSequence, count: int) -> MriSplit:
    """Phantoms, masks and reconstructions for one split, normalised by each input's mean and std."""
    image_rng, mask_rng = (np.random.default_rng(child) for child in seed.spawn(2))
    targets = phantoms(image_rng, count)
    inputs = zero_filled(targets, column_masks(mask_rng, count))
    mean = inputs.mean(axis=(1, 2), keepdims=True)
    std = inputs.std(axis=(1, 2), keepdims=True)

    def normalise(images: np.ndarray) -> np.ndarray:
        return np.clip((images - mean) / std, -NORMALIZED_CLIP, NORMALIZED_CLIP).astype(np.float32)

    return MriSplit(
        inputs=normalise(inputs),
        targets=normalise(targets),
        mean=mean.reshape(-1).astype(np.float32),
        std=std.reshape(-1).astype(np.float32),
        volume_max=targets.max(axis=(1, 2)).astype(np.float32),
    )


@lru_cache(maxsize=4)
@disk_cached(version=1)
def load_splits(seed: int = DATA_SEED) -> dict[str, MriSplit]:
    """All three splits for ``seed``; cached, so a second run in the process does not generate them again."""
    children = np.random.SeedSequence(seed).spawn(len(SPLIT_SIZES))
    return {
        name: make_split(child, size)
        for (name, size), child in zip(SPLIT_SIZES.items(), children, strict=True)
    }
