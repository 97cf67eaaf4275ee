"""Input gates that run before any model: type, emptiness, encoding, length (characters, or emoji). Shared by
training and serving.

Language is checked separately (:mod:`sentiment.language_id`) because the service runs it in its own runner.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sentiment.contract import Prediction, Reason
from sentiment.preprocess import bad_char_ratio, normalize
from sentiment.settings import GateSettings
from sentiment.symbols import emoji_count


class Validated(BaseModel):
    """Text that passed the gates, ready for the model, with what monitoring wants to know about it."""

    text: str
    raw_chars: int
    had_markup: bool = False
    truncated: bool = False


def _decode(raw: Any) -> str | Prediction:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw).decode("utf-8", errors="replace")
    return Prediction.rejected(Reason.invalid_input, f"expected text, got {type(raw).__name__}")


def validate(raw: Any, gates: GateSettings) -> Validated | Prediction:
    """Return the cleaned text, or a ``rejected`` answer saying why. Never raises."""
    decoded = _decode(raw)
    if isinstance(decoded, Prediction):
        return decoded
    if not decoded.strip():
        return Prediction.rejected(Reason.empty, "text is empty or whitespace")
    # Judge encoding on the raw text: normalisation would hide what the pipeline upstream broke.
    ratio = bad_char_ratio(decoded[: gates.max_chars * 4])
    if ratio > gates.max_bad_char_ratio:
        return Prediction.rejected(
            Reason.bad_encoding, f"{ratio:.1%} undecodable or control characters (max {gates.max_bad_char_ratio:.0%})"
        )
    norm = normalize(decoded)
    n = len(norm.text)
    # Emoji carry meaning the character count misses: "👎👎👎" is a whole review.
    if n < gates.min_chars and emoji_count(norm.text) < gates.min_emoji:
        return Prediction.rejected(
            Reason.too_short, f"{n} characters, minimum {gates.min_chars} (or {gates.min_emoji} emoji)"
        )
    truncated = False
    text = norm.text
    if n > gates.max_chars:
        if gates.overlong == "reject":
            return Prediction.rejected(Reason.too_long, f"{n} characters, maximum {gates.max_chars}")
        text, truncated = text[: gates.max_chars], True
    return Validated(text=text, raw_chars=len(decoded), had_markup=norm.had_markup, truncated=truncated)
