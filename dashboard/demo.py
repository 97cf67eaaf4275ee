"""Synthetic prediction records so the dashboard can be explored without a server.

They go to the demo dir only (see :func:`dashboard.loaders.sources_for`). The late part of the window drifts on
purpose (more unknown words, less confident model, more negative reviews) so every chart has something to show.
Records are built through the real contract (:class:`Prediction`) and schemas, so they are valid log lines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel

from dashboard.sources import Sources
from sentiment.contract import LABELS, Label, Prediction, Reason
from sentiment.jsonl import append_records
from sentiment.records import PredictionRecord, QueueRecord, TierOpinion

DEMO_RECORDS = 200
MODEL_TAG = "review-sentiment:demo"
_SUBJECTS = ("The charger", "This blender", "The headphones", "My order", "The case", "This lamp", "The app")
_VERDICTS = (
    "works, I guess, but the manual is confusing",
    "arrived a week late and the box was open",
    "is fine for the price, nothing special",
    "stopped after two days, then started again",
    "is not what the photos show, yet it does the job",
    "hmm, hard to say after one use",
)
_REJECTS = (
    (Reason.too_short, "3 chars < 5", "en"),
    (Reason.not_english, "detected de (p=0.99)", "de"),
    (Reason.not_english, "detected es (p=0.97)", "es"),
    (Reason.empty, "no text after normalisation", None),
)


class Seeded(BaseModel):
    predictions: int
    queued: int


def _label(rng: np.random.Generator, late: float) -> Label:
    """Label mix drifts towards negative as ``late`` goes from 0 to 1 (a review-bombing-like shift)."""
    neg = 0.30 + 0.35 * late
    return Label(str(rng.choice(LABELS, p=[neg, 0.12, 1 - neg - 0.12])))


class _Answer(NamedTuple):
    prediction: Prediction
    tier: str
    confidence: float | None  # the model's; None when the input gate rejected the review
    lang: str | None = "en"


def _answer(rng: np.random.Generator, late: float, gate: float) -> _Answer:
    """What the chain would have said about one review."""
    if rng.random() < 0.07:
        code, detail, lang = _REJECTS[int(rng.integers(len(_REJECTS)))]
        return _Answer(Prediction.rejected(code, detail), "gate", None, lang)
    conf = float(rng.beta(9 - 4 * late, 1.6 + 2.4 * late))
    if conf >= gate:
        return _Answer(Prediction.ok(_label(rng, late), conf), "model", conf)
    if rng.random() < 0.5:
        why = f"model {conf:.3f} < gate {gate:.2f}; keyword rules decided"
        rules_conf = 0.5 + 0.2 * rng.random()
        return _Answer(Prediction.fallback(Reason.low_confidence, why, _label(rng, late), rules_conf), "rules", conf)
    why = f"model {conf:.3f} < gate {gate:.2f}; no decisive keyword"
    return _Answer(Prediction.fallback(Reason.human_review, why, None, 0.0), "human", conf)


def synth(
    gate: float,
    n: int = DEMO_RECORDS,
    seed: int | None = None,
    end: datetime | None = None,
    span: timedelta = timedelta(hours=4),
) -> tuple[list[PredictionRecord], list[QueueRecord]]:
    """``n`` prediction records evenly spread over ``span`` up to ``end``, plus queue lines for the escalated ones."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC)
    preds: list[PredictionRecord] = []
    queue: list[QueueRecord] = []
    for i in range(n):
        late = max(0.0, (i / max(n - 1, 1) - 0.6) / 0.4)  # 0 for the first 60 %, then ramps to 1
        ts = (end - span + span * (i + rng.uniform(0, 0.9)) / n).isoformat(timespec="milliseconds")
        ts = ts.replace("+00:00", "Z")
        rid = f"demo-{i:03d}-{rng.bytes(4).hex()}"
        pred, tier, conf, lang = _answer(rng, late, gate)
        oov = None if conf is None else float(np.clip(rng.beta(2, 40 - 25 * late), 0, 1))
        latency = rng.uniform(0.5, 4) if conf is None else rng.lognormal(3.2, 0.35)
        preds.append(
            PredictionRecord(
                ts=ts,
                request_id=rid,
                text_len=int(np.clip(rng.lognormal(5.6 + 0.3 * late, 0.7), 5, 5000)),
                label=pred.label,
                confidence=pred.confidence,
                status=pred.status,
                reason=pred.reason,
                reason_code=pred.reason_code.value if pred.reason_code else "",
                tier=tier,
                model_confidence=conf,
                oov_rate=oov,
                unk_rate=None if oov is None else oov / 4,
                lang=lang,
                latency_ms=round(float(latency), 2),
                model_tag=MODEL_TAG,
            )
        )
        if tier == "human" and conf is not None:
            queue.append(
                QueueRecord(
                    ts=ts,
                    request_id=rid,
                    text=f"{rng.choice(_SUBJECTS)} {rng.choice(_VERDICTS)}.",
                    reason_code=Reason.low_confidence.value,
                    reason=pred.reason.split(": ", 1)[1],
                    model=TierOpinion(label=_label(rng, late), confidence=conf, detail=f"model {conf:.3f} < gate"),
                    rules=TierOpinion(detail="no keyword matched" if rng.random() < 0.5 else "tie between classes"),
                )
            )
    return preds, queue


def seed(sources: Sources, gate: float, n: int = DEMO_RECORDS, seed: int | None = None) -> Seeded:
    """Replace the demo files with ``n`` fresh records (and their queue lines); refuses to touch real files."""
    if sources.kind != "demo":
        raise ValueError("demo records are only ever written to the demo sources")
    preds, queue = synth(gate, n, seed)
    for path in (sources.predictions, sources.queue, sources.labels):
        path.unlink(missing_ok=True)
    append_records(sources.predictions, preds)
    append_records(sources.queue, queue)
    return Seeded(predictions=len(preds), queued=len(queue))
