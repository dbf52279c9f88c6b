"""librispeech_deepspeech_mini: AlgoPerf's librispeech_deepspeech analog, a small DeepSpeech (convolutional
subsampling, bidirectional LSTMs, a CTC head) on librispeech_conformer_mini's synthetic utterances, scored by
word error rate. This module imports no framework.

Its variants are AlgoPerf's DeepSpeech variants; their switches are the mixins at the end of ``workload.py``.
"""

from pytest_algoperf.registry import workload_family

VARIANT_CLASSES = {
    "librispeech_deepspeech_mini_tanh": "DeepspeechMiniTanhWorkload",
    "librispeech_deepspeech_mini_no_resnet": "DeepspeechMiniNoResNetWorkload",
    "librispeech_deepspeech_mini_norm_and_spec_aug": "DeepspeechMiniNormAndSpecAugWorkload",
}

WORKLOADS = workload_family("librispeech_deepspeech_mini", "DeepspeechMiniWorkload", VARIANT_CLASSES)
