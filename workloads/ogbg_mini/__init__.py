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
        # Calibrated with 3 seeds only, and the benchmark's own seed met the target at 91% of the budget
        # (16.5 of 18.1 s): it runs only when named until a 5-seed calibration settles the budget.
        in_default_suite=False,
    ),
]
