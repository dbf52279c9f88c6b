"""imagenet_resnet_mini: AlgoPerf's imagenet_resnet at CPU scale, a small ResNet with batch norm on
procedurally generated class-conditional images (``images.py``, shared with imagenet_vit_mini)."""

from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "imagenet_resnet_mini",
        {
            "pytorch": "algoperf_workloads.imagenet_resnet_mini.pytorch:ImagenetResNetMiniWorkload",
            "jax": "algoperf_workloads.imagenet_resnet_mini.jax:ImagenetResNetMiniWorkload",
        },
    ),
]
