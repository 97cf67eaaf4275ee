"""What the tier sequence needs from the world, and the in-process way to provide it.

The BentoML service provides the same interface over its runners (``api.runner_tiers``); a batch scorer can provide
it over whatever holds the model. The sequence (:mod:`fallback.sequence`) is the only code that decides in which
order tiers run, so every caller reaches the same answer for the same text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from fallback.keywords import KeywordRules, RuleVerdict
from sentiment.language_id import LanguageResult, detect_language
from sentiment.settings import GateSettings


class Tiers(Protocol):
    """Each call answers one row per text, in order; the sequence checks and bounds everything it gets back."""

    async def model_unavailable(self) -> str | None:
        """Why tier 1 cannot be asked at all (no model loaded), or None when it can."""
        ...

    async def predict(self, texts: list[str]) -> Sequence[object]:
        """Tier 1: calibrated probability rows (``ModelOutput`` or its dict form) for every text."""
        ...

    def expected_wait_s(self, n: int) -> float:
        """How long tier 1 would take to answer ``n`` more texts now (0 when unknown): lets a request with a
        deadline go to the rules at once instead of queueing for an answer it cannot wait for."""
        ...

    async def languages(self, texts: list[str], urgent: bool = False) -> Sequence[LanguageResult]:
        """The language gate. ``urgent``: tier 1 is overloaded, so answer the quickest way (the same check, in
        this process where the tiers have the choice)."""
        ...

    async def rules(self, texts: list[str], urgent: bool = False) -> Sequence[RuleVerdict]:
        """Tier 2. ``urgent``: tier 1 was overloaded, so the request is already late: answer the quickest way (the
        same rules, in this process where the tiers have the choice)."""
        ...


class Tier1Model(Protocol):
    """Anything that maps texts to class probabilities (N x 3, order of ``LABELS``)."""

    def predict(self, texts: Sequence[str]) -> Any: ...


class LocalTiers:
    """Every tier in this process: the model on its own thread (so a hung model can be timed out), the language
    gate and the rules inline."""

    def __init__(self, model: Tier1Model | None, gates: GateSettings, rules: KeywordRules | None = None) -> None:
        self.model = model
        self.gates = gates
        self.keyword_rules = rules or KeywordRules()
        # Not the loop's default executor: asyncio.run waits for that one at exit, and a hung model must not hang
        # the caller after its time limit.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tier1")

    async def model_unavailable(self) -> str | None:
        return None if self.model is not None else "no model loaded"

    def expected_wait_s(self, n: int) -> float:
        return 0.0  # no queue: the call runs now

    async def predict(self, texts: list[str]) -> Sequence[object]:
        assert self.model is not None
        predict = getattr(self.model, "predict_outputs", None) or self.model.predict
        rows = await asyncio.get_running_loop().run_in_executor(self._pool, predict, texts)
        return list(rows)

    async def languages(self, texts: list[str], urgent: bool = False) -> list[LanguageResult]:
        return [detect_language(t, self.gates) for t in texts]

    async def rules(self, texts: list[str], urgent: bool = False) -> list[RuleVerdict]:
        return [self.keyword_rules.match(t) for t in texts]
