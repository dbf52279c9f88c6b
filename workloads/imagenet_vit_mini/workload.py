"""The framework-neutral part of imagenet_vit_mini: the ViT's sizes; data, input pipeline and metrics come
from imagenet_resnet_mini's ``BaseImageWorkload`` (same images, same crop-and-flip augmentation, same numpy
accuracy).

Model: AlgoPerf's imagenet_vit (ViT-S/16) made small: a patch embedding (a convolution whose stride is the
patch size; 6x6 patches of the 24x24 images give 16 tokens), learned position embeddings, ``DEPTH``
pre-layernorm encoder blocks (multi-head self-attention written out explicitly, then an MLP with exact GELU,
each a residual branch with dropout), a final layernorm, mean pooling over the tokens (AlgoPerf's ``gap``:
layernorm first, then the mean, as there) and a linear head initialised to zero. Dropout is the
``dropout_rate`` argument of ``model_fn``.
"""

from __future__ import annotations

from pathlib import Path

from algoperf_workloads.imagenet_resnet_mini.images import IMAGE_SIZE
from algoperf_workloads.imagenet_resnet_mini.workload import BaseImageWorkload

PATCH_SIZE = 6
NUM_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2
WIDTH = 64
DEPTH = 4
NUM_HEADS = 4
MLP_DIM = 256
LAYER_NORM_EPSILON = 1e-6  # Flax's default; PyTorch's layers are given it explicitly


class BaseImagenetVitMiniWorkload(BaseImageWorkload):
    name = "imagenet_vit_mini"
    base_name = "imagenet_vit_mini"
    calibration_file = Path(__file__).with_name("calibration.json")
