"""The chain in-process: the tier sequence over :class:`fallback.tiers.LocalTiers`, called synchronously.

Every input leaves with a :class:`Prediction`; nothing here raises to the caller. The order of the tiers and
every decision live in :mod:`fallback.sequence` and :mod:`fallback.decide`, which the BentoML service runs too,
so both reach the same answers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fallback.decide import Traced
from fallback.guard import ResourceGuard
from fallback.keywords import KeywordRules
from fallback.label_sample import LabellingSample
from fallback.queue import HumanQueue
from fallback.sequence import TierSequence
from fallback.tiers import LocalTiers, Tier1Model
from sentiment.contract import Prediction
from sentiment.settings import Settings

T = TypeVar("T")


class Chain:
    def __init__(
        self,
        settings: Settings,
        model: Tier1Model | None = None,
        *,
        rules: KeywordRules | None = None,
        queue: HumanQueue | None = None,
        guard: ResourceGuard | None = None,
        sample: LabellingSample | None = None,
    ) -> None:
        """``sample``: also offer answers to the labelling sample (the service always does; in-process callers opt
        in, e.g. a batch job over a product line's reviews)."""
        g = settings.gates
        self.settings = settings
        self.tiers = LocalTiers(model, g, rules)
        self.queue = queue or HumanQueue.from_settings(settings)
        self.guard = guard or ResourceGuard(
            g.max_memory_percent, g.max_cpu_percent, g.resource_sample_seconds, scope=g.cpu_pressure_scope
        )
        self.sequence = TierSequence(self.tiers, g, pressure=self.guard.pressure, overlap=False)
        self.sample = sample

    def classify(self, raw: object) -> Prediction:
        return self.classify_traced(raw).prediction

    def classify_traced(self, raw: object, request_id: str | None = None) -> Traced:
        return self.classify_many([raw], [request_id] if request_id else None)[0]

    def classify_many(self, raws: Sequence[object], request_ids: Sequence[str] | None = None) -> list[Traced]:
        """The whole chain for a batch, with one model call for every text that reaches tier 1."""
        ids = list(request_ids) if request_ids else [uuid.uuid4().hex for _ in raws]
        traced = self.queue.escalate(_run(self.sequence.run(raws, ids)))
        if self.sample is not None:
            self.sample.offer(traced)
        return traced


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
