"""A synthetic translation task: grammar-generated source sentences and their rule-based translations.

Generator (numpy only; a fixed seed per language and per sentence pool, so every process builds the same
arrays; built once per process and cached):

1. Lexicon: ``DETERMINERS`` determiners, ``ADJECTIVES`` adjectives, ``NOUNS`` nouns, ``VERBS`` verbs and
   ``ADVERBS`` adverbs in the source language (555 words). Each source word has one target word of its own
   (a random one-to-one dictionary); each noun and each determiner has one of ``NUM_CLASSES`` grammatical
   classes (random, balanced), like German's genders. The target language adds one verb-suffix token per
   class.
2. Source grammar (English-like, subject-verb-object)::

       S  -> NP(subject) VERB [NP(object)] [ADVERB]        object with OBJECT_PROB, adverb with ADVERB_PROB
       NP -> DET ADJ{0-2} NOUN                             0, 1 or 2 adjectives with ADJECTIVE_COUNT_PROBS

   Words are drawn uniformly within their category, except that the determiner agrees with its noun: it is
   drawn among the determiners of the noun's class. A sentence is 3-10 words plus EOS.
3. Translation rules (each needs attention to a different part of the source):
   - every word is replaced by its dictionary entry;
   - inside a noun phrase the noun moves before its adjectives: DET' NOUN' ADJ'...;
   - the verb is followed by a suffix token chosen by the class of the *subject* (agreement): the model can
     read it from the subject's determiner or learn it per noun, but must not take the object's;
   - the verb and its suffix move to the end of the sentence (subject-object-verb order):
     ``NP'(subject) [NP'(object)] [ADVERB'] VERB' SUFFIX``, then EOS; 4-11 words plus EOS.
4. Splits: one pool of sentences is drawn, duplicate source sentences are dropped (first one kept), and the
   pool is cut into train, validation and test in order, so no sentence is in two splits.

Token ids are shared by both languages (AlgoPerf's wmt shares one vocabulary and one embedding): 0 is
padding, 1 is EOS, then the source words, the target words and the suffixes. Rows are padded with 0 to
``MAX_LENGTH``; ``weights`` is 1 on the real target tokens (EOS included) and 0 on padding.

The trivial baseline a model must beat is the word-by-word gloss (``gloss``: dictionary mapping without
reordering or agreement), which scores far below the targets; ``translate`` applies the rules to one
sentence by parsing it, independently of the vectorised generator, so the two check each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from pytest_algoperf.data_cache import disk_cached

PAD, EOS = 0, 1
SCALE = 3  # lexicon size multiplier: 3 gives 555 source words (FEASIBILITY.md's "scale 3")
DETERMINERS, ADJECTIVES, NOUNS, VERBS, ADVERBS = 5 * SCALE, 40 * SCALE, 80 * SCALE, 40 * SCALE, 20 * SCALE
CATEGORIES = ("determiner", "adjective", "noun", "verb", "adverb")
CATEGORY_SIZES = (DETERMINERS, ADJECTIVES, NOUNS, VERBS, ADVERBS)
NUM_SOURCE_WORDS = sum(CATEGORY_SIZES)
NUM_CLASSES = 3
SOURCE_START = 2
TARGET_START = SOURCE_START + NUM_SOURCE_WORDS
SUFFIX_START = TARGET_START + NUM_SOURCE_WORDS
VOCAB_SIZE = SUFFIX_START + NUM_CLASSES
MAX_LENGTH = 12  # the longest target: 2 x 4 noun-phrase words + adverb + verb + suffix + EOS

ADJECTIVE_COUNT_PROBS = (0.4, 0.35, 0.25)
OBJECT_PROB = 0.6
ADVERB_PROB = 0.4

LEXICON_SEED = 7
POOL_SEED = 11
SPLIT_SIZES = {"train": 40_000, "validation": 500, "test": 500}
SPLITS = tuple(SPLIT_SIZES)


@dataclass(frozen=True)
class Lexicon:
    """Source word ids per category, the dictionary (source id -> target id), each noun's class and the
    determiners of each class."""

    offsets: dict[str, int]  # first source id of each category
    dictionary: np.ndarray  # indexed by token id; identity outside the source words
    noun_class: np.ndarray  # per noun (index within the category)
    determiners_of_class: np.ndarray  # (NUM_CLASSES, DETERMINERS // NUM_CLASSES) determiner indices

    def category_of(self, token: int) -> str:
        for name, size in zip(CATEGORIES, CATEGORY_SIZES, strict=True):
            if self.offsets[name] <= token < self.offsets[name] + size:
                return name
        raise ValueError(f"token {token} is not a source word")

    def word_class(self, noun_token: int) -> int:
        return int(self.noun_class[noun_token - self.offsets["noun"]])

    def determiner_class(self, determiner_token: int) -> int:
        index = determiner_token - self.offsets["determiner"]
        return int(np.flatnonzero((self.determiners_of_class == index).any(axis=1))[0])

    def suffix(self, noun_token: int) -> int:
        return SUFFIX_START + self.word_class(noun_token)


@cache
def lexicon(seed: int = LEXICON_SEED) -> Lexicon:
    rng = np.random.default_rng(seed)
    starts = SOURCE_START + np.cumsum((0, *CATEGORY_SIZES[:-1]))
    dictionary = np.arange(VOCAB_SIZE, dtype=np.int32)
    dictionary[SOURCE_START:TARGET_START] = TARGET_START + rng.permutation(NUM_SOURCE_WORDS)
    noun_class = rng.permutation(np.arange(NOUNS) % NUM_CLASSES).astype(np.int32)
    determiner_class = rng.permutation(np.arange(DETERMINERS) % NUM_CLASSES)
    determiners_of_class = np.stack([np.flatnonzero(determiner_class == c) for c in range(NUM_CLASSES)])
    offsets = dict(zip(CATEGORIES, starts.tolist(), strict=True))
    return Lexicon(offsets, dictionary, noun_class, determiners_of_class.astype(np.int32))


def _compact(tokens: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Move each row's valid slots to the front (keeping their order) and pad with PAD to MAX_LENGTH."""
    order = np.argsort(~valid, axis=1, kind="stable")
    packed = np.take_along_axis(np.where(valid, tokens, PAD), order, axis=1)
    out = np.full((len(tokens), MAX_LENGTH), PAD, np.int32)
    out[:, : packed.shape[1]] = packed[:, :MAX_LENGTH]
    return out


def generate_pairs(seed: int, count: int, words: Lexicon | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (source, target) pairs as padded int32 arrays, vectorised over sentences."""
    words = words or lexicon()
    rng = np.random.default_rng(seed)
    ones = np.ones(count, bool)

    def draw(category: str, shape: tuple[int, ...] = ()) -> np.ndarray:
        size = CATEGORY_SIZES[CATEGORIES.index(category)]
        return words.offsets[category] + rng.integers(0, size, (count, *shape), dtype=np.int32)

    def noun_phrase(present: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        adjectives, noun = draw("adjective", (2,)), draw("noun")
        choices = words.determiners_of_class[words.noun_class[noun - words.offsets["noun"]]]
        det = (
            words.offsets["determiner"] + choices[np.arange(count), rng.integers(0, choices.shape[1], count)]
        )
        num_adjectives = rng.choice(3, count, p=ADJECTIVE_COUNT_PROBS)
        tokens = [det, adjectives[:, 0], adjectives[:, 1], noun]
        valid = [present, present & (num_adjectives > 0), present & (num_adjectives > 1), present]
        return tokens, valid

    subject, subject_valid = noun_phrase(ones)
    verb = draw("verb")
    obj, obj_valid = noun_phrase(rng.random(count) < OBJECT_PROB)
    adverb, has_adverb = draw("adverb"), rng.random(count) < ADVERB_PROB
    eos = np.full(count, EOS, np.int32)

    source = _compact(
        np.stack([*subject, verb, *obj, adverb, eos], axis=1),
        np.stack([*subject_valid, ones, *obj_valid, has_adverb, ones], axis=1),
    )

    def noun_first(tokens: list[np.ndarray], valid: list[np.ndarray]) -> tuple[list, list]:
        det, adjective_1, adjective_2, noun = tokens
        det_v, adjective_1_v, adjective_2_v, noun_v = valid
        return [det, noun, adjective_1, adjective_2], [det_v, noun_v, adjective_1_v, adjective_2_v]

    suffix = SUFFIX_START + words.noun_class[subject[3] - words.offsets["noun"]]
    subject_t, subject_t_valid = noun_first(subject, subject_valid)
    obj_t, obj_t_valid = noun_first(obj, obj_valid)
    target_slots = np.stack([*subject_t, *obj_t, adverb, verb], axis=1)
    target = _compact(
        np.concatenate([words.dictionary[target_slots], np.stack([suffix, eos], axis=1)], axis=1),
        np.stack([*subject_t_valid, *obj_t_valid, has_adverb, ones, ones, ones], axis=1),
    )
    return source, target


@dataclass(frozen=True)
class TranslationSplit:
    inputs: np.ndarray  # (n, MAX_LENGTH) int32 source tokens, EOS-terminated, 0-padded
    targets: np.ndarray  # (n, MAX_LENGTH) int32 target tokens, EOS-terminated, 0-padded

    def __len__(self) -> int:
        return len(self.inputs)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "inputs": self.inputs,
            "targets": self.targets,
            "weights": (self.targets != PAD).astype(np.float32),
        }


def generate_splits(seed: int, sizes: dict[str, int]) -> dict[str, TranslationSplit]:
    """Disjoint splits cut in order from one deduplicated pool of sentences."""
    total = sum(sizes.values())
    source, target = generate_pairs(seed, int(total * 1.2) + 100)
    _, first = np.unique(source, axis=0, return_index=True)
    keep = np.sort(first)
    if len(keep) < total:
        raise ValueError(f"only {len(keep)} distinct sentences for {total}: the grammar is too small")
    splits, start = {}, 0
    for name, size in sizes.items():
        index = keep[start : start + size]
        splits[name] = TranslationSplit(source[index], target[index])
        start += size
    return splits


@cache
@disk_cached(version=1)
def load_splits() -> dict[str, TranslationSplit]:
    return generate_splits(POOL_SEED, SPLIT_SIZES)


def load_split(split: str) -> TranslationSplit:
    return load_splits()[split]


def strip(tokens: np.ndarray) -> list[int]:
    """The tokens before the first EOS (or PAD): a decoded or reference sentence without its padding."""
    out = []
    for token in tokens.tolist():
        if token in (EOS, PAD):
            break
        out.append(token)
    return out


def translate(sentence: list[int], words: Lexicon | None = None) -> list[int]:
    """The reference translation of one source sentence (no EOS), by parsing it with the grammar."""
    words = words or lexicon()
    phrases: list[list[int]] = []
    verb, adverb = None, []
    current: list[int] = []
    for token in sentence:
        category = words.category_of(token)
        if category == "verb":
            verb = token
        elif category == "adverb":
            adverb = [token]
        else:
            current.append(token)
            if category == "noun":
                phrases.append(current)
                current = []
    agree = all(words.determiner_class(p[0]) == words.word_class(p[-1]) for p in phrases)
    if verb is None or not phrases or current or not agree:
        raise ValueError(f"not a sentence of the grammar: {sentence}")
    out = []
    for det, *adjectives, noun in phrases:
        out += [det, noun, *adjectives]
    out = [int(words.dictionary[t]) for t in [*out, *adverb, verb]]
    return [*out, words.suffix(phrases[0][-1])]


def gloss(sentence: list[int], words: Lexicon | None = None) -> list[int]:
    """The word-by-word baseline: dictionary mapping only, in source order, without the suffix."""
    words = words or lexicon()
    return [int(words.dictionary[t]) for t in sentence]
