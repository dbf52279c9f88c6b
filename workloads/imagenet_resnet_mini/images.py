"""Procedural class-conditional colour images, shared by imagenet_resnet_mini and imagenet_vit_mini.

Each of the ``NUM_CLASSES`` classes is a combination of a shape (circle, square, triangle, cross, ring), a
texture (solid, stripes, checker) and a colour palette (warm, green, cool) (``CLASSES``); every shape,
texture and palette belongs to at least two classes, so no single attribute names the class. Images are
rendered in four vectorised passes over a whole chunk of images at once:

1. background: a random colour (any hue, low saturation) with a linear brightness gradient in a random
   direction;
2. clutter: one distractor shape of random kind, texture and colour (palette-free), smaller than the object
   it sits behind;
3. the object: its class's shape at a random position (it may be cut off at the border), size and rotation,
   filled with its class's texture (random period and phase) in a foreground colour whose hue is drawn
   around its palette's centre (neighbouring palettes overlap), with random saturation and brightness; its
   edges are anti-aliased through the signed distance to the shape;
4. a random contrast and brightness change, then pixel noise whose strength varies per image.

Objects 6-11 pixels in circumradius on 24x24 images, noise, overlapping hues, textures only a few pixels fine
and a distractor shape that must not be taken for the object make the task far from trivial: a nearest
class-mean image scores about 0.25, the AdamW baseline's ResNet about 0.77 after 800 steps; most of its
remaining errors confuse a circle with a cross of the same palette, or the warm checkered and striped classes.
Everything comes from one numpy ``SeedSequence``: the same seed gives identical arrays, and the train,
validation and test splits are drawn from independent child seeds (continuous random parameters, so no image
repeats across splits).

Training batches are augmented on the host (``augment``): a random crop of the image padded by
``CROP_PADDING`` zero pixels (zero is the training mean after normalisation) and a random horizontal flip,
as AlgoPerf's CIFAR pipeline does; deterministic from the input queue's random key.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pytest_algoperf.data_cache import disk_cached

IMAGE_SIZE = 24
CHANNELS = 3
NUM_CLASSES = 10
CROP_PADDING = 2
DATA_SEED = 20_240_601
SPLIT_SIZES = {"train": 10_000, "validation": 1_000, "test": 1_000}
CHUNK = 2_000  # images rendered per vectorised pass, to bound the temporaries' memory

SHAPES = ("circle", "square", "triangle", "cross", "ring")
TEXTURES = ("solid", "stripes", "checker")
PALETTE_HUES = {"warm": 0.03, "green": 0.30, "cool": 0.60}  # hue centres on the [0, 1) colour wheel
HUE_SPREAD = 0.07  # standard deviation of the foreground hue around its palette's centre
# (shape, texture, palette) per class: each pair of classes differs in at least one attribute.
CLASSES = (
    ("circle", "solid", "warm"),
    ("circle", "stripes", "cool"),
    ("square", "solid", "cool"),
    ("square", "checker", "warm"),
    ("triangle", "stripes", "warm"),
    ("triangle", "solid", "green"),
    ("cross", "checker", "cool"),
    ("cross", "solid", "warm"),
    ("ring", "stripes", "green"),
    ("ring", "checker", "warm"),
)


@dataclass(frozen=True)
class Split:
    inputs: np.ndarray  # float32 (N, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), normalised by the training statistics
    labels: np.ndarray  # int32 (N,)


@dataclass(frozen=True)
class ImageData:
    train: Split
    validation: Split
    test: Split
    mean: np.ndarray  # per-channel mean of the raw training pixels, shape (CHANNELS,)
    stddev: np.ndarray  # per-channel standard deviation of the raw training pixels

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


@functools.lru_cache(maxsize=2)
@disk_cached(version=1)
def load_images(seed: int = DATA_SEED) -> ImageData:
    """All three splits, normalised per channel by the training set's statistics; cached per process."""
    train_seed, validation_seed, test_seed = np.random.SeedSequence(seed).spawn(3)
    raw = {
        "train": render_split(np.random.default_rng(train_seed), SPLIT_SIZES["train"]),
        "validation": render_split(np.random.default_rng(validation_seed), SPLIT_SIZES["validation"]),
        "test": render_split(np.random.default_rng(test_seed), SPLIT_SIZES["test"]),
    }
    train_images = raw["train"][0]
    mean = train_images.mean(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    stddev = train_images.std(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)

    def normalised(images: np.ndarray, labels: np.ndarray) -> Split:
        return Split(((images - mean) / stddev).astype(np.float32), labels)

    return ImageData(
        normalised(*raw["train"]), normalised(*raw["validation"]), normalised(*raw["test"]), mean, stddev
    )


def render_split(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``size`` raw images in [0, 1] with balanced-in-expectation uniform labels."""
    labels = rng.integers(0, NUM_CLASSES, size=size).astype(np.int32)
    images = np.concatenate(
        [render(rng, labels[start : start + CHUNK]) for start in range(0, size, CHUNK)], axis=0
    )
    return images, labels


def render(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Raw float32 images (N, H, W, 3) in [0, 1] for ``labels``, following the module docstring."""
    n = len(labels)
    grid = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    ys, xs = grid[None, :, None], grid[None, None, :]

    # 1. background: desaturated random colour times a brightness ramp.
    background = hsv_to_rgb(rng.random(n), rng.uniform(0.0, 0.4, n), rng.uniform(0.25, 0.85, n))
    angle = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    ramp = ((xs - IMAGE_SIZE / 2) * np.cos(angle) + (ys - IMAGE_SIZE / 2) * np.sin(angle)) / IMAGE_SIZE
    image = background[:, None, None, :] * (
        1.0 + rng.uniform(0, 0.6, n)[:, None, None, None] * ramp[..., None]
    )

    # 2. clutter: a distractor of any kind and colour, at most as large as the object drawn over it.
    radius = rng.uniform(6.0, 11.0, n).astype(np.float32)
    clutter_colour = hsv_to_rgb(rng.random(n), rng.uniform(0.2, 1.0, n), rng.uniform(0.3, 1.0, n))
    image = draw_shapes(
        rng,
        image,
        rng.integers(0, len(SHAPES), n),
        rng.integers(0, len(TEXTURES), n),
        clutter_colour,
        radius * rng.uniform(0.25, 0.55, n).astype(np.float32),
    )

    # 3. the object of the class.
    shape = np.array([SHAPES.index(CLASSES[c][0]) for c in labels])
    texture = np.array([TEXTURES.index(CLASSES[c][1]) for c in labels])
    hue_centre = np.array([PALETTE_HUES[CLASSES[c][2]] for c in labels])
    colour = hsv_to_rgb(
        (hue_centre + HUE_SPREAD * rng.standard_normal(n)) % 1.0,
        rng.uniform(0.35, 1.0, n),
        rng.uniform(0.45, 1.0, n),
    )
    image = draw_shapes(rng, image, shape, texture, colour, radius)

    # 4. photometric jitter and noise.
    contrast = rng.uniform(0.7, 1.3, n)[:, None, None, None]
    brightness = rng.uniform(-0.1, 0.1, n)[:, None, None, None]
    image = (image - 0.5) * contrast + 0.5 + brightness
    noise = rng.uniform(0.02, 0.12, n)[:, None, None, None] * rng.standard_normal(image.shape)
    return np.clip(image + noise, 0.0, 1.0).astype(np.float32)


def draw_shapes(
    rng: np.random.Generator,
    image: np.ndarray,
    shape: np.ndarray,
    texture: np.ndarray,
    colour: np.ndarray,
    radius: np.ndarray,
) -> np.ndarray:
    """Composite one textured shape per image over ``image``; ``radius`` is the circumradius in pixels."""
    n = len(shape)
    grid = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    centre = rng.uniform(0.2, 0.8, (n, 2)).astype(np.float32) * IMAGE_SIZE
    angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    dx = grid[None, None, :] - centre[:, 0, None, None]
    dy = grid[None, :, None] - centre[:, 1, None, None]
    r = radius[:, None, None]
    u, v = (dx * cos + dy * sin) / r, (-dx * sin + dy * cos) / r  # object frame, circumradius 1

    distance = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for index, name in enumerate(SHAPES):
        chosen = shape == index
        if chosen.any():
            distance[chosen] = signed_distance(name, u[chosen], v[chosen])
    alpha = np.clip(0.5 - distance * r, 0.0, 1.0)[..., None]  # anti-aliased over about one pixel

    period = rng.uniform(3.5, 6.0, n).astype(np.float32)[:, None, None] / r  # pixels, in object units
    phase = rng.uniform(0, 2 * np.pi, (n, 2)).astype(np.float32)
    wave_u = np.sin(2 * np.pi * u / period + phase[:, 0, None, None]) > 0
    wave_v = np.sin(2 * np.pi * v / period + phase[:, 1, None, None]) > 0
    pattern = np.where(
        (texture == TEXTURES.index("stripes"))[:, None, None],
        wave_u,
        np.where((texture == TEXTURES.index("checker"))[:, None, None], wave_u ^ wave_v, False),
    )
    shade = rng.uniform(0.25, 0.6, n).astype(np.float32)[:, None, None, None]  # the texture's dark share
    fill = colour[:, None, None, :] * np.where(pattern[..., None], shade, 1.0)
    return image * (1.0 - alpha) + fill * alpha


def signed_distance(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (negative inside) to a unit-circumradius shape, in object units."""
    if name == "circle":
        return np.sqrt(u * u + v * v) - 1.0
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.75
    if name == "triangle":  # three half-planes at inradius 0.5
        normals = (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)
        return np.max([u * np.cos(a) + v * np.sin(a) - 0.5 for a in normals], axis=0)
    if name == "cross":
        bar_u = np.maximum(np.abs(u) - 1.0, np.abs(v) - 0.3)
        bar_v = np.maximum(np.abs(u) - 0.3, np.abs(v) - 1.0)
        return np.minimum(bar_u, bar_v)
    if name == "ring":
        return np.abs(np.sqrt(u * u + v * v) - 0.72) - 0.28
    raise ValueError(f"unknown shape {name!r}")


def hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB for 1-D arrays, float32 (N, 3)."""
    sector = np.floor(hue * 6.0)
    fraction = hue * 6.0 - sector
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    choices = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q)]
    index = sector.astype(np.int64) % 6
    rgb = np.stack([np.choose(index, [c[channel] for c in choices]) for channel in range(3)], axis=-1)
    return rgb.astype(np.float32)


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random crop of the zero-padded images back to their size, and a random horizontal flip, per image.

    One gather over precomputed row and column indices: about 0.1 ms for a batch of 64."""
    n, height, width, _ = images.shape
    padded = np.pad(images, ((0, 0), (CROP_PADDING, CROP_PADDING), (CROP_PADDING, CROP_PADDING), (0, 0)))
    offset_y = rng.integers(0, 2 * CROP_PADDING + 1, n)
    offset_x = rng.integers(0, 2 * CROP_PADDING + 1, n)
    flip = rng.random(n) < 0.5
    columns = np.where(flip[:, None], np.arange(width)[::-1], np.arange(width))
    rows = offset_y[:, None] + np.arange(height)
    columns = offset_x[:, None] + columns
    return padded[np.arange(n)[:, None, None], rows[:, :, None], columns[:, None, :]]
