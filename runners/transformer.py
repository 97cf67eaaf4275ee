"""Tier 1 as a BentoML service: the transformer behind an adaptive-batching API.

The model is loaded once per worker, in a background thread, so the process answers ``/readyz`` (503) and
``info`` while it loads. A missing or broken model never stops the service from starting: ``info`` says why,
``predict`` refuses, and the API service answers through the rules and the human queue instead.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import bentoml
from bentoml.exceptions import ServiceUnavailable
from bentoml.models import BentoModel

from runners.patches import apply_patches
from runners.schemas import ModelInfo
from sentiment.model.aliases import serving_tag
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import ModelMetadata
from sentiment.outputs import ModelOutput
from sentiment.settings import Settings

log = logging.getLogger(__name__)


def transformer_service(settings: Settings) -> bentoml.Service[Any]:
    """The runner class for these settings: BentoML reads batching and workers from the decorator."""
    svc = settings.service
    tag = serving_tag(settings.model)  # exact version: the champion unless one is pinned
    stored_model = BentoModel(tag) if tag else None

    @bentoml.service(
        name="transformer",
        workers=svc.transformer_workers,
        # One inference thread per worker: batches run one after another, each on svc.inference_threads threads.
        threads=1,
        traffic={"timeout": 60, "max_concurrency": 1024},
        logging={"access": {"enabled": False}},  # an internal hop: the API service logs the request
    )
    class TransformerRunner:
        # A class attribute so `bentoml build` packages the model. Declared only when the store has it:
        # `bentoml serve` refuses to start on a declared model it cannot find, and we must start without one.
        if stored_model is not None and stored_model.stored is not None:
            bento_model = stored_model

        def __init__(self) -> None:
            apply_patches(svc.max_batch_wait_ms / 1000.0)
            self.model: SentimentModel | None = None
            self.error = "model is loading"
            self._loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
            self._loader.start()

        def _load(self) -> None:
            stored = stored_model.stored if stored_model else None  # local store only: never a hanging remote pull
            if stored is None:
                self.error = f"model {tag or settings.model.name} is not in the model store"
                log.warning("%s; answering through tiers 2 and 3", self.error)
                return
            try:
                meta = ModelMetadata.model_validate(stored.info.metadata)
                model = SentimentModel(stored.path, meta, str(stored.tag), svc.inference_threads,
                                       backend=svc.backend, onnx_cache=settings.paths.data_dir / "onnx")
                self.model = model
                self.error = ""
                log.info("loaded %s on %s", stored.tag, model.backend)
            except Exception as exc:  # a corrupt checkpoint is an outage of tier 1, not of the service
                self.error = f"model {stored.tag} failed to load: {type(exc).__name__}: {exc}"[:300]
                log.exception("model load failed")

        def __is_ready__(self) -> bool:
            return self.model is not None

        @bentoml.api
        async def info(self) -> ModelInfo:
            """On the event loop, not the worker thread: answered in milliseconds while a batch computes, so the API's
            readiness sees a dead or hung runner, never a busy one."""
            m = self.model
            if m is None:
                return ModelInfo(loaded=False, error=self.error)
            return ModelInfo(loaded=True, tag=m.tag, metadata=m.metadata, backend=m.backend)

        @bentoml.api(batchable=True, max_batch_size=svc.max_batch_size, max_latency_ms=svc.max_latency_ms)
        def predict(self, texts: list[str]) -> list[ModelOutput]:
            """Calibrated probabilities and OOV rates; requests from many callers arrive here as one batch."""
            if self.model is None:
                raise ServiceUnavailable(self.error)
            return self.model.predict_outputs(texts, batch_size=settings.model.batch_size)

    return TransformerRunner
