"""ogbg_mini: AlgoPerf's ogbg analog, a GraphNetwork GNN on synthetic molecule-like graphs with 24
substructure tasks and missing labels, scored by mean average precision. This module imports no framework."""

from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "ogbg_mini",
        {
            "pytorch": "algoperf_workloads.ogbg_mini.pytorch:OgbgMiniWorkload",
            "jax": "algoperf_workloads.ogbg_mini.jax:OgbgMiniWorkload",
        },
    ),
]
