"""One request through the runners: the chain's pure steps, with each tier's work done by its own service.

The language runner and the transformer run concurrently (the model's work on a text that turns out not to be
English is thrown away; that is cheaper than making every English review wait for both one after the other).
The rules runner is asked only for texts tier 1 did not answer. A runner that fails or times out never fails
the request: the model becomes a ``Failure`` (answered by tiers 2/3), language and rules fall back to the same
code in-process.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp

from fallback.chain import Chain, Failure, Trace, Traced, check_rows, model_failed
from fallback.rules import RuleVerdict
from runners.coalesce import Coalescer
from runners.monitoring import Monitor
from runners.transformer import ModelInfo
from sentiment.contract import Prediction, Reason
from sentiment.language import LanguageResult, detect_language
from sentiment.model.inference import ModelOutput
from sentiment.validation import Validated

log = logging.getLogger(__name__)
T = TypeVar("T")
INFO_RECHECK_S = 1.0


class Pipeline:
    """Holds the chain, the three runner handles (``bentoml.depends`` proxies or local instances) and the monitor."""

    def __init__(self, chain: Chain, transformer: Any, language: Any, rules: Any, monitor: Monitor) -> None:
        self.chain = chain
        self.transformer = transformer
        self.language = language
        self.rules = rules
        self.monitor = monitor
        self.settings = chain.settings
        svc = self.settings.service
        # Concurrent requests share their calls to the two runners every request needs (see runners.coalesce).
        self._predict: Coalescer[Any] = Coalescer(
            lambda texts: _resent_if_dropped(lambda: self.transformer.to_async.predict(texts)),
            svc.coalesce_in_flight, svc.max_batch_texts,
        )
        self._detect: Coalescer[Any] = Coalescer(
            lambda texts: _resent_if_dropped(lambda: self.language.to_async.detect(texts)),
            svc.coalesce_in_flight, svc.max_batch_texts,
        )
        self._info = ModelInfo(loaded=False, error="model runner not asked yet")
        self._info_at = 0.0
        self._warm: asyncio.Task[None] | None = None

    # --- model state -------------------------------------------------------------------------------------------

    async def model_info(self, refresh: bool = False) -> ModelInfo:
        """Cached once loaded (a loaded model does not unload); re-asked at most once a second until then."""
        now = time.monotonic()
        if self._info.loaded and not refresh:
            return self._info
        if refresh or now - self._info_at >= INFO_RECHECK_S:
            self._info_at = now
            try:
                self._info = await asyncio.wait_for(self.transformer.to_async.info(), timeout=2.0)
            except Exception as exc:
                self._info = ModelInfo(loaded=False, error=f"model runner unreachable: {type(exc).__name__}")
        return self._info

    async def ready(self) -> tuple[bool, str]:
        """Ready = model loaded and the batcher warmed up, so the first real requests do not pay for either."""
        info = await self.model_info()
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
            await asyncio.gather(
                *(self.transformer.to_async.predict([text]) for _ in range(width)), return_exceptions=True
            )

    # --- runner calls ------------------------------------------------------------------------------------------

    async def _remote(self, runner: str, call: Awaitable[T], timeout: float) -> T:
        start = time.perf_counter()
        try:
            return await asyncio.wait_for(call, timeout=timeout)
        finally:
            self.monitor.observe_runner(runner, time.perf_counter() - start)

    async def _tier1(self, texts: list[str]) -> list[ModelOutput | Failure]:
        info = await self.model_info()
        if not info.loaded:
            return [Failure(code=Reason.model_unavailable, detail=info.error)] * len(texts)
        pressure = self.chain.pressure()
        if pressure is not None:
            return [pressure] * len(texts)
        timeout = self.settings.gates.model_timeout_s
        try:
            rows = await self._remote("transformer", self._predict(texts), timeout)
            return check_rows([ModelOutput.model_validate(r) if isinstance(r, dict) else r for r in rows], len(texts))
        except TimeoutError:
            return model_failed(len(texts), f"model timed out after {timeout:.1f}s")
        except Exception as exc:
            return model_failed(len(texts), f"model runner failed: {type(exc).__name__}: {exc}")

    async def _or_local(self, runner: str, call: Awaitable[list[Any]], local: Callable[[], list[T]]) -> list[T]:
        """A CPU runner's answer, or the same function run here if the runner is down: the answer must not change.
        The local run goes to a thread so that it never blocks the event loop every other request waits on."""
        try:
            return await self._remote(runner, call, timeout=5.0)
        except Exception as exc:
            log.warning("%s runner failed (%s); answering in-process", runner, type(exc).__name__)
            return await asyncio.to_thread(local)

    async def _languages(self, texts: list[str]) -> list[LanguageResult]:
        g = self.settings.gates
        raw = await self._or_local(
            "language",
            self._detect(texts),
            lambda: [detect_language(t, g) for t in texts],
        )
        return [LanguageResult.model_validate(r) if isinstance(r, dict) else r for r in raw]

    async def _rules(self, texts: list[str]) -> list[RuleVerdict]:
        if not texts:
            return []
        raw = await self._or_local(
            "rules",
            _resent_if_dropped(lambda: self.rules.to_async.match(texts)),
            lambda: [self.chain.rules.match(t) for t in texts],
        )
        return [RuleVerdict.model_validate(r) if isinstance(r, dict) else r for r in raw]

    # --- the request -------------------------------------------------------------------------------------------

    async def classify(self, raws: Sequence[str]) -> list[Prediction]:
        """Every text gets exactly one answer, in order; every answer is logged."""
        start = time.perf_counter()
        ids = [uuid.uuid4().hex for _ in raws]
        results: list[Traced | None] = [None] * len(raws)
        admitted: list[tuple[int, Validated]] = []
        for i, raw in enumerate(raws):
            step = self._guarded(ids[i], lambda raw=raw, rid=ids[i]: self.chain.admit(raw, rid))
            if isinstance(step, Traced):
                results[i] = step
            else:
                admitted.append((i, step))
        if admitted:
            try:
                await self._through_tiers(admitted, ids, results)
            except Exception:  # a bug or a runner surprise: still one contract answer per text, never a 500
                log.exception("pipeline failed after admission")
                for i, _ in admitted:
                    if results[i] is None:
                        results[i] = _internal_error(ids[i], "pipeline failure")
        traced = [r for r in results if r is not None]
        self._log(traced, (time.perf_counter() - start) * 1000.0)
        return [t.prediction for t in traced]

    async def _through_tiers(
        self, admitted: list[tuple[int, Validated]], ids: list[str], results: list[Traced | None]
    ) -> None:
        texts = [v.text for _, v in admitted]
        langs, outputs = await asyncio.gather(self._languages(texts), self._tier1(texts))
        open_: list[int] = []  # positions in `admitted` still without an answer
        for k, ((i, v), lang) in enumerate(zip(admitted, langs, strict=True)):
            gate = self._guarded(ids[i], lambda v=v, lang=lang, rid=ids[i]: self.chain.language_gate(v, lang, rid))
            if gate is not None:
                results[i] = gate
            else:
                open_.append(k)
        # Rules are needed only where tier 1 gave no answer the chain would accept as is.
        gate = self.settings.gates.confidence_gate
        needs_rules = [k for k in open_ if not isinstance(outputs[k], ModelOutput) or max(outputs[k].probs) < gate]
        verdicts = dict(zip(needs_rules, await self._rules([texts[k] for k in needs_rules]), strict=True))
        no_rule = RuleVerdict(label=None, detail="keyword rules: not consulted (tier 1 answered)")
        for k in open_:
            i, v = admitted[k]
            results[i] = self._guarded(
                ids[i],
                lambda v=v, k=k, rid=ids[i]: self.chain.resolve(v, rid, langs[k], outputs[k], verdicts.get(k, no_rule)),
            )

    def _guarded(self, request_id: str, step: Callable[[], T]) -> T | Traced:
        """Last line of defence: a bug in a step still yields a contract answer, never a 500."""
        try:
            return step()
        except Exception as exc:
            log.exception("chain step failed for %s", request_id)
            return _internal_error(request_id, f"{type(exc).__name__} in the service")

    def _log(self, traced: list[Traced], latency_ms: float) -> None:
        tag = self._info.tag
        log_text = self.settings.service.log_text
        records = [t.log_record(tag, latency_ms, log_text) for t in traced]
        try:
            self.monitor.record(records)
        except Exception as exc:  # a full disk or a metrics hiccup must not turn answers into errors
            log.error("could not log %d predictions: %s", len(records), exc)


async def _resent_if_dropped(call: Callable[[], Awaitable[T]]) -> T:
    """A runner call, sent again once if the connection dropped under it.

    BentoML's client (1.4.38) used to drop calls when it replaced its HTTP session (2 in 500 requests at 25 req/s;
    runners.patches.defer_session_close fixes that); a runner restarting drops them too. Runner calls are pure
    functions of their input, so sending one again is safe.
    """
    try:
        return await call()
    except aiohttp.ClientConnectionError:
        return await call()


def _internal_error(request_id: str, detail: str) -> Traced:
    pred = Prediction.fallback(Reason.internal_error, detail, None, 0.0)
    return Traced(prediction=pred, trace=Trace(request_id=request_id, tier="gate"))
