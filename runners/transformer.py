"""Tier 1 as a BentoML service: the transformer behind an adaptive-batching API.

The model is loaded once per worker, in a background thread, so the process answers ``/readyz`` (503) and
``info`` while it loads. A missing or broken model never stops the service from starting: ``info`` says why,
``predict`` refuses, and the API service answers through the rules and the human queue instead. The same thread
then follows the model aliases: promotion and rollback swap the serving version in place, and a challenger, when
one is set, answers ``shadow`` calls.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import bentoml
from bentoml.exceptions import ServiceUnavailable
from bentoml.models import BentoModel

from sentiment.bentoml_patches import apply_patches
from sentiment.model.aliases import serving_tag
from sentiment.model.serving import ModelInfo, ServingModels
from sentiment.outputs import ModelOutput
from sentiment.settings import Settings

log = logging.getLogger(__name__)


# The class is built inside the factory because BentoML reads batching and workers from its decorator at
# definition; the complexity counted here is that of the class's small methods together.
def transformer_service(settings: Settings) -> bentoml.Service[Any]:  # noqa: C901
    """The runner class for these settings: BentoML reads batching and workers from the decorator."""
    svc = settings.service
    tag = serving_tag(settings.model)  # exact version at start: the champion unless one is pinned
    stored_model = BentoModel(tag) if tag else None

    @bentoml.service(
        name="transformer",
        workers=svc.transformer_workers,
        # One inference thread per worker: batches run one after another, each on svc.inference_threads threads.
        threads=1,
        traffic={"timeout": 60, "max_concurrency": 1024},
        resources={"gpu": 1} if svc.device == "cuda" else {},
        logging={"access": {"enabled": False}},  # an internal hop: the API service logs the request
    )
    class TransformerRunner:
        # A class attribute so `bentoml build` packages the model. Declared only when the store has it:
        # `bentoml serve` refuses to start on a declared model it cannot find, and we must start without one.
        if stored_model is not None and stored_model.stored is not None:
            bento_model = stored_model

        def __init__(self) -> None:
            apply_patches(svc.max_batch_wait_ms / 1000.0)
            self.models = ServingModels(settings)
            self._stop = threading.Event()
            # Loads the champion (and challenger) in the background, then follows the aliases: a promotion or a
            # rollback swaps the version this process serves without a restart (sentiment.model.serving).
            self._watch = threading.Thread(
                target=self.models.watch, args=(svc.alias_poll_s, self._stop), name="model-watch", daemon=True
            )
            self._watch.start()

        @bentoml.on_shutdown
        def _stop_watching(self) -> None:
            self._stop.set()

        def __is_ready__(self) -> bool:
            return self.models.champion is not None

        @bentoml.api
        async def info(self) -> ModelInfo:
            """On the event loop, not the worker thread: answered in milliseconds while a batch computes, so the API's
            readiness sees a dead or hung runner, never a busy one."""
            m, c = self.models.champion, self.models.challenger
            if m is None:
                return ModelInfo(loaded=False, error=self.models.error)
            return ModelInfo(
                loaded=True, tag=m.tag, metadata=m.metadata, backend=m.backend, challenger=c.tag if c else None
            )

        @bentoml.api(batchable=True, max_batch_size=svc.max_batch_size, max_latency_ms=svc.max_latency_ms)
        def predict(self, texts: list[str]) -> list[ModelOutput]:
            """Calibrated probabilities and OOV rates; requests from many callers arrive here as one batch."""
            model = self.models.champion  # one reference for the whole batch, whatever a swap does meanwhile
            if model is None:
                raise ServiceUnavailable(self.models.error)
            return model.predict_outputs(texts, batch_size=settings.model.inference_batch_size)

        @bentoml.api(batchable=True, max_batch_size=svc.max_batch_size, max_latency_ms=svc.max_latency_ms)
        def shadow(self, texts: list[str]) -> list[ModelOutput]:
            """The challenger's answers for texts the champion already answered (the API logs both, off the
            response path); empty rows when no challenger is loaded."""
            challenger = self.models.challenger
            if challenger is None:
                return [ModelOutput(probs=[], unk_rate=0.0, oov_rate=0.0) for _ in texts]
            return challenger.predict_outputs(texts, batch_size=settings.model.inference_batch_size)

    return TransformerRunner
