"""fastmri_mini: AlgoPerf's fastmri (U-Net, L1 loss, SSIM) on synthetic ellipse phantoms, 4x undersampled."""

from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "fastmri_mini",
        {
            "pytorch": "algoperf_workloads.fastmri_mini.pytorch:FastMriMiniWorkload",
            "jax": "algoperf_workloads.fastmri_mini.jax:FastMriMiniWorkload",
        },
    ),
]
