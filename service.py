"""The API service: wiring only. Tiers run in their own BentoML services (``runners/``), decisions in ``fallback/``.

    bentoml serve service:SentimentService          # http://localhost:3000 (OpenAPI page at /)

BentoML reads a service's workers, batching and dependencies from its class decorator, so this module, the
composition root, reads the settings once here and hands them to everything it builds.
"""

from __future__ import annotations

import threading

import bentoml
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import Field

from api.http import BodyGuard, LoadShedder
from api.monitoring import Monitor, Stats, Trends
from api.openapi import TruthfulOpenAPI
from api.request import Pipeline
from api.runner_tiers import RunnerTiers
from api.schemas import BatchResult, Health, MetaText, ModelCard, RequestMeta, ReviewText, TrendTime
from api.security import AccessGuard
from fallback.guard import ResourceGuard
from runners.language import language_service
from runners.rules import RulesRunner
from runners.transformer import transformer_service
from sentiment.bentoml_patches import apply_patches
from sentiment.contract import Prediction, redact_paths
from sentiment.heap import freeze_heap
from sentiment.language_id import warm_up
from sentiment.rollup import Granularity
from sentiment.settings import load_settings

SETTINGS = load_settings()
MAX_TEXTS = SETTINGS.service.max_batch_texts
BUDGET_HEADER = "x-latency-budget-ms"
PREDICTION_PATHS = frozenset({"/predict", "/predict_batch"})
TransformerRunner = transformer_service(SETTINGS)
LanguageRunner = language_service(SETTINGS.gates)
ops = FastAPI(title="operations")


def _warm_up_then_freeze() -> None:
    warm_up()
    freeze_heap()  # the start-up heap stays out of every later full collection (sentiment.heap)


@bentoml.asgi_app(ops, path="/")
@bentoml.service(
    name="review-sentiment",
    workers=SETTINGS.service.workers,
    traffic={"timeout": 120, "max_concurrency": 2048},
    # Bursts queue in the event loop and the transformer's batch queue rather than being refused.
)
class SentimentService:
    transformer = bentoml.depends(TransformerRunner)
    language = bentoml.depends(LanguageRunner)
    rules = bentoml.depends(RulesRunner)

    def __init__(self) -> None:
        apply_patches(SETTINGS.service.max_batch_wait_ms / 1000.0)  # this process is the runners' client
        g = SETTINGS.gates
        monitor = Monitor.from_settings(SETTINGS)
        tiers = RunnerTiers(SETTINGS, self.transformer, self.language, self.rules, monitor)
        guard = ResourceGuard(
            g.max_memory_percent, g.max_cpu_percent, g.resource_sample_seconds, scope=g.cpu_pressure_scope
        )
        self.pipeline = Pipeline(SETTINGS, tiers, guard)
        # When the language runner is slow (a burst, a loaded box) this process checks the language itself: load
        # fastText and langdetect's profiles now, off the event loop, not in the middle of the first such request
        # (the load takes long enough that every request would wait behind it).
        threading.Thread(target=_warm_up_then_freeze, name="language-warm-up", daemon=True).start()

    @bentoml.api(route="/predict")
    async def predict(
        self, text: ReviewText, ctx: bentoml.Context, source: MetaText | None = None, topic: MetaText | None = None
    ) -> Prediction:
        """One review -> ``{label, confidence, status, reason}``, within the latency budget (header
        ``X-Latency-Budget-Ms`` may shorten it). Optional ``source`` and ``topic`` are logged for ``/trends``."""
        budget = self.pipeline.budget_s(ctx.request.headers.get(BUDGET_HEADER))
        return (await self.pipeline.classify([text], budget, RequestMeta(source=source, topic=topic)))[0]

    @bentoml.api(route="/predict_batch")
    async def predict_batch(
        self,
        ctx: bentoml.Context,
        texts: list[ReviewText] = Field(min_length=1, max_length=MAX_TEXTS),
        source: MetaText | None = None,
        topic: MetaText | None = None,
    ) -> BatchResult:
        """Up to ``service.max_batch_texts`` reviews -> one answer each, in order; tier 1 sees them as one batch."""
        budget = self.pipeline.budget_s(ctx.request.headers.get(BUDGET_HEADER), batch=True)
        meta = RequestMeta(source=source, topic=topic)
        return BatchResult(predictions=await self.pipeline.classify(texts, budget, meta))

    @ops.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health(self) -> Health | JSONResponse:
        """Liveness: 200 while the process can serve, "degraded" (still 200) while a log cannot be written; 503
        "failing" only when the model runner has been silent for ``runner_dead_s`` (dead or hung), so that an
        orchestrator restarts the replica. Model loading is /ready's business."""
        await self.pipeline.tiers.model_info()  # keeps the runner's state fresh when only probes arrive
        problems = [redact_paths(p) for p in self.pipeline.problems()]
        if failing := self.pipeline.failing():
            body = Health(status="failing", problems=[failing, *problems])
            return JSONResponse(body.model_dump(), status_code=503)
        return Health(status="degraded" if problems else "ok", problems=problems)

    @ops.get("/ready")
    async def ready(self) -> JSONResponse:
        """200 once the model is loaded; 503 (with the reason) while tiers 2/3 answer alone."""
        ready, detail = await self.pipeline.ready()
        if ready:
            return JSONResponse({"status": "ready", "model": detail})
        return JSONResponse({"status": "not_ready", "reason": redact_paths(detail)}, status_code=503)

    @ops.get("/stats")
    def stats(self) -> Stats:
        """Rolling window over the last 1,000 predictions of all workers."""
        return self.pipeline.monitor.stats()

    @ops.get("/trends")
    def trends(
        self,
        window: Granularity = "hour",
        start: TrendTime = None,
        end: TrendTime = None,
        source: str | None = None,
        topic: str | None = None,
    ) -> Trends:
        """Per hour, day or week from ``start`` (inclusive) to ``end`` (exclusive): answers per label, mean
        confidence, low-confidence share and the estimated performance, from the rollup kept as answers are logged."""
        return self.pipeline.monitor.trends(window, start, end, source, topic)

    @ops.get("/model/info", response_model=ModelCard)
    async def model_info(self) -> ModelCard | JSONResponse:
        info = await self.pipeline.tiers.model_info()
        if not info.loaded or info.metadata is None or info.tag is None:
            return JSONResponse({"error": redact_paths(info.error)}, status_code=503)
        return ModelCard.from_metadata(info.tag, info.metadata, info.backend, info.challenger)


# Outermost first: who may call, then whether there is room, then what the body holds. (mypy does not apply class
# decorators: after @bentoml.service this name is a bentoml.Service.)
SentimentService.add_asgi_middleware(  # type: ignore[attr-defined]
    TruthfulOpenAPI, answers={"/predict": Prediction, "/predict_batch": BatchResult}
)
SentimentService.add_asgi_middleware(AccessGuard, security=SETTINGS.security)  # type: ignore[attr-defined]
SentimentService.add_asgi_middleware(  # type: ignore[attr-defined]
    LoadShedder,
    paths=PREDICTION_PATHS,
    max_in_flight=SETTINGS.service.max_in_flight_requests,
    budget_s=SETTINGS.service.latency_budget_s,
)
SentimentService.add_asgi_middleware(  # type: ignore[attr-defined]
    BodyGuard, paths=PREDICTION_PATHS, max_bytes=SETTINGS.service.max_request_bytes
)
