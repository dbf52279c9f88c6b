"""wmt_mini: AlgoPerf's wmt analog, an encoder-decoder Transformer on a synthetic translation task (grammar
sentences, dictionary mapping, noun-adjective reordering, subject-verb agreement, verb-final order), scored
by the corpus BLEU of greedy translations. This module imports no framework."""

from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "wmt_mini",
        {
            "pytorch": "algoperf_workloads.wmt_mini.pytorch:WmtMiniWorkload",
            "jax": "algoperf_workloads.wmt_mini.jax:WmtMiniWorkload",
        },
        # Calibrated on a loaded core: it runs only when named until the budget is set on a quiet one.
        in_default_suite=False,
    ),
]
