"""Tier 1 as a BentoML service: the transformer behind an adaptive-batching API.

The model is loaded once per worker, in a background thread, so the process answers ``/readyz`` (503) and
``info`` while it loads. A missing or broken model never stops the service from starting: ``info`` says why,
``predict`` refuses, and the API service answers through the rules and the human queue instead.
"""

from __future__ import annotations

import logging
import threading

import bentoml
from bentoml.exceptions import ServiceUnavailable
from bentoml.models import BentoModel
from pydantic import BaseModel

from runners.patches import cap_batch_wait
from sentiment.model.inference import ModelOutput, SentimentModel
from sentiment.model.registry import ModelMetadata
from sentiment.settings import get_settings

log = logging.getLogger(__name__)
SETTINGS = get_settings()
MODEL = BentoModel(SETTINGS.model.tag)


class ModelInfo(BaseModel):
    """What the runner knows about its model; ``loaded`` is the readiness signal."""

    loaded: bool
    tag: str | None = None
    metadata: ModelMetadata | None = None
    backend: str = ""  # what actually runs: an export that failed its check leaves "torch"
    error: str = ""


cap_batch_wait(SETTINGS.service.max_batch_wait_ms / 1000.0)


@bentoml.service(
    name="transformer",
    workers=SETTINGS.service.transformer_workers,
    # One inference thread per worker: batches run one after another, each on service.inference_threads threads.
    threads=1,
    traffic={"timeout": 60, "max_concurrency": 1024},
    logging={"access": {"enabled": False}},  # an internal hop: the API service logs the request
)
class TransformerRunner:
    # A class attribute so `bentoml build` packages the model. Declared only when the store has it:
    # `bentoml serve` refuses to start on a declared model it cannot find, and we must start without one.
    if MODEL.stored is not None:
        bento_model = MODEL

    def __init__(self) -> None:
        self.model: SentimentModel | None = None
        self.error = "model is loading"
        self._loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        stored = MODEL.stored  # local store only: never a remote pull that could hang
        if stored is None:
            self.error = f"model {SETTINGS.model.tag} is not in the model store"
            log.warning("%s; answering through tiers 2 and 3", self.error)
            return
        try:
            meta = ModelMetadata.model_validate(stored.info.metadata)
            model = SentimentModel(stored.path, meta, str(stored.tag), SETTINGS.service.inference_threads,
                                   backend=SETTINGS.service.backend, onnx_cache=SETTINGS.paths.data_dir / "onnx")
            self.model = model
            self.error = ""
            log.info("loaded %s on %s", stored.tag, model.backend)
        except Exception as exc:  # a corrupt checkpoint is an outage of tier 1, not of the service
            self.error = f"model {stored.tag} failed to load: {type(exc).__name__}: {exc}"[:300]
            log.exception("model load failed")

    def __is_ready__(self) -> bool:
        return self.model is not None

    @bentoml.api
    def info(self) -> ModelInfo:
        m = self.model
        if m is None:
            return ModelInfo(loaded=False, error=self.error)
        return ModelInfo(loaded=True, tag=m.tag, metadata=m.metadata, backend=m.backend)

    @bentoml.api(
        batchable=True,
        max_batch_size=SETTINGS.service.max_batch_size,
        max_latency_ms=SETTINGS.service.max_latency_ms,
    )
    def predict(self, texts: list[str]) -> list[ModelOutput]:
        """Calibrated probabilities and OOV rates; requests from many callers arrive here as one batch."""
        if self.model is None:
            raise ServiceUnavailable(self.error)
        return self.model.predict_outputs(texts, batch_size=SETTINGS.model.batch_size)
