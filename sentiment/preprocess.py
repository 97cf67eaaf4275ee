"""One preprocessing function shared by training and serving, so the model never sees text it was not trained on.

Markup and entities (``&amp;``, ``<br/>``) are normalised away and the fact is reported, because leaking markup
is the classic training-serving skew (spec F5) and monitoring wants to see it happen.
"""

from __future__ import annotations

import html
import re
import unicodedata

from pydantic import BaseModel

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]{0,200}?/?\s*>")
_ENTITY = re.compile(r"&(#\d{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")
_SPACE = re.compile(r"\s+")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)


class Normalized(BaseModel):
    """Clean text plus what was done to it, for monitoring."""

    text: str
    had_markup: bool = False
    changed: bool = False


def bad_char_ratio(text: str) -> float:
    """Share of characters that signal broken encoding: U+FFFD, lone surrogates, control and private-use chars."""
    if not text:
        return 0.0
    bad = 0
    for ch in text:
        if ch == "\ufffd":
            bad += 1
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cs", "Co") or (cat == "Cc" and ch not in "\t\n\r"):
            bad += 1
    return bad / len(text)


def strip_markup(text: str) -> tuple[str, int]:
    """``text`` with tags and entities blanked out, and how many there were (the drift detector counts them as
    out-of-vocabulary: markup leaking into a feed is the skew it must see)."""
    if "<" not in text and "&" not in text:
        return text, 0
    n = len(_TAG.findall(text)) + len(_ENTITY.findall(text))
    return (_ENTITY.sub(" ", _TAG.sub(" ", text)), n) if n else (text, 0)


def normalize(text: str) -> Normalized:
    """Unescape entities, drop tags, strip zero-width chars, NFC, collapse whitespace."""
    had_markup = bool(_ENTITY.search(text) or _TAG.search(text))
    out = text
    if had_markup:
        # Twice: feeds that escape already-escaped text produce "&amp;amp;".
        out = html.unescape(html.unescape(out))
        out = _TAG.sub(" ", out)
    out = unicodedata.normalize("NFC", out.translate(_ZERO_WIDTH))
    out = _SPACE.sub(" ", out).strip()
    return Normalized(text=out, had_markup=had_markup, changed=out != text)
