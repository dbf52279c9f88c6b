"""librispeech_deepspeech_mini: AlgoPerf's librispeech_deepspeech analog, a small DeepSpeech (convolutional
subsampling, bidirectional LSTMs, a CTC head) on librispeech_conformer_mini's synthetic utterances, scored by
word error rate. This module imports no framework."""

from pytest_algoperf.registry import WorkloadEntry

WORKLOADS = [
    WorkloadEntry(
        "librispeech_deepspeech_mini",
        {
            "pytorch": "algoperf_workloads.librispeech_deepspeech_mini.pytorch:DeepspeechMiniWorkload",
            "jax": "algoperf_workloads.librispeech_deepspeech_mini.jax:DeepspeechMiniWorkload",
        },
        # Calibrated on a shared, loaded core (its budget is inflated ~4x, see calibration.json): it runs
        # only when named until recalibrated on a quiet one.
        in_default_suite=False,
    ),
]
