"""The classification chain: gates, tier 1 (model), tier 2 (keyword rules), tier 3 (human queue).

Every input leaves with a :class:`Prediction`; nothing here raises to the caller. The steps (``admit``,
``language_gate``, ``pressure``, ``resolve``) are pure decisions so the BentoML service can run each tier in its
own runner and still reach exactly the same answers as :meth:`Chain.classify` does in-process.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from pydantic import BaseModel

from fallback.guard import ResourceGuard
from fallback.queue import HumanQueue
from fallback.rules import KeywordRules, RuleVerdict
from sentiment.contract import LABELS, Label, Prediction, Reason
from sentiment.language import LanguageResult, detect_language
from sentiment.model.inference import ModelOutput
from sentiment.records import PredictionRecord, QueueRecord, TierOpinion
from sentiment.settings import Settings
from sentiment.validation import Validated, validate

log = logging.getLogger(__name__)


class Tier1(Protocol):
    """Anything that maps texts to class probabilities (N x 3, order of ``LABELS``)."""

    def predict(self, texts: Sequence[str]) -> Any: ...


class Failure(BaseModel):
    """Why tier 1 gave no usable answer: resource pressure, no model, an error, a timeout, garbage."""

    code: Reason
    detail: str


class Trace(BaseModel):
    """How an answer was reached; feeds the predictions log and metrics, never the client."""

    request_id: str
    tier: str  # gate | model | rules | human
    text: str | None = None
    text_len: int = 0
    had_markup: bool = False
    truncated: bool = False
    lang: str | None = None
    model: ModelOutput | None = None
    rules: RuleVerdict | None = None


class Traced(BaseModel):
    prediction: Prediction
    trace: Trace

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
            had_markup=t.had_markup,
            lang=t.lang,
            latency_ms=latency_ms,
            model_tag=model_tag,
            text=t.text if log_text else None,
        )


def check_output(raw: Any) -> ModelOutput | Failure:
    """Accept a ModelOutput or a probability row; anything malformed is a model error, not a crash."""
    if isinstance(raw, ModelOutput):
        probs, out = raw.probs, raw
    else:
        try:
            probs = [float(x) for x in raw]
        except (TypeError, ValueError):
            return Failure(code=Reason.model_error, detail=f"model returned {type(raw).__name__}, not probabilities")
        out = ModelOutput(probs=probs, unk_rate=0.0, oov_rate=0.0)
    if len(probs) != len(LABELS) or not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probs):
        return Failure(code=Reason.model_error, detail=f"model returned invalid probabilities {probs!r:.80}")
    if abs(sum(probs) - 1.0) > 1e-3:
        return Failure(code=Reason.model_error, detail=f"probabilities sum to {sum(probs):.3f}, not 1")
    return out


def check_rows(rows: Sequence[Any], n: int) -> list[ModelOutput | Failure]:
    """A whole tier-1 batch: one row per text, each checked; a wrong row count fails them all."""
    if len(rows) != n:
        return model_failed(n, f"model returned {len(rows)} rows for {n}")
    return [check_output(r) for r in rows]


def model_failed(n: int, detail: str) -> list[ModelOutput | Failure]:
    return [Failure(code=Reason.model_error, detail=detail[:200])] * n


class Chain:
    def __init__(
        self,
        settings: Settings,
        model: Tier1 | None = None,
        *,
        rules: KeywordRules | None = None,
        queue: HumanQueue | None = None,
        guard: ResourceGuard | None = None,
    ) -> None:
        g = settings.gates
        self.settings = settings
        self.model = model
        self.rules = rules or KeywordRules()
        self.queue = queue or HumanQueue(settings.paths.human_queue)
        self.guard = guard or ResourceGuard(
            g.max_memory_percent, g.max_cpu_percent, g.resource_sample_seconds, scope=g.cpu_pressure_scope
        )
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tier1")

    # --- steps -------------------------------------------------------------------------------------------------

    def admit(self, raw: Any, request_id: str) -> Validated | Traced:
        """Type, emptiness, encoding and length gates."""
        checked = validate(raw, self.settings.gates)
        if isinstance(checked, Prediction):
            return Traced(prediction=checked, trace=Trace(request_id=request_id, tier="gate"))
        return checked

    def language_gate(self, v: Validated, lang: LanguageResult, request_id: str) -> Traced | None:
        if lang.accepted:
            return None
        pred = Prediction.rejected(
            Reason.not_english, f"detected '{lang.lang}' (p={lang.probability:.2f}), only English is supported"
        )
        return Traced(prediction=pred, trace=self._trace(v, request_id, "gate", lang))

    def pressure(self) -> Failure | None:
        try:
            reason = self.guard.pressure()
        except Exception as exc:  # a broken sensor must not take the chain down
            log.warning("resource guard failed: %s", exc)
            return None
        return Failure(code=Reason.resource_pressure, detail=reason) if reason else None

    def resolve(
        self,
        v: Validated,
        request_id: str,
        lang: LanguageResult | None,
        model: ModelOutput | Failure,
        rules: RuleVerdict,
    ) -> Traced:
        """Confidence gate, neutral band, then rules, then the human queue."""
        g = self.settings.gates
        output = model if isinstance(model, ModelOutput) else None
        if output is not None:
            best = max(range(len(LABELS)), key=lambda i: output.probs[i])
            label, conf = LABELS[best], output.probs[best]
            if conf >= g.confidence_gate:
                if g.neutral_band is not None and conf < g.neutral_band:
                    pred = Prediction.fallback(
                        Reason.neutral_band,
                        f"{label} at {conf:.2f} is below the neutral band {g.neutral_band:.2f}",
                        Label.neutral,
                        conf,
                    )
                else:
                    pred = Prediction.ok(label, conf)
                return Traced(prediction=pred, trace=self._trace(v, request_id, "model", lang, output))
            trigger = Failure(
                code=Reason.low_confidence, detail=f"model {label} at {conf:.2f} below gate {g.confidence_gate:.2f}"
            )
        else:
            trigger = model  # type: ignore[assignment]
        if rules.label is not None:
            pred = Prediction.fallback(trigger.code, f"{trigger.detail}; {rules.detail}", rules.label, rules.confidence)
            return Traced(prediction=pred, trace=self._trace(v, request_id, "rules", lang, output, rules))
        queued = self._enqueue(v, request_id, trigger, output, rules)
        pred = Prediction.fallback(
            Reason.human_review,
            f"{trigger.code.value} ({trigger.detail}); {rules.detail}; {queued}",
            None,
            0.0,
        )
        return Traced(prediction=pred, trace=self._trace(v, request_id, "human", lang, output, rules))

    # --- in-process composition ----------------------------------------------------------------------------------

    def classify(self, raw: Any) -> Prediction:
        return self.classify_traced(raw).prediction

    def classify_traced(self, raw: Any, request_id: str | None = None) -> Traced:
        return self.classify_many([raw], [request_id] if request_id else None)[0]

    def classify_many(self, raws: Sequence[Any], request_ids: Sequence[str] | None = None) -> list[Traced]:
        """The whole chain for a batch, with one model call for every text that reaches tier 1."""
        ids = list(request_ids) if request_ids else [uuid.uuid4().hex for _ in raws]
        results: list[Traced | None] = [None] * len(raws)
        pending: list[tuple[int, Validated, LanguageResult]] = []
        for i, (raw, rid) in enumerate(zip(raws, ids, strict=True)):
            try:
                admitted = self.admit(raw, rid)
                if isinstance(admitted, Traced):
                    results[i] = admitted
                    continue
                g = self.settings.gates
                lang = detect_language(admitted.text, g)
                results[i] = self.language_gate(admitted, lang, rid)
                if results[i] is None:
                    pending.append((i, admitted, lang))
            except Exception as exc:  # last line of defence: a bug here must still produce an answer
                log.exception("chain failed before tier 1")
                results[i] = self._internal_error(rid, exc)
        if pending:
            outputs = self._tier1([v.text for _, v, _ in pending])
            for (i, v, lang), out in zip(pending, outputs, strict=True):
                try:
                    results[i] = self.resolve(v, ids[i], lang, out, self.rules.match(v.text))
                except Exception as exc:
                    log.exception("chain failed after tier 1")
                    results[i] = self._internal_error(ids[i], exc)
        return [r for r in results if r is not None]

    # --- helpers -------------------------------------------------------------------------------------------------

    def _tier1(self, texts: list[str]) -> list[ModelOutput | Failure]:
        if self.model is None:
            return [Failure(code=Reason.model_unavailable, detail="no model loaded")] * len(texts)
        pressure = self.pressure()
        if pressure is not None:
            return [pressure] * len(texts)
        predict = getattr(self.model, "predict_outputs", None) or self.model.predict
        timeout = self.settings.gates.model_timeout_s
        try:
            rows = list(self._pool.submit(predict, texts).result(timeout=timeout))
        except FutureTimeout:
            return model_failed(len(texts), f"model timed out after {timeout:.1f}s")
        except Exception as exc:
            return model_failed(len(texts), f"model raised {type(exc).__name__}: {exc}")
        return check_rows(rows, len(texts))

    def _trace(
        self,
        v: Validated,
        request_id: str,
        tier: str,
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

    def _enqueue(
        self, v: Validated, request_id: str, trigger: Failure, output: ModelOutput | None, rules: RuleVerdict
    ) -> str:
        model_opinion = None
        if output is not None:
            best = max(range(len(LABELS)), key=lambda i: output.probs[i])
            model_opinion = TierOpinion(label=LABELS[best], confidence=output.probs[best], detail=trigger.detail)
        record = QueueRecord(
            request_id=request_id,
            text=v.text,
            reason_code=trigger.code.value,
            reason=f"{trigger.detail}; {rules.detail}",
            model=model_opinion or TierOpinion(detail=trigger.detail),
            rules=TierOpinion(label=rules.label, confidence=rules.confidence, detail=rules.detail),
        )
        try:
            self.queue.put(record)
            return "queued for human review"
        except OSError as exc:
            log.error("human queue write failed for %s: %s", request_id, exc)
            return f"human queue write failed ({exc.strerror})"

    def _internal_error(self, request_id: str, exc: Exception) -> Traced:
        pred = Prediction.fallback(Reason.internal_error, f"{type(exc).__name__} in the chain", None, 0.0)
        return Traced(prediction=pred, trace=Trace(request_id=request_id, tier="gate"))
