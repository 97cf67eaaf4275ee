"""Per-record features the signals compare: word-level OOV, gate outcome, model confidence, and the vocabulary.

OOV is word level (see :mod:`sentiment.oov` for why the spec's [UNK] rate barely moves), measured on the text as
it arrives, before normalisation: the detector's job is to see what upstream delivers. Markup fragments
(``<br/>``, ``&quot;``) count as out-of-vocabulary tokens, because tag and attribute names are ordinary English
words (``div``, ``class``, ``span``) and would otherwise hide a parser that stopped stripping HTML (spec F5).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from enum import IntEnum

import numpy as np

from sentiment.contract import LABELS
from sentiment.oov import words
from sentiment.preprocess import strip_markup  # the very patterns serving strips
from sentiment.settings import Settings

LABEL_CODES: dict[str, int] = {name: i for i, name in enumerate(LABELS)}


class GateCode(IntEnum):
    unknown = -1
    passed = 0
    rejected = 1  # failed validation: empty, too short/long, bad encoding, not text
    non_english = 2


def oov_rate(text: str, vocab: frozenset[str]) -> tuple[float, bool]:
    """(share of words and markup tokens not in ``vocab``, whether markup was seen); NaN when there is nothing."""
    text, n_markup = strip_markup(text)
    ws = words(text)
    total = len(ws) + n_markup
    if not total:
        return math.nan, False
    known = sum(map(vocab.__contains__, ws))
    return (total - known) / total, n_markup > 0


@functools.cache
def tokenizer_words(model_path: str) -> frozenset[str]:
    """Whole-word entries of a tokenizer's vocabulary: the fallback vocabulary when no trained model is given."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    return frozenset(t for t in tok.get_vocab() if t.isalpha())


def load_vocab(settings: Settings, model_tag: str | None) -> tuple[frozenset[str], str]:
    """The trained model's training vocabulary if ``model_tag`` resolves, else the base tokenizer's words.

    Never the reference window's own words: that would pin the reference OOV at 0 and call any new text drift.
    """
    if model_tag:
        from sentiment.model.registry import read_vocab, resolve

        path, _, full_tag = resolve(model_tag)
        vocab = read_vocab(path)
        if vocab:
            return vocab, f"training vocabulary of {full_tag} ({len(vocab):,} words)"
        return tokenizer_words(str(path)), f"tokenizer words of {full_tag}"
    base = settings.drift.embedding_model
    vocab = tokenizer_words(base)
    return vocab, f"whole-word entries of the base tokenizer ({len(vocab):,} words)"


def gate_codes(texts: Sequence[str], settings: Settings, progress: bool = False) -> np.ndarray:
    """Run the service's own input gates on each text: validation, then the language gate."""
    from tqdm import tqdm

    from sentiment.language_id import detect_language
    from sentiment.validation import Validated, validate

    g = settings.gates
    out = np.empty(len(texts), dtype=np.int8)
    for i, text in enumerate(tqdm(texts, desc="input gates", unit=" text", disable=not progress)):
        v = validate(text, g)
        if not isinstance(v, Validated):
            out[i] = GateCode.rejected
            continue
        lang = detect_language(v.text, g)
        out[i] = GateCode.passed if lang.accepted else GateCode.non_english
    return out


def unk_rate_mean(texts: Sequence[str], model_path: str, max_length: int) -> float:
    """The spec's [UNK]-token rate on a text sample, reported next to the word-level rate for comparison."""
    from transformers import AutoTokenizer

    from sentiment.oov import unk_rate

    if not texts:
        return math.nan
    tok = AutoTokenizer.from_pretrained(model_path)
    enc = tok(list(texts), truncation=True, max_length=max_length, add_special_tokens=False)
    return float(np.mean([unk_rate(ids, tok.unk_token_id) for ids in enc["input_ids"]]))


def score_low_confidence(texts: Sequence[str], model_tag: str, settings: Settings) -> np.ndarray:
    """Score a text sample with a stored model: 1 where its top-class confidence is under the gate."""
    from sentiment.model.inference import SentimentModel
    from sentiment.preprocess import normalize

    model = SentimentModel.from_store(model_tag, num_threads=settings.model.scoring_threads or 2)
    probs = model.predict([normalize(t).text for t in texts], batch_size=settings.model.inference_batch_size)
    return (probs.max(axis=1) < settings.gates.confidence_gate).astype(np.int8)
