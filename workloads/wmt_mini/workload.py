"""The framework-neutral part of wmt_mini: sizes, data, targets, budget, the loss reference and BLEU in numpy.

AlgoPerf's wmt trains an encoder-decoder Transformer (Flax's WMT example) on WMT17 de-en and scores the
BLEU of beam-searched translations. This analog keeps the model family at CPU size (see ``data.py`` for the
synthetic language pair):

- one embedding table shared by source and target tokens, which is also the output projection (logits are
  the decoder's final states times the embedding matrix, divided by sqrt(width), as AlgoPerf does);
- fixed sinusoidal position embeddings (AlgoPerf's default, ``posemb_init=None``: no position parameters);
- ``NUM_LAYERS`` pre-layernorm encoder blocks (self-attention, ReLU MLP) and decoder blocks (causal
  self-attention, encoder-decoder attention, ReLU MLP), a final layernorm on each side; attention
  projections without biases, Xavier-uniform kernels, N(0, 1e-6) MLP biases, N(0, 1) embeddings;
- padding masks from token id 0 on both sides, a causal mask in the decoder, teacher forcing on the targets
  shifted right by one (the first decoder input is 0);
- ``dropout_rate`` is a ``model_fn`` argument (None: ``DEFAULT_DROPOUT_RATE``, AlgoPerf's 0.1), applied to
  the embeddings, the attention weights, each residual branch and the MLP hidden layer;
- softmax cross-entropy over the shared vocabulary with optax-style label smoothing, weighted by the
  target padding mask (``n_valid_examples`` counts target tokens, as AlgoPerf's wmt does).

Deviations at this scale: the MLP is 4x the width (AlgoPerf's wmt uses 1x at width 1024); evaluation decodes
greedily instead of with beam search (the task has one right answer), for ``MAX_LENGTH`` positions.

Metrics per split (the ``train`` subset, validation, test): ``loss`` (teacher-forced cross-entropy per target
token, no smoothing), ``accuracy`` (teacher-forced next-token accuracy) and ``bleu``, sacrebleu's corpus BLEU
of the greedy translations against the references, on token ids (``tokenize="none"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu
from sacrebleu.metrics.bleu import BLEU, MAX_NGRAM_ORDER

from algoperf_workloads.wmt_mini import data
from pytest_algoperf.array_workload import ArrayWorkload, eval_batch_for
from pytest_algoperf.spec import LossType

WIDTH = 64
NUM_HEADS = 4
MLP_DIM = 256
NUM_LAYERS = 2
MAX_LENGTH = data.MAX_LENGTH
VOCAB_SIZE = data.VOCAB_SIZE
DEFAULT_DROPOUT_RATE = 0.1  # AlgoPerf's wmt default when the submission passes dropout_rate=None
LAYER_NORM_EPSILON = 1e-6  # Flax's default; PyTorch's layers are given it explicitly
BIAS_INIT_STDDEV = 1e-6  # AlgoPerf's wmt bias_init
NUM_EVAL_TRAIN_EXAMPLES = 125  # a quarter of validation (README, "Where we deviate": eval-train subsets)
# Divides every eval split (one jitted shape in JAX); on one CPU thread JAX decodes batches of 100-125 ~25%
# faster than 500, PyTorch ~10% slower (its decoding loop runs in Python per position).
EVAL_BATCH_SIZE = 125
ACCELERATOR_EVAL_BATCH_SIZE = 500  # on a GPU: the earlier size, fewer launches


@dataclass(frozen=True)
class TransformerSwitches:
    """The model switches of AlgoPerf's wmt variants, read by both frameworks' Transformers.

    - ``pre_layer_norm``: layer norm before each attention and MLP branch and at the end of each stack
      (AlgoPerf's ``pre_ln``); False puts it after each residual sum instead and drops the stacks' final
      layer norms, as AlgoPerf's post-LN Transformer does.
    - ``attention_temperature``: multiplies the queries (AlgoPerf's ``attention_temp``, which scales the
      query input of its bias-free query projection), so the attention logits are multiplied by it.
    - ``activation`` of the MLP hidden layer (``relu`` or ``tanh``); ``glu`` multiplies it by a second
      Dense projection of the MLP input (``mlp_gate``, as wide as ``mlp_in``; AlgoPerf's ``glu``).
    """

    pre_layer_norm: bool = True
    attention_temperature: float = 1.0
    activation: str = "relu"
    glu: bool = False


def sinusoidal_positions(length: int = MAX_LENGTH, width: int = WIDTH) -> np.ndarray:
    """AlgoPerf's ``sinusoidal_init`` table, ``(length, width)``: sines in the first half of the features,
    cosines in the second, timescales from 1 to 10,000."""
    position = np.arange(length)[:, None]
    scale = -np.log(10_000.0) / (width // 2 - 1)
    frequencies = np.exp(np.arange(width // 2) * scale)
    table = np.zeros((length, width), np.float32)
    table[:, : width // 2] = np.sin(position * frequencies)
    table[:, width // 2 : 2 * (width // 2)] = np.cos(position * frequencies)
    return table


def cross_entropy(
    logits: np.ndarray, targets: np.ndarray, weights: np.ndarray, label_smoothing: float = 0.0
) -> np.ndarray:
    """Per-token loss, zero where ``weights`` is 0: the numpy reference of both frameworks' ``loss_fn``.

    Targets are smoothed as ``optax.smooth_labels`` does (AlgoPerf's wmt): ``(1 - s) * one_hot + s / V``.
    """
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    vocab = logits.shape[-1]
    picked = np.take_along_axis(log_probs, targets[..., None].astype(np.int64), axis=-1)[..., 0]
    losses = -(1.0 - label_smoothing) * picked - label_smoothing / vocab * log_probs.sum(axis=-1)
    return np.where(weights > 0, losses, 0.0)


def corpus_bleu(hypotheses: list[list[int]], references: list[list[int]]) -> float:
    """sacrebleu's corpus BLEU (0-100) of token-id sentences, one reference each, no re-tokenisation."""

    def text(sentence: list[int]) -> str:
        return " ".join(map(str, sentence))

    score = sacrebleu.corpus_bleu(
        [text(h) for h in hypotheses], [[text(r) for r in references]], tokenize="none"
    )
    return float(score.score)


def sentence_lengths(tokens: np.ndarray) -> np.ndarray:
    """Per row of ``(n, length)`` tokens, the number before the first EOS or PAD (``data.strip``'s)."""
    ends = (tokens == data.EOS) | (tokens == data.PAD)
    return np.where(ends.any(axis=1), ends.argmax(axis=1), tokens.shape[1])


def _ngram_keys(tokens: np.ndarray, lengths: np.ndarray, order: int) -> np.ndarray:
    """One integer per n-gram of each row's first ``lengths`` tokens: the row and the n tokens as digits in
    base ``VOCAB_SIZE`` (exact: 500 rows and 4-grams of 1,100 ids need 50 bits)."""
    rows, width = tokens.shape
    count = max(width - order + 1, 0)
    keys = np.repeat(np.arange(rows, dtype=np.int64)[:, None], count, axis=1)
    for offset in range(order):
        keys = keys * VOCAB_SIZE + tokens[:, offset : offset + count]
    return keys[np.arange(count) <= lengths[:, None] - order]


def corpus_bleu_of_tokens(hypotheses: np.ndarray, references: np.ndarray) -> float:
    """``corpus_bleu`` of ``(n, length)`` token arrays, each row cut at its first EOS or PAD: the n-gram
    statistics counted with numpy (a tenth of sacrebleu's time on strings), the score from them by
    sacrebleu's own formula (``BLEU.compute_bleu``, exponential smoothing as ``corpus_bleu``)."""
    hypotheses, references = np.asarray(hypotheses, np.int64), np.asarray(references, np.int64)
    hypothesis_lengths, reference_lengths = sentence_lengths(hypotheses), sentence_lengths(references)
    correct, total = [], []
    for order in range(1, MAX_NGRAM_ORDER + 1):
        found, found_counts = np.unique(
            _ngram_keys(hypotheses, hypothesis_lengths, order), return_counts=True
        )
        wanted, wanted_counts = np.unique(
            _ngram_keys(references, reference_lengths, order), return_counts=True
        )
        _, in_found, in_wanted = np.intersect1d(found, wanted, assume_unique=True, return_indices=True)
        correct.append(int(np.minimum(found_counts[in_found], wanted_counts[in_wanted]).sum()))
        total.append(int(found_counts.sum()))
    score = BLEU.compute_bleu(
        correct, total, int(hypothesis_lengths.sum()), int(reference_lengths.sum()), smooth_method="exp"
    )
    return float(score.score)


class BaseWmtMiniWorkload(ArrayWorkload):
    """wmt_mini without a framework: the framework modules add the Transformer, its loss and
    ``eval_batch``, which returns per-batch sums and the greedy translations as numpy arrays."""

    name = "wmt_mini"
    base_name = "wmt_mini"
    calibration_file = Path(__file__).with_name("calibration.json")
    target_metric_name = "bleu"
    loss_type = LossType.SOFTMAX_CROSS_ENTROPY

    @property
    def eval_batch_size(self) -> int:
        return eval_batch_for(self.device, EVAL_BATCH_SIZE, ACCELERATOR_EVAL_BATCH_SIZE)

    vocab_size = VOCAB_SIZE
    switches = TransformerSwitches()  # the variants change these

    def split(self, split: str) -> data.TranslationSplit:
        return data.load_split(split)

    def split_arrays(self, split: str) -> dict[str, np.ndarray]:
        return self.split(split).arrays()

    @property
    def num_train_examples(self) -> int:
        return len(self.split("train"))

    @property
    def num_eval_train_examples(self) -> int:
        return min(NUM_EVAL_TRAIN_EXAMPLES, self.num_train_examples)

    @property
    def num_validation_examples(self) -> int:
        return len(self.split("validation"))

    @property
    def num_test_examples(self) -> int:
        return len(self.split("test"))

    def summarize_eval(self, totals: dict[str, Any], num_examples: int) -> dict[str, float]:
        hypotheses, references = totals["hypotheses"], totals["references"]
        if len(hypotheses) != num_examples:
            raise AssertionError(f"eval translated {len(hypotheses)} sentences, expected {num_examples}")
        tokens = max(totals["tokens"], 1.0)
        return {
            "loss": totals["loss"] / tokens,
            "accuracy": totals["correct"] / tokens,
            "bleu": corpus_bleu_of_tokens(hypotheses, references),
        }


# AlgoPerf's wmt variants, as switch mixins the framework modules put before their base workload.
class WmtPostLayerNorm:
    """AlgoPerf's WmtWorkloadPostLN: post-layernorm blocks."""

    switches = TransformerSwitches(pre_layer_norm=False)


class WmtAttentionTemperature:
    """AlgoPerf's WmtWorkloadAttentionTemp: queries (so attention logits) multiplied by 4.0."""

    switches = TransformerSwitches(attention_temperature=4.0)


class WmtGluTanh:
    """AlgoPerf's WmtWorkloadGLUTanH: a gated (GLU) MLP with tanh."""

    switches = TransformerSwitches(activation="tanh", glu=True)
