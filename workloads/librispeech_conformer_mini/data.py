"""Synthetic utterances for the speech workloads (librispeech_conformer_mini, librispeech_deepspeech_mini).

AlgoPerf's librispeech workloads map audio features to characters with a CTC loss and score the word error
rate. This generator makes utterances with the same structure, small enough to learn on one CPU thread, in
numpy only, from fixed seeds (the same seed gives identical arrays):

1. Transcript: ``MIN_WORDS``-``MAX_WORDS`` words drawn uniformly (with replacement) from ``LEXICON``, 50
   words of 3-6 letters, joined by single spaces. No word has a doubled letter and spaces never touch, so
   no transcript repeats a character twice in a row: CTC then needs no blank between two labels, and an
   utterance of ``L`` characters fits any model whose output has at least ``L`` frames (see
   ``MIN_CHAR_FRAMES``).
2. Characters: ``NUM_CLASSES`` = 28 classes, blank 0, ``a``-``z`` 1-26, space 27. Every character but the
   blank (space included) has a spectral template over ``NUM_BINS`` = 32 bins: the sum of two Gaussian
   bumps at random bins, widths and heights, no two with a cosine similarity above 0.8 (``templates``,
   fixed by ``TEMPLATE_SEED``). A character lasts ``MIN_CHAR_FRAMES``-``MAX_CHAR_FRAMES`` frames (uniform
   per character occurrence) and each of its frames is its template. The template heights set the
   difficulty: a least-squares fit of the best template, shift and loudness to a character's mean frame
   misreads it 8% of the time from 1 frame, 2% from 2 and 0.6% from 3, so a model must pool frames and
   use the lexicon to reach a low WER.
3. Silence: 0-``MAX_SILENCE_FRAMES`` frames of silence (zeros) before and after the speech.
4. Speaker and channel, per utterance: the whole spectrum shifts by -1, 0 or +1 bins (zero-filled at the
   edge), is scaled by a loudness in ``LOUDNESS`` and gets white Gaussian noise (silence included) of
   standard deviation ``NOISE`` x U(0.5, 1.5).
5. Padding: every utterance is padded with zero frames to ``MAX_FRAMES`` = 116 frames (27 characters x 4
   frames + 2 x 4 silent frames) and its transcript with zeros to ``MAX_TARGET_LENGTH`` = 27 labels; the
   paddings arrays are 1.0 where an entry is padding and 0.0 where it is real, as AlgoPerf's
   ``input_paddings`` and ``target_paddings``.

Splits: ``train``, ``validation`` and ``test`` come from different seeds, and each transcript belongs to one
split only (by a CRC32 hash of its text, ``transcript_split``; a drawn transcript of another split is
redrawn), so validation and test measure recognition of word sequences never heard in training, and no
utterance repeats across splits.

The arrays are generated once per process (``load_split``, ~1 s of CPU for all three), outside the
benchmark clock.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np

from pytest_algoperf.data_cache import disk_cached

LETTERS = "abcdefghijklmnopqrstuvwxyz"
BLANK = 0
SPACE = 27
NUM_CLASSES = 28  # blank, a-z, space
VOCABULARY = ("<blank>", *LETTERS, " ")  # label id -> character

LEXICON = (
    "quiz", "jump", "fox", "vex", "wharf", "black", "dog", "river", "yard", "kite",
    "zebra", "jacket", "oxygen", "quick", "brown", "lazy", "night", "plant", "stone", "water",
    "house", "garden", "music", "cloud", "forest", "silver", "mango", "pilot", "tiger", "window",
    "yolk", "frozen", "sky", "rain", "metal", "bridge", "candle", "whale", "ocean", "paper",
    "velvet", "hymn", "jewel", "glove", "prism", "torch", "lemon", "sand", "wolf", "crane",
)  # fmt: skip
MIN_WORDS, MAX_WORDS = 2, 4
MAX_WORD_LETTERS = 6

NUM_BINS = 32
MIN_CHAR_FRAMES, MAX_CHAR_FRAMES = 2, 4
MAX_SILENCE_FRAMES = 4
MAX_SHIFT = 1  # bins
LOUDNESS = (0.6, 1.4)
NOISE = 0.5
MAX_TARGET_LENGTH = MAX_WORDS * MAX_WORD_LETTERS + MAX_WORDS - 1  # 27
MAX_FRAMES = MAX_TARGET_LENGTH * MAX_CHAR_FRAMES + 2 * MAX_SILENCE_FRAMES  # 116

TEMPLATE_SEED = 7
MAX_TEMPLATE_COSINE = 0.8
TEMPLATE_HEIGHTS = (1.0, 2.0)
SPLIT_SEEDS = {"train": 1, "validation": 2, "test": 3}
SPLIT_SIZES = {"train": 5000, "validation": 500, "test": 500}
# Share of the transcript hash space each split owns: a transcript's split is fixed by its text.
SPLIT_SHARES = {"train": 0.8, "validation": 0.1, "test": 0.1}


def text_to_ids(text: str) -> np.ndarray:
    """Label ids (int32) of a transcript: ``a``-``z`` -> 1-26, space -> 27."""
    return np.array([SPACE if c == " " else LETTERS.index(c) + 1 for c in text], np.int32)


def ids_to_text(ids: np.ndarray | list[int]) -> str:
    """The transcript of label ids; blanks (0) are dropped."""
    return "".join(VOCABULARY[int(i)] for i in ids if int(i) != BLANK)


@lru_cache(maxsize=1)
def templates() -> np.ndarray:
    """``(NUM_CLASSES, NUM_BINS)`` float32 spectral templates; row 0 (blank) is zero and never rendered.

    Two Gaussian bumps per character (centre uniform over the bins, width 1-3 bins, height 1-2),
    redrawn while its cosine similarity with an earlier character's exceeds ``MAX_TEMPLATE_COSINE``: the
    characters share bins but none is a near copy of another."""
    rng = np.random.default_rng(TEMPLATE_SEED)
    bins = np.arange(NUM_BINS)
    table = np.zeros((NUM_CLASSES, NUM_BINS))
    for label in range(1, NUM_CLASSES):
        while True:
            row = np.zeros(NUM_BINS)
            for _ in range(2):
                centre, width = rng.uniform(0, NUM_BINS - 1), rng.uniform(1, 3)
                height = rng.uniform(*TEMPLATE_HEIGHTS)
                row += height * np.exp(-0.5 * ((bins - centre) / width) ** 2)
            unit = row / np.linalg.norm(row)
            earlier = table[1:label] / np.linalg.norm(table[1:label], axis=1, keepdims=True)
            if label == 1 or (earlier @ unit).max() <= MAX_TEMPLATE_COSINE:
                break
        table[label] = row
    return table.astype(np.float32)


def shift_bins(spectra: np.ndarray, shift: int) -> np.ndarray:
    """Move spectra (last axis) up by ``shift`` bins (down if negative), filling the edge with zeros."""
    out = np.zeros_like(spectra)
    if shift >= 0:
        out[..., shift:] = spectra[..., : spectra.shape[-1] - shift]
    else:
        out[..., :shift] = spectra[..., -shift:]
    return out


def transcript_split(text: str) -> str:
    """The split that owns transcript ``text`` (CRC32 of the text, so stable across processes)."""
    share = zlib.crc32(text.encode()) / 2**32
    for name, bound in zip(SPLIT_SHARES, np.cumsum(list(SPLIT_SHARES.values())), strict=True):
        if share < bound:
            return name
    return name


@dataclass(frozen=True)
class SpeechSplit:
    """Padded utterances; every array's first axis is the utterance."""

    inputs: np.ndarray  # (N, MAX_FRAMES, NUM_BINS) float32, zero at padding frames
    input_paddings: np.ndarray  # (N, MAX_FRAMES) float32, 1.0 at padding frames
    targets: np.ndarray  # (N, MAX_TARGET_LENGTH) int32 label ids, 0 at padding
    target_paddings: np.ndarray  # (N, MAX_TARGET_LENGTH) float32, 1.0 at padding
    transcripts: tuple[str, ...]  # the text of each utterance, for tests and decoding checks

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays a batch is sliced from, keyed as AlgoPerf's librispeech names them."""
        names = ("inputs", "input_paddings", "targets", "target_paddings")
        return {name: getattr(self, name) for name in names}

    def __len__(self) -> int:
        return len(self.transcripts)


def draw_transcript(rng: np.random.Generator) -> str:
    count = int(rng.integers(MIN_WORDS, MAX_WORDS + 1))
    return " ".join(LEXICON[i] for i in rng.integers(0, len(LEXICON), count))


def render(ids: np.ndarray, rng: np.random.Generator, noise: float = NOISE) -> np.ndarray:
    """The ``(frames, NUM_BINS)`` float32 spectrogram of one utterance of label ids (steps 2-4 above)."""
    durations = rng.integers(MIN_CHAR_FRAMES, MAX_CHAR_FRAMES + 1, len(ids))
    lead, tail = rng.integers(0, MAX_SILENCE_FRAMES + 1, 2)
    shift = int(rng.integers(-MAX_SHIFT, MAX_SHIFT + 1))
    loudness = rng.uniform(*LOUDNESS)
    noise_std = noise * rng.uniform(0.5, 1.5)
    speech = shift_bins(templates(), shift)[np.repeat(ids, durations)]
    frames = np.concatenate([np.zeros((lead, NUM_BINS)), loudness * speech, np.zeros((tail, NUM_BINS))])
    return (frames + noise_std * rng.standard_normal(frames.shape)).astype(np.float32)


def generate_split(name: str, size: int, seed: int, noise: float = NOISE) -> SpeechSplit:
    """``size`` utterances of split ``name`` (its transcripts only) from ``seed``."""
    rng = np.random.default_rng(seed)
    inputs = np.zeros((size, MAX_FRAMES, NUM_BINS), np.float32)
    input_paddings = np.ones((size, MAX_FRAMES), np.float32)
    targets = np.zeros((size, MAX_TARGET_LENGTH), np.int32)
    target_paddings = np.ones((size, MAX_TARGET_LENGTH), np.float32)
    transcripts = []
    for row in range(size):
        text = draw_transcript(rng)
        while transcript_split(text) != name:
            text = draw_transcript(rng)
        ids = text_to_ids(text)
        frames = render(ids, rng, noise)
        inputs[row, : len(frames)] = frames
        input_paddings[row, : len(frames)] = 0.0
        targets[row, : len(ids)] = ids
        target_paddings[row, : len(ids)] = 0.0
        transcripts.append(text)
    return SpeechSplit(inputs, input_paddings, targets, target_paddings, tuple(transcripts))


@lru_cache(maxsize=2 * len(SPLIT_SEEDS))
@disk_cached(version=1)
def load_split(name: str, noise: float = NOISE) -> SpeechSplit:
    """Split ``name`` (``train``, ``validation`` or ``test``), generated once per process and cached."""
    return generate_split(name, SPLIT_SIZES[name], SPLIT_SEEDS[name], noise)


T = TypeVar("T")


def nest_batch(batch: Mapping[str, T]) -> dict[str, tuple[T, T]]:
    """AlgoPerf's librispeech batch layout from flat arrays (numpy, tensors or JAX arrays alike):
    ``{'inputs': (inputs, input_paddings), 'targets': (targets, target_paddings)}``. A submission passes
    ``batch['targets']`` to ``loss_fn`` as the label batch, so the paddings travel with the labels."""
    return {
        "inputs": (batch["inputs"], batch["input_paddings"]),
        "targets": (batch["targets"], batch["target_paddings"]),
    }
