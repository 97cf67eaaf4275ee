"""The tier interface over the three runner services (``bentoml.depends`` proxies, or local instances in tests).

What is particular to running tiers as services lives here and only here:
- concurrent requests share their calls to the transformer and language runners (:mod:`api.coalesce`);
- a connection dropped under a call is resent once (runner calls are pure functions of their input);
- a CPU runner that fails answers through the same function in-process, so its answer does not change;
- tier 1's state is asked of the transformer runner, at most once a second until it has a model.
The order of the tiers and every decision are :mod:`fallback.sequence`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from api.coalesce import Coalescer
from api.monitoring import Monitor
from fallback.keywords import KeywordRules, RuleVerdict
from sentiment.language_id import LanguageResult, detect_language
from sentiment.model.serving import ModelInfo
from sentiment.outputs import ModelOutput
from sentiment.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class RunnerTiers:
    """:class:`fallback.tiers.Tiers` over the transformer, language and rules services."""

    def __init__(self, settings: Settings, transformer: Any, language: Any, rules: Any, monitor: Monitor) -> None:
        self.settings = settings
        self.transformer = transformer
        self.language = language
        self.rules_runner = rules
        self.monitor = monitor
        self.keyword_rules = KeywordRules()
        svc = settings.service
        gather_s = svc.coalesce_gather_ms / 1000.0
        self._predict: Coalescer[Any] = Coalescer(
            lambda texts: resent_if_dropped(lambda: self.transformer.to_async.predict(texts)),
            svc.coalesce_in_flight,
            svc.coalesce_max_texts,
            gather_s,
        )
        self._detect: Coalescer[Any] = Coalescer(
            lambda texts: resent_if_dropped(lambda: self.language.to_async.detect(texts)),
            svc.coalesce_in_flight,
            svc.coalesce_max_texts,
            gather_s,
        )
        self.info = ModelInfo(loaded=False, error="model runner not asked yet")
        self._asked_at: float | None = None  # when the last answer (or failure) about the model came back
        self._asking: asyncio.Task[None] | None = None
        self._silent_since: float | None = None  # the runner stopped answering at all (dead or hung), or None

    # --- tier 1 ------------------------------------------------------------------------------------------------

    async def model_info(self, wait: bool = False) -> ModelInfo:
        """What the transformer runner says of its model, never older than ``runner_info_recheck_s`` plus one ask.

        Re-asked in the background (one ask at a time, shared by every caller), so that a runner that dies or hangs
        is seen within about two seconds and a request never waits on the ask. ``wait``, and the very first call of
        a fresh worker, wait for a current answer: a restarted API worker must not answer from the rules while the
        model runner is up.
        """
        svc = self.settings.service
        stale = self._asked_at is None or time.monotonic() - self._asked_at >= svc.runner_info_recheck_s
        if stale and (self._asking is None or self._asking.done()):
            self._asking = asyncio.create_task(self._ask())
        if self._asking is not None and (wait or self._asked_at is None):
            await asyncio.shield(self._asking)
        return self.info

    async def _ask(self) -> None:
        try:
            answer = await asyncio.wait_for(
                self.transformer.to_async.info(), timeout=self.settings.service.runner_info_timeout_s
            )
            self.info = ModelInfo.model_validate(answer, from_attributes=True)
            self._silent_since = None
        except Exception as exc:
            reason = "did not answer in time" if isinstance(exc, TimeoutError) else f"unreachable: {type(exc).__name__}"
            self.info = ModelInfo(loaded=False, error=f"model runner {reason}")
            self._silent_since = self._silent_since or time.monotonic()
        self._asked_at = time.monotonic()

    def silent_for_s(self) -> float:
        """How long the model runner has not answered at all (0 while it answers, loading or not)."""
        return time.monotonic() - self._silent_since if self._silent_since is not None else 0.0

    async def model_unavailable(self) -> str | None:
        info = await self.model_info()
        return None if info.loaded else info.error

    def expected_wait_s(self, n: int) -> float:
        return self._predict.expected_wait_s(n)

    async def shadow(self, texts: list[str]) -> list[ModelOutput]:
        """The challenger's answers (empty probabilities when none is loaded); failures are the caller's to drop."""
        rows = await self._timed("shadow", resent_if_dropped(lambda: self.transformer.to_async.shadow(texts)))
        return [ModelOutput.model_validate(r, from_attributes=True) for r in rows]

    async def predict(self, texts: list[str]) -> list[Any]:
        return await self._timed("transformer", self._predict(texts))

    # --- CPU tiers ---------------------------------------------------------------------------------------------

    async def languages(self, texts: list[str], urgent: bool = False) -> list[LanguageResult]:
        """Through the language runner, except under overload (``urgent``): as for the rules, the check runs here
        (its fast path costs well under a millisecond, the hop to the runner several)."""
        g = self.settings.gates
        if urgent:
            return [detect_language(t, g) for t in texts]
        raw = await self._or_local(
            "language", lambda: self._detect(texts), lambda: [detect_language(t, g) for t in texts]
        )
        return [LanguageResult.model_validate(r) if isinstance(r, dict) else r for r in raw]

    async def rules(self, texts: list[str], urgent: bool = False) -> list[RuleVerdict]:
        """Through the rules runner, except under overload (``urgent``): then the same rules run here, inline. They
        cost less per text than the hop to the runner costs this process alone, and an overloaded API worker is
        short of exactly that CPU."""
        if urgent:
            return [self.keyword_rules.match(t) for t in texts]
        raw = await self._or_local(
            "rules",
            lambda: resent_if_dropped(lambda: self.rules_runner.to_async.match(texts)),
            lambda: [self.keyword_rules.match(t) for t in texts],
        )
        return [RuleVerdict.model_validate(r) if isinstance(r, dict) else r for r in raw]

    # --- plumbing ----------------------------------------------------------------------------------------------

    async def _timed(self, runner: str, call: Awaitable[T]) -> T:
        start = time.perf_counter()
        try:
            return await call
        finally:
            self.monitor.observe_runner(runner, time.perf_counter() - start)

    async def _or_local(
        self, runner: str, call: Callable[[], Awaitable[list[Any]]], local: Callable[[], list[T]]
    ) -> list[Any]:
        """A CPU runner's answer, or the same function run here if the runner is down: the answer must not change.
        The local run goes to a thread so that it never blocks the event loop every other request waits on."""
        try:
            timeout = self.settings.service.cpu_runner_timeout_s
            return await asyncio.wait_for(self._timed(runner, call()), timeout=timeout)
        except Exception as exc:
            log.warning("%s runner failed (%s); answering in-process", runner, type(exc).__name__)
            return await asyncio.to_thread(local)


async def resent_if_dropped(call: Callable[[], Awaitable[T]]) -> T:
    """A runner call, sent again once if the connection dropped under it.

    BentoML's client (1.4.38) used to drop calls when it replaced its HTTP session
    (sentiment.bentoml_patches.defer_session_close fixes that); a runner restarting drops them too. Runner calls are
    pure functions of their input, so sending one again is safe.
    """
    try:
        return await call()
    except aiohttp.ClientConnectionError:
        return await call()
