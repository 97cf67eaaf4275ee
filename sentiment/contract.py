"""The four-field answer every review gets, and the stable reason codes a client can switch on.

``reason`` is ``""`` for ``ok``; otherwise ``"<code>: <detail>"`` where ``<code>`` is a :class:`Reason`
value (stable, documented in the README) and the detail is for humans. ``Prediction.reason_code`` parses it.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")


class Label(StrEnum):
    negative = "negative"
    neutral = "neutral"
    positive = "positive"


class Status(StrEnum):
    ok = "ok"
    fallback = "fallback"
    rejected = "rejected"


class Reason(StrEnum):
    # rejected: the input failed validation; label is null and confidence 0.
    invalid_input = "invalid_input"
    empty = "empty"
    too_short = "too_short"
    too_long = "too_long"
    bad_encoding = "bad_encoding"
    not_english = "not_english"
    # not language at all: keyboard mashing, random letters, repeated characters, punctuation only.
    not_language = "not_language"
    # fallback answered by the keyword rules (tier 2): why tier 1 did not answer.
    low_confidence = "low_confidence"
    neutral_band = "neutral_band"
    resource_pressure = "resource_pressure"
    model_unavailable = "model_unavailable"
    model_error = "model_error"
    # tier 1 was confident, but the keyword rules read at least as much of the opposite polarity (sarcasm, a
    # complaint after praise): the rules answered, or a person (GateSettings.rules_veto).
    rules_disagree = "rules_disagree"
    # tier 1 was confident, but read one clause of the text confidently the other way ("Great sound, but it broke
    # in a week"; "Wow, what a fantastic kettle, it leaked everywhere"): the rules answered, or a person
    # (GateSettings.clause_check, fallback.clauses).
    mixed_sentiment = "mixed_sentiment"
    # the text has no words, only emoji, which tier 1 reads as unknown tokens: the rules' emoji lexicon answered.
    no_words = "no_words"
    # tier 1 could not answer inside the request's latency budget (its queue was predicted too long, or the call ran
    # out of time): the rules answered instead of the caller waiting.
    overload = "overload"
    # fallback that neither tier could decide: queued for a human (tier 3), label null.
    human_review = "human_review"
    # fallback after an unexpected fault in the chain itself (a bug): label null; the log has the traceback.
    internal_error = "internal_error"


_PATH = re.compile(r"(?<![\w.:/])(?:[A-Za-z]:)?[/\\](?:[\w.+@~-]+[/\\])+([\w.+@~-]*)")


def redact_paths(text: str) -> str:
    """Details go to clients: a file path of the serving machine (from an exception, a model location) keeps only
    its last component."""
    return _PATH.sub(lambda m: f"…/{m.group(1)}", text)


REJECTED_REASONS = frozenset(
    {
        Reason.invalid_input,
        Reason.empty,
        Reason.too_short,
        Reason.too_long,
        Reason.bad_encoding,
        Reason.not_english,
        Reason.not_language,
    }
)


def star_to_label(stars: int | float | None) -> Label | None:
    """1-2 stars negative, 3 neutral, 4-5 positive; anything else has no label."""
    if stars is None:
        return None
    s = int(stars)
    if s in (1, 2):
        return Label.negative
    if s == 3:
        return Label.neutral
    if s in (4, 5):
        return Label.positive
    return None


class Prediction(BaseModel):
    """The contract: exactly ``{label, confidence, status, reason}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: Label | None = Field(description="negative | neutral | positive, or null when no label was given")
    confidence: float = Field(ge=0.0, le=1.0, description="calibrated probability of the label (0 when none)")
    status: Status
    reason: str = Field(description='"" for ok, else "<code>: <detail>" with a stable code')

    @model_validator(mode="after")
    def _consistent(self) -> Prediction:
        if self.status is Status.ok and (self.reason or self.label is None):
            raise ValueError("ok answers carry a label and an empty reason")
        if self.status is not Status.ok and not self.reason:
            raise ValueError("fallback and rejected answers carry a reason")
        return self

    @property
    def reason_code(self) -> Reason | None:
        return Reason(self.reason.split(":", 1)[0]) if self.reason else None

    @classmethod
    def ok(cls, label: Label | str, confidence: float) -> Prediction:
        return cls(label=Label(label), confidence=_clip(confidence), status=Status.ok, reason="")

    @classmethod
    def rejected(cls, code: Reason, detail: str) -> Prediction:
        return cls(label=None, confidence=0.0, status=Status.rejected, reason=f"{code.value}: {redact_paths(detail)}")

    @classmethod
    def fallback(cls, code: Reason, detail: str, label: Label | str | None, confidence: float) -> Prediction:
        return cls(
            label=Label(label) if label is not None else None,
            confidence=_clip(confidence),
            status=Status.fallback,
            reason=f"{code.value}: {redact_paths(detail)}",
        )


def _clip(x: float) -> float:
    """NaN and out-of-range scores from a misbehaving model must not break the contract."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    if v != v:  # NaN
        return 0.0
    return min(1.0, max(0.0, v))
