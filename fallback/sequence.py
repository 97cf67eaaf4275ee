"""The tier sequence, written once: admit -> language -> tier 1 (texts with words) -> confidence gate -> rules ->
resolve.

The BentoML API service, the in-process :class:`fallback.chain.Chain` and any batch scorer run this same
coroutine over their own :class:`fallback.tiers.Tiers`. Every text leaves with exactly one answer, in input order,
whatever a tier does: slow (time limit), failing, returning garbage or the wrong number of rows. Only cancellation
of the caller itself propagates.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from fallback.clauses import disagreement, to_check
from fallback.decide import (
    Failure,
    Traced,
    admit,
    answered_by_model,
    check_rows,
    failed,
    internal_error,
    language_gate,
    reads_words,
    resolve,
)
from fallback.keywords import RuleVerdict
from fallback.tiers import Tiers
from sentiment.contract import Reason
from sentiment.language_id import LanguageResult
from sentiment.outputs import ModelOutput
from sentiment.settings import GateSettings
from sentiment.validation import Validated

log = logging.getLogger(__name__)
T = TypeVar("T")
NOT_CONSULTED = RuleVerdict(label=None, detail="keyword rules: not consulted (tier 1 answered)")


def no_pressure() -> str | None:
    return None


class TierSequence:
    """One request's (or one batch's) way through the tiers.

    ``overlap``: ask the language gate and tier 1 at the same time (the service: an English review need not wait
    for both one after the other) or the language gate first (in-process: no model work on rejected text).
    ``pressure`` names resource pressure (then tier 1 is skipped) or returns None.
    """

    def __init__(
        self,
        tiers: Tiers,
        gates: GateSettings,
        *,
        pressure: Callable[[], str | None] = no_pressure,
        overlap: bool = True,
        rules_reserve_s: float = 0.0,
    ) -> None:
        self.tiers = tiers
        self.gates = gates
        self.pressure = pressure
        self.overlap = overlap
        self.rules_reserve_s = rules_reserve_s

    async def run(
        self, raws: Sequence[object], request_ids: Sequence[str], budget_s: float | None = None
    ) -> list[Traced]:
        """``budget_s``: answer within about this many seconds; tier 1 gets what is left after the earlier steps,
        less ``rules_reserve_s`` for the rules' answer (None: only the model's own time limit applies)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s - self.rules_reserve_s if budget_s is not None else None
        results: list[Traced | None] = [None] * len(raws)
        admitted: list[tuple[int, Validated]] = []
        for i, (raw, rid) in enumerate(zip(raws, request_ids, strict=True)):
            step = _guarded(rid, functools.partial(admit, raw, rid, self.gates))
            if isinstance(step, Traced):
                results[i] = step
            else:
                admitted.append((i, step))
        if admitted:
            try:
                await self._through_tiers(admitted, request_ids, results, deadline)
            except Exception:  # a bug or a tier's surprise: still one contract answer per text
                log.exception("tier sequence failed after admission")
                for i, _ in admitted:
                    if results[i] is None:
                        results[i] = internal_error(request_ids[i], "tier sequence failure")
        return [r if r is not None else internal_error(request_ids[i], "no answer") for i, r in enumerate(results)]

    async def _through_tiers(
        self,
        admitted: list[tuple[int, Validated]],
        ids: Sequence[str],
        results: list[Traced | None],
        deadline: float | None,
    ) -> None:
        texts = [v.text for _, v in admitted]
        if self.overlap:
            refused = await self._refusal(len(texts), deadline)
            if refused is None:
                langs, outputs = await asyncio.gather(self._languages(texts), self._call_model(texts, deadline))
            else:  # an overloaded request is already late: the language check too takes the quickest way
                outputs = refused
                first = refused[0]
                late = isinstance(first, Failure) and first.code == Reason.overload
                langs = await self._languages(texts, late)
        else:
            langs = await self._languages(texts)
        open_: list[int] = []  # positions in `admitted` still without an answer
        for k, ((i, v), lang) in enumerate(zip(admitted, langs, strict=True)):
            gate = _guarded(ids[i], functools.partial(language_gate, v, lang, ids[i]))
            if gate is not None:
                results[i] = gate
            else:
                open_.append(k)
        wordless = {k: f for k in open_ if (f := reads_words(langs[k])) is not None}
        if not self.overlap:
            readable = [k for k in open_ if k not in wordless]
            accepted = await self._model([texts[k] for k in readable], deadline)
            outputs = [Failure(code=Reason.model_error, detail="not asked")] * len(texts)
            for k, out in zip(readable, accepted, strict=True):
                outputs[k] = out
        for k, why in wordless.items():
            outputs[k] = why
        mixed = await self._mixed(texts, open_, outputs, deadline) if self.gates.clause_check else {}
        needs_rules = [k for k in open_ if k in mixed or not answered_by_model(outputs[k], self.gates)]
        urgent = any(isinstance(out := outputs[k], Failure) and out.code == Reason.overload for k in needs_rules)
        verdicts = dict(zip(needs_rules, await self._rules([texts[k] for k in needs_rules], urgent), strict=True))
        for k in open_:
            i, v = admitted[k]
            results[i] = _guarded(
                ids[i],
                functools.partial(
                    resolve, v, ids[i], langs[k], outputs[k], verdicts.get(k, NOT_CONSULTED), self.gates, mixed.get(k)
                ),
            )

    async def _mixed(
        self, texts: list[str], open_: list[int], outputs: list[ModelOutput | Failure], deadline: float | None
    ) -> dict[int, str]:
        """Positions whose confident answer tier 1 contradicts on one of its clauses, with why (one more tier-1
        call for all their clauses). A clause call that fails leaves the answers as they were."""
        plan: dict[int, tuple[ModelOutput, list[str]]] = {}
        for k in open_:
            out = outputs[k]
            if isinstance(out, ModelOutput):
                clauses = to_check(texts[k], out, self.gates.confidence_gate, self.gates.clause_max_words)
                if clauses:
                    plan[k] = (out, clauses)
        if not plan:
            return {}
        rows = await self._model([c for _, clauses in plan.values() for c in clauses], deadline)
        mixed: dict[int, str] = {}
        start = 0
        for k, (whole, clauses) in plan.items():
            why = disagreement(whole, clauses, rows[start : start + len(clauses)], self.gates.clause_min_confidence)
            start += len(clauses)
            if why is not None:
                mixed[k] = why
        return mixed

    async def _model(self, texts: list[str], deadline: float | None) -> list[ModelOutput | Failure]:
        """Tier 1 or the reason it gave no answer; never raises."""
        if not texts:
            return []
        return await self._refusal(len(texts), deadline) or await self._call_model(texts, deadline)

    async def _refusal(self, n: int, deadline: float | None) -> list[ModelOutput | Failure] | None:
        """Why tier 1 is not asked at all (no model, resource pressure, a queue longer than the budget), or None."""
        try:
            missing = await self.tiers.model_unavailable()
        except Exception as exc:
            missing = f"model state unknown ({type(exc).__name__})"
        if missing:
            return failed(n, Reason.model_unavailable, missing)
        try:
            pressure = self.pressure()
        except Exception as exc:  # a broken sensor must not take the chain down
            log.warning("resource guard failed: %s", exc)
            pressure = None
        if pressure:
            return failed(n, Reason.resource_pressure, pressure)
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            expected = self.tiers.expected_wait_s(n)
            if expected > left:
                return failed(
                    n,
                    Reason.overload,
                    f"tier 1 expected to answer in {expected:.2f}s, {max(left, 0.0):.2f}s of the budget left",
                )
        return None

    async def _call_model(self, texts: list[str], deadline: float | None) -> list[ModelOutput | Failure]:
        """Ask tier 1, within its own time limit or what is left of the budget, whichever is shorter."""
        limit, by_budget = self.gates.model_timeout_s, False
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            if left < limit:
                limit, by_budget = max(left, 0.0), True
        try:
            rows = await asyncio.wait_for(self.tiers.predict(texts), timeout=limit)
        except TimeoutError:
            if by_budget:
                detail = f"tier 1 did not answer within the {limit:.2f}s left of the budget"
                return failed(len(texts), Reason.overload, detail)
            return failed(len(texts), Reason.model_error, f"model timed out after {limit:.1f}s")
        except Exception as exc:
            return failed(len(texts), Reason.model_error, f"model raised {type(exc).__name__}: {exc}")
        return check_rows(list(rows), len(texts))

    async def _languages(self, texts: list[str], urgent: bool = False) -> list[LanguageResult]:
        """The gate cannot be skipped: a failure here raises and the batch gets ``internal_error`` answers."""
        rows = list(await self.tiers.languages(texts, urgent))
        if len(rows) != len(texts):
            raise ValueError(f"language tier returned {len(rows)} rows for {len(texts)}")
        return [LanguageResult.model_validate(r) if isinstance(r, dict) else r for r in rows]

    async def _rules(self, texts: list[str], urgent: bool) -> list[RuleVerdict]:
        """Failed rules find no keyword: the review goes on to the human queue rather than being lost."""
        if not texts:
            return []
        try:
            rows = list(await self.tiers.rules(texts, urgent))
            if len(rows) != len(texts):
                raise ValueError(f"rules tier returned {len(rows)} rows for {len(texts)}")
            return [RuleVerdict.model_validate(r) if isinstance(r, dict) else r for r in rows]
        except Exception as exc:
            log.warning("rules tier failed (%s); escalating", type(exc).__name__)
            return [RuleVerdict(label=None, detail=f"keyword rules failed ({type(exc).__name__})")] * len(texts)


def _guarded(request_id: str, step: Callable[[], T]) -> T | Traced:
    """Last line of defence: a bug in a step still yields a contract answer, never an exception."""
    try:
        return step()
    except Exception as exc:
        log.exception("chain step failed for %s", request_id)
        return internal_error(request_id, f"{type(exc).__name__} in the chain")
