"""Shadow scoring: a share of tier-1 answers is also scored by the challenger, after the caller has its answer.

Callers never see the challenger: its calls start once a request is answered, at most ``MAX_IN_FLIGHT`` at a time
per API worker (beyond that a shadow sample is skipped and counted, never queued), and a failing challenger only
costs the sample. Both answers go to the shadow log and to Prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from api.monitoring import metrics
from api.runner_tiers import RunnerTiers
from fallback.decide import Traced, served_probs, top
from sentiment.backlog import BackloggedFile
from sentiment.settings import Settings
from sentiment.shadow_log import ShadowRecord

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 2


class Shadow:
    def __init__(self, settings: Settings, tiers: RunnerTiers, draw: Callable[[], float] = random.random) -> None:
        self.share = settings.service.shadow_share
        self.tiers = tiers
        self.draw = draw
        self.file = BackloggedFile(settings.paths.shadow_log, settings.rotation)
        self._running: set[asyncio.Task[None]] = set()

    def after(self, traced: list[Traced]) -> None:
        """Sample the answers tier 1 gave and score them with the challenger in the background."""
        challenger = self.tiers.info.challenger
        if not challenger or self.share <= 0:
            return
        picked = [t for t in traced if t.trace.model is not None and t.trace.text and self.draw() < self.share]
        if not picked:
            return
        if len(self._running) >= MAX_IN_FLIGHT:
            metrics().shadow_skipped.inc(len(picked))
            return
        task = asyncio.create_task(self._score(picked))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _score(self, picked: list[Traced]) -> None:
        try:
            outputs = await self.tiers.shadow([t.trace.text or "" for t in picked])
        except Exception as exc:
            log.warning("shadow scoring failed (%s); %d samples dropped", type(exc).__name__, len(picked))
            metrics().shadow_skipped.inc(len(picked))
            return
        records = []
        for t, out in zip(picked, outputs, strict=True):
            champion = t.trace.model
            if champion is None or len(out.probs) != len(champion.probs):  # the challenger went away meanwhile
                continue
            (label_a, conf_a), (label_b, conf_b) = top(champion), top(out)
            records.append(
                ShadowRecord(
                    request_id=t.trace.request_id,
                    champion_tag=champion.model_tag,
                    champion_label=label_a,
                    champion_confidence=conf_a,
                    challenger_tag=out.model_tag,
                    challenger_label=label_b,
                    challenger_confidence=conf_b,
                    champion_probs=served_probs(champion.probs),
                    challenger_probs=served_probs(out.probs),
                )
            )
            metrics().shadow.labels(label_a, label_b).inc()
        self.file.append(records)
