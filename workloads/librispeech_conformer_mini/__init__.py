"""librispeech_conformer_mini: AlgoPerf's librispeech_conformer analog, a small Conformer with a CTC head on
synthetic utterances (``data.py``), scored by word error rate. This module imports no framework.

Its variants are AlgoPerf's conformer variants; their switches are the mixins at the end of ``workload.py``.
"""

from pytest_algoperf.registry import workload_family

VARIANT_CLASSES = {
    "librispeech_conformer_mini_attention_temperature": "ConformerMiniAttentionTemperatureWorkload",
    "librispeech_conformer_mini_layernorm": "ConformerMiniLayerNormWorkload",
    "librispeech_conformer_mini_gelu": "ConformerMiniGeluWorkload",
}

WORKLOADS = workload_family("librispeech_conformer_mini", "ConformerMiniWorkload", VARIANT_CLASSES)
