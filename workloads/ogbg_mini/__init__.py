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
        # Targets are provisional until calibrated on a quiet machine: it runs only when named.
        in_default_suite=False,
    ),
]
