"""criteo1tb_mini: AlgoPerf's criteo1tb at CPU scale, a DLRM-small on synthetic click logs (log loss)."""

from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "criteo1tb_mini",
        {
            "pytorch": "algoperf_workloads.criteo1tb_mini.pytorch:Criteo1TbMiniWorkload",
            "jax": "algoperf_workloads.criteo1tb_mini.jax:Criteo1TbMiniWorkload",
        },
    ),
]
