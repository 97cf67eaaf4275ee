"""Shadow scoring's record and its summary: how often the challenger agrees with the champion, and where not.

The service writes one :class:`ShadowRecord` per shadowed answer (``<data_dir>/shadow.jsonl``); ``/stats`` and the
dashboard summarise the same records with :func:`summarize`, so both show the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from sentiment.contract import LABELS
from sentiment.estimation import PerformanceEstimate, estimate
from sentiment.records import utc_now


class ShadowRecord(BaseModel):
    ts: str = Field(default_factory=utc_now)
    request_id: str
    champion_tag: str
    champion_label: str
    champion_confidence: float
    challenger_tag: str
    challenger_label: str
    challenger_confidence: float
    # Both versions' calibrated class probabilities (``LABELS`` order), so each gets its own performance estimate;
    # absent in shadow logs written before they were kept.
    champion_probs: list[float] | None = None
    challenger_probs: list[float] | None = None

    @property
    def agree(self) -> bool:
        return self.champion_label == self.challenger_label


class ShadowSummary(BaseModel):
    n: int
    agreement: float | None  # share of shadowed answers where both versions gave the same label
    champion_tag: str | None
    challenger_tag: str | None
    # confusion[champion label][challenger label] = count
    confusion: dict[str, dict[str, int]]
    # Each version's estimated performance on the same shadowed answers (CBPE), where probabilities were logged.
    champion_estimate: PerformanceEstimate | None = None
    challenger_estimate: PerformanceEstimate | None = None


def summarize(records: Iterable[Mapping[str, Any]]) -> ShadowSummary:
    """Over the records of the newest challenger only (an older pairing would blur the figure)."""
    rows = [ShadowRecord.model_validate(r) for r in records]
    if rows:
        latest = (rows[-1].champion_tag, rows[-1].challenger_tag)
        rows = [r for r in rows if (r.champion_tag, r.challenger_tag) == latest]
    confusion = {a: dict.fromkeys(LABELS, 0) for a in LABELS}
    for r in rows:
        confusion[r.champion_label][r.challenger_label] += 1
    both = [(a, b) for r in rows if (a := r.champion_probs) and (b := r.challenger_probs)]
    champion = estimate(np.array([a for a, _ in both]), model_tag=rows[-1].champion_tag) if both else None
    challenger = estimate(np.array([b for _, b in both]), model_tag=rows[-1].challenger_tag) if both else None
    return ShadowSummary(
        n=len(rows),
        agreement=sum(r.agree for r in rows) / len(rows) if rows else None,
        champion_tag=rows[-1].champion_tag if rows else None,
        challenger_tag=rows[-1].challenger_tag if rows else None,
        confusion=confusion,
        champion_estimate=champion,
        challenger_estimate=challenger,
    )
