"""wmt_mini: AlgoPerf's wmt analog, an encoder-decoder Transformer on a synthetic translation task (grammar
sentences, dictionary mapping, noun-adjective reordering, subject-verb agreement, verb-final order), scored
by the corpus BLEU of greedy translations. This module imports no framework.

Its variants are AlgoPerf's wmt variants; their switches are the mixins at the end of ``workload.py``.
"""

from pytest_algoperf.registry import workload_family

VARIANT_CLASSES = {
    "wmt_mini_post_ln": "WmtMiniPostLNWorkload",
    "wmt_mini_attention_temp": "WmtMiniAttentionTempWorkload",
    "wmt_mini_glu_tanh": "WmtMiniGluTanhWorkload",
}

WORKLOADS = workload_family("wmt_mini", "WmtMiniWorkload", VARIANT_CLASSES)
