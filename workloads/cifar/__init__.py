"""cifar: AlgoPerf's CIFAR-10 development workload, a small ResNet with batch norm on the real CIFAR-10
binary files from ``--algoperf-data-dir`` (never downloaded; without a data dir the benchmark is skipped)."""

from algoperf_workloads.cifar.data import EXPECTED_LAYOUT
from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "cifar",
        {
            "pytorch": "algoperf_workloads.cifar.pytorch:CifarWorkload",
            "jax": "algoperf_workloads.cifar.jax:CifarWorkload",
        },
        requires_data=f"cifar needs --algoperf-data-dir=DIR holding {EXPECTED_LAYOUT} (never downloaded)",
        # Targets are provisional until calibrated on real CIFAR-10: it runs only when named.
        in_default_suite=False,
    ),
]
