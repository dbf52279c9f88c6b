"""imagenet_vit_mini: AlgoPerf's imagenet_vit at CPU scale, a small ViT on the procedurally generated images
of imagenet_resnet_mini (the generator lives there, in ``images.py``, and is imported, not copied)."""

from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "imagenet_vit_mini",
        {
            "pytorch": "algoperf_workloads.imagenet_vit_mini.pytorch:ImagenetVitMiniWorkload",
            "jax": "algoperf_workloads.imagenet_vit_mini.jax:ImagenetVitMiniWorkload",
        },
    ),
]
