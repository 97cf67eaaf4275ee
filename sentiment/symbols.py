"""Emoji in review text: found by Unicode block and category, with no table to keep up to date.

The tokenizer of tier 1 reads every emoji as ``[UNK]``, so the gates must know which texts carry their meaning in
emoji (answered by the rules' emoji lexicon, :mod:`fallback.emoji_lexicon`) rather than in words.
"""

from __future__ import annotations

import unicodedata

# Pictographs, dingbats and the symbol blocks emoji live in; "So" (other symbol) keeps arrows, maths and box drawing
# in those blocks out.
_EMOJI_BLOCKS = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x2300, 0x23FF))
# The same blocks as a regex character class, for tokenizers that keep each emoji as a token of its own.
EMOJI_CHAR_CLASS = "[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _EMOJI_BLOCKS) + "]"


def is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _EMOJI_BLOCKS) and unicodedata.category(ch) == "So"


def emoji_count(text: str) -> int:
    return sum(1 for ch in text if is_emoji(ch))


def has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)
