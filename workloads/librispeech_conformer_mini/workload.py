"""The framework-neutral part of the speech workloads: CTC reference, greedy decoding, word error rate, and
the base classes of librispeech_conformer_mini (and, by import, librispeech_deepspeech_mini), in numpy.

AlgoPerf's librispeech workloads train on (inputs, input_paddings) -> per-frame logits over characters with
a CTC loss (``n_valid_examples`` = the number of real target labels) and score the word error rate of
greedy CTC decoding (argmax per frame, repeats merged, blanks dropped), corpus-level: the word edit
distances summed over utterances, divided by the reference words summed. Here the data are the synthetic
utterances of ``data.py``, which the Conformer reads standardised per bin (``normalized_arrays``). Eval
runs the model once per batch in the framework, then hands logits and per-utterance losses to
``speech_eval_outputs``: decoding and WER exist once, here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from algoperf_workloads.librispeech_conformer_mini.data import (
    BLANK,
    NUM_CLASSES,
    ids_to_text,
    load_split,
    nest_batch,
)
from pytest_algoperf.array_workload import ArrayWorkload, eval_batch_for
from pytest_algoperf.spec import LossType

# A quarter of validation, rounded up to whole eval batches (README, "Where we deviate": eval-train subsets).
NUM_EVAL_TRAIN_EXAMPLES = 150
# Divides every eval split (one jitted shape in JAX); on one CPU thread JAX evaluates batches of 50 ~1.5x
# faster than 500, PyTorch as fast.
EVAL_BATCH_SIZE = 50
ACCELERATOR_EVAL_BATCH_SIZE = 500  # on a GPU: the earlier size, fewer launches

# The Conformer (AlgoPerf's family, FEASIBILITY's size).
ENCODER_DIM = 64
NUM_BLOCKS = 2
NUM_HEADS = 4
CONV_KERNEL_SIZE = 15
FEED_FORWARD_EXPANSION = 4
SUBSAMPLING_CHANNELS = 16  # AlgoPerf uses ENCODER_DIM channels and two stride-2 convs; one x2 conv here
LAYER_NORM_EPSILON = 1e-6
BATCH_NORM_EPSILON = 1e-3  # AlgoPerf's conformer value
# AlgoPerf's 0.999 spans ~80 time constants of its ~80k-step runs; a run here has 400 steps, and with 0.99
# eval-mode batch norm lagged so far behind the weights that validation WER kept falling for 100 steps after
# the learning rate reached 0. 0.9 keeps the running averages ~10 steps behind.
BATCH_NORM_MOMENTUM = 0.9
DEFAULT_DROPOUT_RATE = 0.1  # AlgoPerf's conformer uses 0.1 when the submission passes dropout_rate=None
# AlgoPerf's SpecAugment masks at most 27 of its 80 bins per frequency mask: the same share of the 32 here.
# Its time masks are dynamic (at most 5% of each utterance's frames each), which needs no scaling.
SPEC_AUGMENT_FREQ_MASK_MAX_BINS = 11
SPEC_AUGMENT_TIME_MASK_MAX_RATIO = 0.05


def sinusoidal_positions(length: int, dim: int = ENCODER_DIM) -> np.ndarray:
    """AlgoPerf's conformer ``AddPositionalEmbedding``: ``(length, dim)`` float32, sines of ``dim // 2``
    geometric timescales from 1 to 10,000 followed by their cosines."""
    count = dim // 2
    inverse = np.exp(np.arange(count) * -(np.log(10_000.0) / max(count - 1, 1)))
    angles = np.arange(length)[:, None] * inverse[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def ctc_loss_reference(logits: np.ndarray, labels: Sequence[int], blank: int = BLANK) -> float:
    """Negative log-likelihood of ``labels`` under CTC for one utterance's unpadded ``(T, C)`` logits
    (unnormalised, as optax.ctc_loss takes them), by the forward algorithm in float64 log space; inf when
    no alignment fits. A reference for the frameworks' losses in tests, not for training."""
    log_probs = log_softmax(logits)
    extended = [blank]
    for label in labels:
        extended += [int(label), blank]
    states = len(extended)
    alpha = np.full(states, -np.inf)
    alpha[0] = log_probs[0, blank]
    if states > 1:
        alpha[1] = log_probs[0, extended[1]]
    for t in range(1, len(log_probs)):
        previous = alpha
        alpha = np.full(states, -np.inf)
        for s in range(states):
            paths = [previous[s]]
            if s >= 1:
                paths.append(previous[s - 1])
            if s >= 2 and extended[s] != blank and extended[s] != extended[s - 2]:
                paths.append(previous[s - 2])
            alpha[s] = np.logaddexp.reduce(paths) + log_probs[t, extended[s]]
    final = alpha[-1] if states == 1 else np.logaddexp(alpha[-1], alpha[-2])
    return float(-final)


def greedy_ctc_decode(logits: np.ndarray, paddings: np.ndarray) -> list[np.ndarray]:
    """Best-path CTC decoding of a batch: per utterance, the argmax label of each real frame (``paddings``
    0), consecutive repeats merged, then blanks dropped. ``logits`` is ``(B, T, C)`` scores or ``(B, T)``
    label ids; returns one int32 array of label ids per utterance."""
    ids = np.asarray(logits)
    if ids.ndim == 3:
        ids = ids.argmax(axis=-1)
    decoded = []
    for row, pad in zip(ids, np.asarray(paddings), strict=True):
        frames = row[pad == 0]
        keep = np.ones(len(frames), bool)
        keep[1:] = frames[1:] != frames[:-1]
        frames = frames[keep]
        decoded.append(frames[frames != BLANK].astype(np.int32))
    return decoded


def edit_distance(reference: Sequence[Any], hypothesis: Sequence[Any]) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions turning one into the other."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref != hyp))
    return row[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """``(word edit distance, number of reference words)`` of one utterance; words split on whitespace."""
    words = reference.split()
    return edit_distance(words, hypothesis.split()), len(words)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER as AlgoPerf computes it: total word edit distance / total reference words (may exceed 1)."""
    errors = words = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        e, n = word_errors(reference, hypothesis)
        errors, words = errors + e, words + n
    return errors / max(words, 1)


def speech_eval_outputs(
    logits: np.ndarray,
    logit_paddings: np.ndarray,
    targets: np.ndarray,
    target_paddings: np.ndarray,
    per_example_loss: np.ndarray,
) -> dict[str, float]:
    """One eval batch's sums: CTC loss and label count (for the per-label loss), word errors and words."""
    errors = words = 0
    hypotheses = greedy_ctc_decode(logits, logit_paddings)
    labels = zip(np.asarray(targets), np.asarray(target_paddings), strict=True)
    for hypothesis, (target, pad) in zip(hypotheses, labels, strict=True):
        e, n = word_errors(ids_to_text(target[pad == 0]), ids_to_text(hypothesis))
        errors, words = errors + e, words + n
    return {
        "ctc_loss_summed": float(np.sum(per_example_loss)),
        "num_labels": float(np.sum(1.0 - np.asarray(target_paddings))),
        "word_errors": float(errors),
        "num_words": float(words),
    }


def spec_augment(
    xp: Any, inputs: Any, paddings: Any, uniforms: Any, time_mask_count: int, freq_mask_count: int
) -> Any:
    """AlgoPerf's SpecAugment (lingvo's ``SpecAug``, dynamic time masks), written once for torch, jax.numpy
    and numpy (``xp``): ``inputs`` ``(B, T, F)`` with ``time_mask_count`` time masks and then
    ``freq_mask_count`` frequency masks zeroed per utterance. Each mask takes two of the ``uniforms``
    ``(B, 2 * (time_mask_count + freq_mask_count))`` in [0, 1), which the framework draws: its width
    ``floor(u * max_width)``, capped at ``max(floor(max_ratio * range), 1)``, and its start ``floor(u' *
    (range - width + 1))``. Time masks: range the utterance's real frames, ``max_width`` 5% of them;
    frequency masks: range the ``F`` bins, ``max_width`` ``SPEC_AUGMENT_FREQ_MASK_MAX_BINS``."""
    ones = paddings * 0.0 + 1.0  # positions are cumulative sums of ones: on the inputs' device, any xp
    lengths = (1.0 - paddings).sum(1)[:, None]
    ratio = SPEC_AUGMENT_TIME_MASK_MAX_RATIO

    def keep(u: Any, ranges: Any, max_width: Any, max_ratio: float, positions: Any) -> Any:
        sizes, starts = u[:, : u.shape[1] // 2], u[:, u.shape[1] // 2 :]
        bound = xp.floor(max_ratio * ranges)
        bound = bound + (bound < 1)  # max(bound, 1)
        sizes = xp.floor(sizes * max_width)
        sizes = sizes - (sizes > bound) * (sizes - bound)  # min(sizes, bound)
        starts = xp.floor(starts * (ranges - sizes + 1))
        masked = (positions >= starts[..., None]) & (positions < (starts + sizes)[..., None])
        return (masked.sum(1) == 0) * 1.0  # (B, positions): 1 where no mask covers

    split = 2 * time_mask_count
    if time_mask_count:
        time_keep = keep(uniforms[:, :split], lengths, lengths * ratio, ratio, ones.cumsum(1)[:, None] - 1)
        inputs = inputs * time_keep[:, :, None]
    if freq_mask_count:
        bins = inputs[:, 0, :] * 0.0 + 1.0
        positions = bins.cumsum(1)[:, None] - 1
        max_bins = SPEC_AUGMENT_FREQ_MASK_MAX_BINS
        inputs = (
            inputs * keep(uniforms[:, split:], bins.sum(1)[:, None], max_bins, 1.0, positions)[:, None, :]
        )
    return inputs


@lru_cache(maxsize=3)
def normalized_arrays(split: str) -> dict[str, np.ndarray]:
    """Split ``split`` with every bin of its real frames standardised by the training split's per-bin mean
    and standard deviation over real frames; padding frames stay zero. AlgoPerf's librispeech models do
    this in their preprocessing layer (fixed per-bin LibriSpeech statistics); doing it once here, outside
    the clock, is equivalent. It matters for the optimisation: on raw inputs one seed in seven left CTC's
    all-blank plateau ~50 steps after the others and ended at WER 0.113 against 0.07-0.08; normalised, 0.087.
    """
    train = load_split("train")
    real = train.input_paddings == 0
    mean, std = train.inputs[real].mean(axis=0), train.inputs[real].std(axis=0)
    arrays = load_split(split).arrays()
    mask = (1.0 - arrays["input_paddings"])[..., None]
    return {**arrays, "inputs": ((arrays["inputs"] - mean) / std * mask).astype(np.float32)}


class BaseSpeechWorkload(ArrayWorkload):
    """A speech workload without model or framework: the synthetic utterances, AlgoPerf's librispeech batch
    layout (``data.nest_batch``), CTC loss type, WER target (lower is better) and the eval summary.

    Framework subclasses implement ``eval_batch`` as ``speech_eval_outputs(logits, logit_paddings, targets,
    target_paddings, per_example_loss)`` on numpy copies of one batch's model outputs and labels."""

    target_metric_name = "wer"
    loss_type = LossType.CTC_LOSS

    @property
    def eval_batch_size(self) -> int:
        return eval_batch_for(self.device, EVAL_BATCH_SIZE, ACCELERATOR_EVAL_BATCH_SIZE)

    num_classes = NUM_CLASSES

    @property
    def target_metric_higher_is_better(self) -> bool:
        return False

    def split_arrays(self, split: str) -> dict[str, np.ndarray]:
        return load_split(split).arrays()

    def batch_to_device(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return nest_batch({key: self.to_device(value) for key, value in batch.items()})

    @property
    def num_train_examples(self) -> int:
        return len(load_split("train"))

    @property
    def num_eval_train_examples(self) -> int:
        return min(NUM_EVAL_TRAIN_EXAMPLES, self.num_train_examples)

    @property
    def num_validation_examples(self) -> int:
        return len(load_split("validation"))

    @property
    def num_test_examples(self) -> int:
        return len(load_split("test"))

    def summarize_eval(self, totals: dict[str, Any], num_examples: int) -> dict[str, float]:
        return {
            "ctc_loss": totals["ctc_loss_summed"] / max(totals["num_labels"], 1.0),
            "wer": totals["word_errors"] / max(totals["num_words"], 1.0),
        }


class BaseConformerMiniWorkload(BaseSpeechWorkload):
    """librispeech_conformer_mini without a framework: the framework modules add the Conformer, its loss.

    The class attributes are the model switches of AlgoPerf's conformer variants, which both frameworks'
    models read: ``attention_temperature`` multiplies the attention's output (the
    value average, before the output projection, as AlgoPerf's ``attention_temperature`` does in both of
    its frameworks), ``activation`` is the feed-forward and convolution modules' nonlinearity (``swish`` or
    ``gelu``, tanh-approximated in both frameworks), ``post_layer_norm`` is the layer norm ending each block.
    """

    name = "librispeech_conformer_mini"
    base_name = "librispeech_conformer_mini"
    calibration_file = Path(__file__).with_name("calibration.json")
    attention_temperature: float = 1.0
    activation: str = "swish"
    post_layer_norm: bool = True

    def split_arrays(self, split: str) -> dict[str, np.ndarray]:
        return normalized_arrays(split)


# AlgoPerf's conformer variants, as switch mixins the framework modules put before their base workload.
class ConformerAttentionTemperature:
    """AlgoPerf's LibriSpeechConformerAttentionTemperatureWorkload: attention outputs scaled by 1.6."""

    attention_temperature = 1.6


class ConformerNoPostLayerNorm:
    """AlgoPerf's LibriSpeechConformerLayerNormWorkload: no layer norm at the end of each block (the one
    before the head stays)."""

    post_layer_norm = False


class ConformerGelu:
    """AlgoPerf's LibriSpeechConformerGeluWorkload: GELU instead of swish in the feed-forward and
    convolution modules. AlgoPerf's PyTorch convolution module uses exact GELU where its JAX one uses the
    tanh approximation; both use the tanh approximation here, so the frameworks agree."""

    activation = "gelu"
