"""Schemas of the files the service writes and the drift detector and dashboard read.

One definition per file, so writers and readers cannot drift apart. All timestamps are UTC ISO 8601.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from sentiment.contract import Label, Status


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PredictionRecord(BaseModel):
    """One line of ``predictions.jsonl``: every answer the service gives."""

    ts: str = Field(default_factory=utc_now)
    request_id: str
    text_len: int
    label: Label | None
    confidence: float
    status: Status
    reason: str
    reason_code: str = ""
    tier: str  # "gate" (rejected) | "model" | "rules" | "human"
    oov_rate: float | None = None
    unk_rate: float | None = None
    # Tier 1's own top probability whenever the model answered (also when a later tier gave the answer).
    model_confidence: float | None = None
    # Tier 1's calibrated class probabilities as served (order of ``sentiment.contract.LABELS``): the evidence the
    # performance estimate reads. Absent in logs written before it was kept, and when the model never ran.
    probs: list[float] | None = None
    had_markup: bool = False
    lang: str | None = None
    latency_ms: float = 0.0
    model_tag: str | None = None
    # The caller's optional metadata (``GET /trends`` filters on it); never part of the answer.
    source: str | None = None
    topic: str | None = None
    text: str | None = None  # only when SENTIMENT_SERVICE__LOG_TEXT=true


class TierOpinion(BaseModel):
    """What an earlier tier said about a review that reached the human queue."""

    label: Label | None = None
    confidence: float | None = None
    detail: str = ""


class QueueRecord(BaseModel):
    """One line of ``human_queue.jsonl``: a review no automated tier could answer."""

    ts: str = Field(default_factory=utc_now)
    request_id: str
    text: str
    reason_code: str
    reason: str
    model: TierOpinion | None = None
    rules: TierOpinion | None = None


class HumanLabel(BaseModel):
    """One line of ``human_labels.jsonl``: an operator's label for a queued review; training can read it."""

    ts: str = Field(default_factory=utc_now)
    request_id: str
    text: str
    label: Label
    labeller: str = "operator"


class SampleRecord(BaseModel):
    """One line of ``labelling_sample.jsonl``: a tier-1 answer offered to an operator for a label.

    ``selection`` says why: ``margin`` (the top two classes were close: always taken below the margin limit) or
    ``random`` (drawn with probability ``1 / weight``), so the labels can be re-weighted to the stream's class mix.
    """

    ts: str = Field(default_factory=utc_now)
    request_id: str
    text: str
    selection: Literal["margin", "random"]
    weight: float  # 1 / probability that this answer was taken
    margin: float  # top-1 minus top-2 calibrated probability
    probs: list[float]
    model: TierOpinion
    model_tag: str | None = None
    # Taken while the serving version's estimated macro-F1 had dropped: random ones were drawn with the boosted
    # share (labelling.boost_on_drop), which their weight already accounts for.
    boosted: bool = False


Alias = Literal["champion", "challenger"]
AliasAction = Literal["bootstrap", "promote", "rollback", "clear"]


class AliasChange(BaseModel):
    """One line of ``<BENTOML_HOME>/aliases/<model>.jsonl``: a move of a model alias; the last one per alias rules.

    ``to_tag`` is ``None`` when the alias was cleared. ``action`` is ``bootstrap`` when nobody chose: the store's
    only (or, in a store older than aliases, its latest) version became champion because nothing else could.
    """

    ts: str = Field(default_factory=utc_now)
    model: str
    alias: Alias
    action: AliasAction
    from_tag: str | None
    to_tag: str | None
    reason: str
    report: str | None = None
    forced: bool = False
    by: str = ""  # user@host (pid)
    command: str = ""
