"""Out-of-vocabulary rates, the per-prediction signal for training-serving skew (spec F5).

Two measures, because the spec's one rarely moves: WordPiece splits unknown words into known pieces, so
``[UNK]`` appears almost only for characters outside the vocabulary (emoji, rare scripts). The word-level
rate counts words the model never saw in training (or, without a training vocabulary, words the tokenizer
has no whole-word entry for). That one rises when markup leaks, a new product category arrives or slang shifts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-cased alphabetic words; digits and punctuation carry no vocabulary signal."""
    return _WORD.findall(text.lower())


def unk_rate(token_ids: Sequence[int], unk_id: int | None) -> float:
    """Share of ``[UNK]`` among real tokens (special tokens and padding excluded by the caller)."""
    if not token_ids or unk_id is None:
        return 0.0
    return sum(1 for t in token_ids if t == unk_id) / len(token_ids)


def word_oov_rate(text: str, vocab: frozenset[str]) -> float:
    """Share of words not in ``vocab``; 0 for texts with no words."""
    ws = words(text)
    if not ws or not vocab:
        return 0.0
    return sum(1 for w in ws if w not in vocab) / len(ws)


def build_vocab(texts: Iterable[str], min_count: int = 2) -> frozenset[str]:
    """Training vocabulary: words seen at least ``min_count`` times (singletons are mostly typos)."""
    counts: dict[str, int] = {}
    for t in texts:
        for w in words(t):
            counts[w] = counts.get(w, 0) + 1
    return frozenset(w for w, c in counts.items() if c >= min_count)
