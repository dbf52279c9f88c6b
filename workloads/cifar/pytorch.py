"""cifar in PyTorch: imagenet_resnet_mini's ResNet-8 and its model half (init, ``model_fn`` with batch-norm
statistics in module buffers and ``update_batch_norm`` honoured, loss, eval outputs), on CIFAR-10 data.

The model half is inherited, not copied: ``BaseCifarWorkload`` comes first in the MRO, so the data, splits,
normalisation and augmentation are cifar's, and everything about the network is imagenet_resnet_mini's.
"""

from __future__ import annotations

from algoperf_workloads.cifar.workload import BaseCifarWorkload
from algoperf_workloads.imagenet_resnet_mini.pytorch import ImagenetResNetMiniWorkload


class CifarWorkload(BaseCifarWorkload, ImagenetResNetMiniWorkload):
    """CIFAR-10 with a ResNet-8 in PyTorch."""
