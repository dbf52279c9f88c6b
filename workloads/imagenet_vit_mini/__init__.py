"""imagenet_vit_mini: AlgoPerf's imagenet_vit at CPU scale, a small ViT on the procedurally generated images
of imagenet_resnet_mini (the generator lives there, in ``images.py``, and is imported, not copied)."""

from pytest_algoperf.registry import workload_family

VARIANT_CLASSES = {
    "imagenet_vit_mini_glu": "ImagenetVitMiniGluWorkload",
    "imagenet_vit_mini_post_ln": "ImagenetVitMiniPostLayerNormWorkload",
    "imagenet_vit_mini_map": "ImagenetVitMiniMapWorkload",
}

WORKLOADS = workload_family("imagenet_vit_mini", "ImagenetVitMiniWorkload", VARIANT_CLASSES)
