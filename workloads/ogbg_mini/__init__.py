"""ogbg_mini: AlgoPerf's ogbg analog, a GraphNetwork GNN on synthetic molecule-like graphs with 24
substructure tasks and missing labels, scored by mean average precision, and its AlgoPerf variants (GELU,
SiLU, model size; see ``workload.py``). This module imports no framework."""

from pytest_algoperf.registry import workload_family

VARIANT_CLASSES = {
    "ogbg_mini_gelu": "OgbgMiniGeluWorkload",
    "ogbg_mini_silu": "OgbgMiniSiluWorkload",
    "ogbg_mini_model_size": "OgbgMiniModelSizeWorkload",
}

WORKLOADS = workload_family("ogbg_mini", "OgbgMiniWorkload", VARIANT_CLASSES)
