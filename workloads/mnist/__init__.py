"""mnist: AlgoPerf's MLP development workload, on scikit-learn's digits or real MNIST files."""

from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "mnist",
        {
            "pytorch": "algoperf_workloads.mnist.pytorch:MnistWorkload",
            "jax": "algoperf_workloads.mnist.jax:MnistWorkload",
        },
    ),
]
