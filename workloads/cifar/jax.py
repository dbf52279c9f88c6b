"""cifar in JAX/Flax: imagenet_resnet_mini's ResNet-8 and its model half (init, ``model_fn`` with batch-norm
statistics in ``model_state`` and ``update_batch_norm`` honoured, loss, jitted eval), on CIFAR-10 data.

The model half is inherited, not copied: ``BaseCifarWorkload`` comes first in the MRO, so the data, splits,
normalisation and augmentation are cifar's. Initialisation traces the network on imagenet_resnet_mini's 24x24
input; the parameters do not depend on the image size (global average pooling before the head).
"""

from __future__ import annotations

from algoperf_workloads.cifar.workload import BaseCifarWorkload
from algoperf_workloads.imagenet_resnet_mini.jax import ImagenetResNetMiniWorkload


class CifarWorkload(BaseCifarWorkload, ImagenetResNetMiniWorkload):
    """CIFAR-10 with a ResNet-8 in JAX/Flax."""
