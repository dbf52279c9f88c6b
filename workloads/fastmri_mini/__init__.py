"""fastmri_mini: AlgoPerf's fastmri (U-Net, L1 loss, SSIM) on synthetic ellipse phantoms, 4x undersampled,
and its AlgoPerf variants (model size, tanh, layer norm; see ``workload.py``)."""

from pytest_algoperf.registry import workload_family

VARIANT_CLASSES = {
    "fastmri_mini_model_size": "FastMriMiniModelSizeWorkload",
    "fastmri_mini_tanh": "FastMriMiniTanhWorkload",
    "fastmri_mini_layernorm": "FastMriMiniLayerNormWorkload",
}

WORKLOADS = workload_family("fastmri_mini", "FastMriMiniWorkload", VARIANT_CLASSES)
