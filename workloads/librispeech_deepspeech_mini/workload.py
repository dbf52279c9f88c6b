"""The framework-neutral part of librispeech_deepspeech_mini: the model's sizes and the workload base.

Data, batch layout, CTC loss type, greedy decoding and word error rate (lower is better) come from
librispeech_conformer_mini's ``BaseSpeechWorkload``: the two speech workloads train on the same synthetic
utterances (``librispeech_conformer_mini/data.py``) and are scored by the same numpy code.

Model: AlgoPerf's librispeech_deepspeech (DeepSpeech 2) made small, in both frameworks:
1. Subsampling: two 3x3 convolutions with SAME padding and ReLU, ``CONV_CHANNELS`` channels, strides
   (time 2, frequency 2) then (1, 2); the paddings are strided alike and outputs at padded frames zeroed.
   AlgoPerf subsamples time x4; here x2, because the shortest utterances have 2 frames per character and
   CTC needs an output frame per label. Then a Dense layer to ``ENCODER_DIM`` and dropout.
2. ``NUM_LSTM_LAYERS`` residual blocks: batch norm over the unpadded frames, then a bidirectional LSTM of
   ``ENCODER_DIM // 2`` units per direction whose backward direction starts at each utterance's last real
   frame (padding never leaks into it).
3. ``NUM_FFN_LAYERS`` residual feed-forward blocks: batch norm, Dense, ReLU, padding zeroed, dropout.
4. Layer norm, then a Dense head over the 28 CTC classes (blank 0).
AlgoPerf's batch and layer norms scale by ``1 + scale`` with the scale initialised to zero; so do these.
AlgoPerf has 6 LSTM and 3 feed-forward layers of width 512 and SpecAugment; at CPU scale the LSTMs dominate
the step (they are compute-bound), so the mini keeps fewer and narrower ones, and no SpecAugment (the data's
noise and speaker shifts are the augmentation) except in the norm-and-SpecAugment variant (see
``DeepspeechNormAndSpecAug``). Dropout is the ``dropout_rate`` argument of ``model_fn``
(AlgoPerf's default 0.1 when the submission passes None).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from algoperf_workloads.librispeech_conformer_mini.data import NUM_BINS
from algoperf_workloads.librispeech_conformer_mini.workload import BaseSpeechWorkload

CONV_CHANNELS = 16
CONV_STRIDES = ((2, 2), (1, 2))  # (time, frequency) per convolution
# 239k parameters. FEASIBILITY.md's 96 units per direction (width 192, 517k) reached a given WER in ~25%
# fewer steps but took 1.5x (PyTorch) and 1.8x (JAX) longer per step: about the same time, a slower suite.
ENCODER_DIM = 128
NUM_LSTM_LAYERS = 2
NUM_FFN_LAYERS = 1
# AlgoPerf's 0.999 would leave half the initial statistics in the running averages after the ~600 steps of
# a run here, so eval-mode batch norm would lag far behind; 0.99 forgets them within ~300 steps.
BATCH_NORM_DECAY = 0.99
BATCH_NORM_EPSILON = 1e-3  # AlgoPerf's DeepSpeech value
LAYER_NORM_EPSILON = 1e-6
DEFAULT_DROPOUT_RATE = 0.1  # AlgoPerf's DeepSpeech uses 0.1 when the submission passes dropout_rate=None


@dataclass(frozen=True)
class DeepspeechSwitches:
    """The model switches of AlgoPerf's DeepSpeech variants (its ``DeepspeechConfig`` fields), read by both
    frameworks' models.

    - ``activation`` of the subsampling convolutions and the feed-forward layers (``relu`` or ``tanh``:
      AlgoPerf's ``use_tanh``).
    - ``residual_connections`` around the LSTM and feed-forward layers (``enable_residual_connections``).
    - ``layer_norm_everywhere``: layer norms (named ``layer_norm``) replace the LSTM and feed-forward
      layers' batch norms (``norm``), so the model has no batch statistics (``layernorm_everywhere``).
    - ``decoder_layer_norm``: the layer norm before the head (``enable_decoder_layer_norm``).
    - ``time_mask_count``, ``freq_mask_count``: SpecAugment masks on the inputs in training mode, when
      ``model_fn`` gets an rng (``spec_augment`` in librispeech_conformer_mini's workload.py); 0 and 0, no
      SpecAugment, in the base model (see the module docstring).
    """

    activation: str = "relu"
    residual_connections: bool = True
    layer_norm_everywhere: bool = False
    decoder_layer_norm: bool = True
    time_mask_count: int = 0
    freq_mask_count: int = 0


def same_padding(size: int, stride: int, kernel: int = 3) -> tuple[int, int]:
    """TensorFlow/XLA SAME padding (low, high) of one axis: ``ceil(size / stride)`` outputs, an odd total
    padded one more at the high end. Both frameworks pad explicitly with it, so they cannot disagree."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def subsampled_bins(bins: int = NUM_BINS) -> int:
    """Frequency bins left after the convolutions' strides (SAME padding: ceil per convolution)."""
    for _, stride in CONV_STRIDES:
        bins = -(-bins // stride)
    return bins


class BaseDeepspeechMiniWorkload(BaseSpeechWorkload):
    """librispeech_deepspeech_mini without a framework: the framework modules add the model and its loss."""

    name = "librispeech_deepspeech_mini"
    base_name = "librispeech_deepspeech_mini"
    calibration_file = Path(__file__).with_name("calibration.json")
    switches = DeepspeechSwitches()  # the variants change these


# AlgoPerf's DeepSpeech variants, as switch mixins the framework modules put before their base workload.
class DeepspeechTanh:
    """AlgoPerf's LibriSpeechDeepSpeechTanhWorkload: tanh instead of ReLU."""

    switches = DeepspeechSwitches(activation="tanh")


class DeepspeechNoResidual:
    """AlgoPerf's LibriSpeechDeepSpeechNoResNetWorkload: no residual connections."""

    switches = DeepspeechSwitches(residual_connections=False)


class DeepspeechNormAndSpecAug:
    """AlgoPerf's LibriSpeechDeepSpeechNormAndSpecAugWorkload: layer norm instead of batch norm, no layer
    norm before the head, and more SpecAugment masks than its base model's 10 time and 2 frequency masks:
    15 and 4. The mini base model has no SpecAugment; this variant adds AlgoPerf's variant masks, on the
    raw inputs (AlgoPerf masks normalised features; the raw ones here have per-bin means 0.1-0.65 and
    standard deviations 0.6-0.9, so a masked value 0 is near the mean, as AlgoPerf's is)."""

    switches = DeepspeechSwitches(
        layer_norm_everywhere=True, decoder_layer_norm=False, time_mask_count=15, freq_mask_count=4
    )
