"""The framework-neutral part of imagenet_vit_mini: the ViT's sizes; data, input pipeline and metrics come
from imagenet_resnet_mini's ``BaseImageWorkload`` (same images, same crop-and-flip augmentation, same numpy
accuracy).

Model: AlgoPerf's imagenet_vit (ViT-S/16) made small: a patch embedding (a convolution whose stride is the
patch size; 6x6 patches of the 24x24 images give 16 tokens), learned position embeddings, ``DEPTH``
pre-layernorm encoder blocks (multi-head self-attention written out explicitly, then an MLP with exact GELU,
each a residual branch with dropout), a final layernorm, mean pooling over the tokens (AlgoPerf's ``gap``:
layernorm first, then the mean, as there) and a linear head initialised to zero. Dropout is the
``dropout_rate`` argument of ``model_fn``.

Variants (AlgoPerf's ``ImagenetVit{Glu,PostLN,Map}Workload``) are switches on the base class below, read by
both frameworks' models:

- ``use_glu``: each block's MLP gates its GELU output by a linear map of itself (a ``mlp_glu`` layer, MLP_DIM
  to MLP_DIM, between ``mlp_in`` and ``mlp_out``), exactly AlgoPerf's ``MlpBlock(use_glu=True)``, which
  computes ``h = gelu(W_in x); h = h * (W_glu h)``, not the textbook ``gelu(W x) * (V x)``.
- ``use_post_layer_norm``: each block normalises after its residual additions (``x = ln1(x + attn(x))``,
  ``x = ln2(x + mlp(x))``) and the final ``encoder_norm`` is gone, as AlgoPerf's post-LN encoder.
- ``use_map``: AlgoPerf's multihead attention pooling head in place of the mean over tokens: a learned
  probe (Xavier-uniform, Flax's fans for its (1, 1, WIDTH) shape) attends over the normalised tokens with
  the blocks' attention, then a pre-layernorm GELU MLP (WIDTH -> MLP_DIM -> WIDTH, dropout on its hidden
  layer as in the blocks) is added as a residual; the probe's output feeds the zero head. (AlgoPerf's ViT
  also has a tanh pre-logits layer in every version; the mini ViT has none in any.)
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

    # Variant switches (see the module docstring); the base workload is the pre-layernorm, mean-pooled ViT.
    use_glu: bool = False
    use_post_layer_norm: bool = False
    use_map: bool = False


# The variants' switches, once for both frameworks: each framework's variant class puts one of these in
# front of its base workload class (``class X(GluVariant, ImagenetVitMiniWorkload)``).
class GluVariant(BaseImagenetVitMiniWorkload):
    use_glu = True


class PostLayerNormVariant(BaseImagenetVitMiniWorkload):
    use_post_layer_norm = True


class MapVariant(BaseImagenetVitMiniWorkload):
    use_map = True
