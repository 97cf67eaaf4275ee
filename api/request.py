"""A request in the API service: the tier sequence over the runners, then its side effects (queue, log, metrics).

The sequence and its decisions are :mod:`fallback.sequence`'s, shared with the in-process chain; the runner
plumbing is :mod:`api.runner_tiers`'. What is left here is what only a serving process does: readiness (the model
loaded and the batcher warmed), writing escalations and answers, and never failing a request over either.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence

from api.runner_tiers import RunnerTiers
from api.schemas import RequestMeta
from api.shadow import Shadow
from fallback.decide import Traced
from fallback.guard import ResourceGuard
from fallback.label_sample import LabellingSample, drop_boost
from fallback.queue import HumanQueue
from fallback.sequence import TierSequence
from sentiment.contract import Prediction
from sentiment.settings import Settings

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, settings: Settings, tiers: RunnerTiers, guard: ResourceGuard) -> None:
        self.settings = settings
        self.tiers = tiers
        self.monitor = tiers.monitor
        self.queue = HumanQueue.from_settings(settings)
        self.sample = LabellingSample.from_settings(settings)
        self.shadow = Shadow(settings, tiers)
        self.sequence = TierSequence(
            tiers,
            settings.gates,
            pressure=guard.pressure,
            overlap=True,
            rules_reserve_s=settings.service.rules_reserve_s,
        )
        self._warm: asyncio.Task[None] | None = None

    async def ready(self) -> tuple[bool, str]:
        """Ready = model loaded and the batcher warmed up, so the first real requests do not pay for either."""
        info = await self.tiers.model_info(wait=True)
        if not info.loaded:
            return False, info.error
        if self._warm is None:
            self._warm = asyncio.create_task(self._warm_up())
        if not self._warm.done():
            return False, "model loaded, warming up the batcher"
        return True, info.tag or ""

    async def _warm_up(self, rounds: int = 4, width: int = 8) -> None:
        """BentoML's adaptive batcher learns its cost model from its first ~15 calls and, fed one request at a
        time, waits up to its latency budget for company on each. Concurrent calls make that take a second."""
        text = "warm-up call: the strings sound great and arrived on time"
        for _ in range(rounds):
            await asyncio.gather(*(self.tiers.predict([text]) for _ in range(width)), return_exceptions=True)

    def budget_s(self, asked_ms: str | None, batch: bool = False) -> float:
        """The service's latency budget, or less if the client asks for less (a header value in milliseconds)."""
        svc = self.settings.service
        budget = svc.batch_latency_budget_s if batch else svc.latency_budget_s
        try:
            asked = float(asked_ms) / 1000.0 if asked_ms else budget
        except ValueError:
            return budget
        return min(budget, asked) if asked > 0 else budget

    def failing(self) -> str | None:
        """Why this replica should be restarted, or None: a model runner silent (dead without respawn, or hung) for
        ``runner_dead_s``. A container whose BentoML does not respawn workers, or whose runner hangs, must not go on
        answering from the rules for good: liveness fails and the orchestrator restarts it."""
        silent, limit = self.tiers.silent_for_s(), self.settings.service.runner_dead_s
        return f"model runner silent for {silent:.0f}s (limit {limit:.0f}s)" if silent >= limit else None

    def problems(self) -> list[str]:
        """What /health reports as degraded: files whose records wait in memory, or were ever dropped."""
        out = []
        for state in (self.monitor.file.state(), self.queue.file.state(), self.sample.file.state()):
            if state.waiting:
                out.append(f"{state.path}: {state.waiting} records wait to be written ({state.last_error})")
            if state.dropped:
                out.append(f"{state.path}: {state.dropped} records dropped after waiting too long")
        return out

    async def classify(
        self, raws: Sequence[object], budget_s: float, meta: RequestMeta | None = None
    ) -> list[Prediction]:
        """Every text gets exactly one answer, in order, within the budget; every answer is logged."""
        start = time.perf_counter()
        traced = await self.sequence.run(raws, [uuid.uuid4().hex for _ in raws], budget_s)
        traced = self.queue.escalate(traced)
        self.sample.offer(traced, self.labelling_boost())
        self._log(traced, (time.perf_counter() - start) * 1000.0, meta)
        self.shadow.after(traced)
        return [t.prediction for t in traced]

    def labelling_boost(self) -> float:
        """The labelling sample's boost for the serving version, from the monitor's last estimate (never a fresh one:
        this runs on every request) against the version's own held-out macro-F1."""
        info = self.tiers.info
        if not info.loaded or info.tag is None or info.metadata is None:
            return 1.0
        held_out = info.metadata.metrics.get("test_macro_f1")
        return drop_boost(
            self.monitor.estimates.get(info.tag),
            float(held_out) if isinstance(held_out, int | float) else None,
            self.settings,
        )

    def _log(self, traced: list[Traced], latency_ms: float, meta: RequestMeta | None = None) -> None:
        tag = self.tiers.info.tag
        log_text = self.settings.service.log_text
        records = [t.log_record(tag, latency_ms, log_text) for t in traced]
        if meta is not None:
            records = [r.model_copy(update=meta.model_dump()) for r in records]
        try:
            self.monitor.record(records)
        except Exception as exc:  # a full disk or a metrics hiccup must not turn answers into errors
            log.error("could not log %d predictions: %s", len(records), exc)
