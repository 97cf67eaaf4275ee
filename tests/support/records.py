"""Prediction records as tier 1 writes them, built from a probability vector, for the readers' tests (estimation,
rollup, drift, dashboard): one builder, so a schema change to what tier 1 logs is made once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sentiment.contract import LABELS
from sentiment.records import PredictionRecord


def model_record(
    request_id: str, probs: Sequence[float], model_tag: str, ts: str | None = None, text_len: int = 40, **extra: Any
) -> PredictionRecord:
    """An ``ok`` answer of tier 1 whose label and confidence are the top class of ``probs``, as served."""
    top = max(range(len(probs)), key=lambda k: probs[k])
    stamp = {"ts": ts} if ts is not None else {}
    return PredictionRecord(
        **stamp,
        request_id=request_id,
        text_len=text_len,
        label=LABELS[top],
        confidence=float(probs[top]),
        status="ok",
        reason="",
        tier="model",
        model_confidence=float(probs[top]),
        probs=[round(float(v), 6) for v in probs],
        model_tag=model_tag,
        **extra,
    )
