"""imagenet_resnet_mini: AlgoPerf's imagenet_resnet at CPU scale, a small ResNet with batch norm on
procedurally generated class-conditional images (``images.py``, shared with imagenet_vit_mini), and its
AlgoPerf variants (SiLU, GELU, large batch-norm init; see ``workload.py``)."""

from pytest_algoperf.registry import workload_family

VARIANT_CLASSES = {
    "imagenet_resnet_mini_silu": "ImagenetResNetMiniSiluWorkload",
    "imagenet_resnet_mini_gelu": "ImagenetResNetMiniGeluWorkload",
    "imagenet_resnet_mini_large_bn_init": "ImagenetResNetMiniLargeBnInitWorkload",
}

WORKLOADS = workload_family("imagenet_resnet_mini", "ImagenetResNetMiniWorkload", VARIANT_CLASSES)
