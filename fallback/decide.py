"""The chain's decisions: pure functions from what each tier said to one contract answer.

Nothing here does I/O. An answer that needs a human carries its queue record (``Traced.escalation``); whoever runs
the sequence writes it (:meth:`fallback.queue.HumanQueue.escalate`), so a decision can be replayed, evaluated
offline or unit-tested without touching a file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from fallback.keywords import RuleVerdict
from sentiment.contract import LABELS, Label, Prediction, Reason
from sentiment.language_id import LanguageResult
from sentiment.outputs import ModelOutput
from sentiment.records import PredictionRecord, QueueRecord, TierOpinion
from sentiment.settings import GateSettings
from sentiment.validation import Validated, validate

Tier = Literal["gate", "model", "rules", "human"]


class Failure(BaseModel):
    """Why tier 1 gave no usable answer: resource pressure, no model, an error, a timeout, garbage."""

    code: Reason
    detail: str


class Trace(BaseModel):
    """How an answer was reached; feeds the predictions log and metrics, never the client."""

    request_id: str
    tier: Tier
    text: str | None = None
    text_len: int = 0
    had_markup: bool = False
    truncated: bool = False
    lang: str | None = None
    model: ModelOutput | None = None
    rules: RuleVerdict | None = None


class Traced(BaseModel):
    """An answer, how it was reached and, for tier 3, the record the caller must append to the human queue."""

    prediction: Prediction
    trace: Trace
    escalation: QueueRecord | None = None

    def log_record(self, model_tag: str | None, latency_ms: float, log_text: bool = False) -> PredictionRecord:
        p, t = self.prediction, self.trace
        return PredictionRecord(
            request_id=t.request_id,
            text_len=t.text_len,
            label=p.label,
            confidence=p.confidence,
            status=p.status,
            reason=p.reason,
            reason_code=p.reason_code.value if p.reason_code else "",
            tier=t.tier,
            oov_rate=t.model.oov_rate if t.model else None,
            unk_rate=t.model.unk_rate if t.model else None,
            model_confidence=max(t.model.probs) if t.model else None,
            probs=served_probs(t.model.probs) if t.model else None,
            had_markup=t.had_markup,
            lang=t.lang,
            latency_ms=latency_ms,
            model_tag=(t.model.model_tag if t.model and t.model.model_tag else model_tag),
            text=t.text if log_text else None,
        )


# --- tier-1 output checks ----------------------------------------------------------------------------------------


def check_output(raw: object) -> ModelOutput | Failure:
    """Accept a ModelOutput, its dict form or a probability row; anything malformed is a model error."""
    if isinstance(raw, dict):
        try:
            raw = ModelOutput.model_validate(raw)
        except ValueError:
            return Failure(code=Reason.model_error, detail="model returned a malformed record")
    if isinstance(raw, ModelOutput):
        probs, out = raw.probs, raw
    else:
        try:
            probs = [float(x) for x in raw]  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            return Failure(code=Reason.model_error, detail=f"model returned {type(raw).__name__}, not probabilities")
        out = ModelOutput(probs=probs, unk_rate=0.0, oov_rate=0.0)
    if len(probs) != len(LABELS) or not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probs):
        return Failure(code=Reason.model_error, detail=f"model returned invalid probabilities {probs!r:.80}")
    if abs(sum(probs) - 1.0) > 1e-3:
        return Failure(code=Reason.model_error, detail=f"probabilities sum to {sum(probs):.3f}, not 1")
    return out


def check_rows(rows: Sequence[object], n: int) -> list[ModelOutput | Failure]:
    """A whole tier-1 batch: one row per text, each checked; a wrong row count fails them all."""
    if len(rows) != n:
        return failed(n, Reason.model_error, f"model returned {len(rows)} rows for {n}")
    return [check_output(r) for r in rows]


def failed(n: int, code: Reason, detail: str) -> list[ModelOutput | Failure]:
    return [Failure(code=code, detail=detail[:200])] * n


# --- decisions ---------------------------------------------------------------------------------------------------


def admit(raw: object, request_id: str, gates: GateSettings) -> Validated | Traced:
    """Type, emptiness, encoding and length gates."""
    checked = validate(raw, gates)
    if isinstance(checked, Prediction):
        return Traced(prediction=checked, trace=Trace(request_id=request_id, tier="gate"))
    return checked


def language_gate(v: Validated, lang: LanguageResult, request_id: str) -> Traced | None:
    """None when the text may go on; otherwise its ``not_language`` or ``not_english`` answer."""
    if lang.accepted:
        return None
    if lang.method == "nonsense":
        pred = Prediction.rejected(
            Reason.not_language, f"{lang.probability:.0%} of the words are known words: this does not read as language"
        )
    else:
        pred = Prediction.rejected(
            Reason.not_english, f"detected '{lang.lang}' (p={lang.probability:.2f}), only English is supported"
        )
    return Traced(prediction=pred, trace=_trace(v, request_id, "gate", lang))


def reads_words(lang: LanguageResult) -> Failure | None:
    """Why tier 1 must not answer an accepted text (it has only emoji, which the tokenizer reads as ``[UNK]``), or
    None. Its answer then comes from the rules' emoji lexicon, or a person."""
    if lang.method == "emoji":
        return Failure(code=Reason.no_words, detail="only emoji, no words for tier 1")
    return None


def answered_by_model(model: ModelOutput | Failure, gates: GateSettings) -> bool:
    """Whether tier 1's answer stands as is, so the rules need not be asked (with ``rules_veto`` they always are)."""
    return isinstance(model, ModelOutput) and max(model.probs) >= gates.confidence_gate and not gates.rules_veto


OPPOSITE = {"positive": "negative", "negative": "positive"}


def vetoed(label: str, rules: RuleVerdict) -> bool:
    """The rules read at least as much of the opposite polarity as of ``label`` (and some of it)."""
    opposite = OPPOSITE.get(label)
    return opposite is not None and rules.hits[opposite] > 0 and rules.hits[label] <= rules.hits[opposite]


def resolve(
    v: Validated,
    request_id: str,
    lang: LanguageResult | None,
    model: ModelOutput | Failure,
    rules: RuleVerdict,
    gates: GateSettings,
    mixed: str | None = None,
) -> Traced:
    """Confidence gate (then a clause read the other way, ``mixed``, and the rules' veto), neutral band, then
    rules, then the human queue."""
    output = model if isinstance(model, ModelOutput) else None
    if output is not None:
        label, conf = top(output)
        if conf >= gates.confidence_gate and mixed is not None:
            trigger = Failure(code=Reason.mixed_sentiment, detail=mixed)
        elif conf >= gates.confidence_gate and gates.rules_veto and vetoed(label, rules):
            trigger = Failure(
                code=Reason.rules_disagree,
                detail=f"model {label} at {conf:.2f}, but the keyword rules read {rules.hits} on {rules.matched}",
            )
        elif conf >= gates.confidence_gate:
            if gates.neutral_band is not None and conf < gates.neutral_band:
                pred = Prediction.fallback(
                    Reason.neutral_band,
                    f"{label} at {conf:.2f} is below the neutral band {gates.neutral_band:.2f}",
                    Label.neutral,
                    conf,
                )
            else:
                pred = Prediction.ok(label, conf)
            return Traced(prediction=pred, trace=_trace(v, request_id, "model", lang, output))
        else:
            trigger = Failure(
                code=Reason.low_confidence,
                detail=f"model {label} at {conf:.2f} below gate {gates.confidence_gate:.2f}",
            )
    else:
        assert isinstance(model, Failure)
        trigger = model
    if rules.label is not None:
        pred = Prediction.fallback(trigger.code, f"{trigger.detail}; {rules.detail}", rules.label, rules.confidence)
        return Traced(prediction=pred, trace=_trace(v, request_id, "rules", lang, output, rules))
    pred = Prediction.fallback(
        Reason.human_review, f"{trigger.code.value} ({trigger.detail}); {rules.detail}", None, 0.0
    )
    return Traced(
        prediction=pred,
        trace=_trace(v, request_id, "human", lang, output, rules),
        escalation=_queue_record(v, request_id, trigger, output, rules),
    )


def internal_error(request_id: str, detail: str) -> Traced:
    """What a bug in the chain still answers: a contract answer, never an exception."""
    pred = Prediction.fallback(Reason.internal_error, detail, None, 0.0)
    return Traced(prediction=pred, trace=Trace(request_id=request_id, tier="gate"))


def served_probs(probs: Sequence[float]) -> list[float]:
    """Probabilities as logged: six decimals keep every figure derived from them and a line short."""
    return [round(float(p), 6) for p in probs]


def top(output: ModelOutput) -> tuple[str, float]:
    best = max(range(len(LABELS)), key=lambda i: output.probs[i])
    return LABELS[best], output.probs[best]


def _trace(
    v: Validated,
    request_id: str,
    tier: Tier,
    lang: LanguageResult | None,
    model: ModelOutput | None = None,
    rules: RuleVerdict | None = None,
) -> Trace:
    return Trace(
        request_id=request_id,
        tier=tier,
        text=v.text,
        text_len=len(v.text),
        had_markup=v.had_markup,
        truncated=v.truncated,
        lang=lang.lang if lang else None,
        model=model,
        rules=rules,
    )


def _queue_record(
    v: Validated, request_id: str, trigger: Failure, output: ModelOutput | None, rules: RuleVerdict
) -> QueueRecord:
    model_opinion = TierOpinion(detail=trigger.detail)
    if output is not None:
        label, conf = top(output)
        model_opinion = TierOpinion(label=Label(label), confidence=conf, detail=trigger.detail)
    return QueueRecord(
        request_id=request_id,
        text=v.text,
        reason_code=trigger.code.value,
        reason=f"{trigger.detail}; {rules.detail}",
        model=model_opinion,
        rules=TierOpinion(label=rules.label, confidence=rules.confidence, detail=rules.detail),
    )
