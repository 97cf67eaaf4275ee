"""The service's side of the tiers without a server: model state, expected waits, budgets and load shedding.

The runner proxies are stand-ins only where a test injects a failure (a dead or hung runner); the HTTP tests
run the same code against real `bentoml serve` processes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from api.coalesce import Coalescer
from api.http import LoadShedder
from api.monitoring import Monitor
from api.request import Pipeline
from api.runner_tiers import RunnerTiers
from fallback.guard import ResourceGuard
from sentiment.language_id import detect_language
from sentiment.model.serving import ModelInfo
from sentiment.settings import Settings, load_settings


class FakeTransformer:
    """``.to_async.info()`` as the runner answers it; ``state`` flips between up, dead and hung."""

    def __init__(self) -> None:
        self.state = "up"
        self.asks = 0
        self.to_async = SimpleNamespace(info=self.info, predict=self.predict)

    async def info(self) -> ModelInfo:
        self.asks += 1
        if self.state == "dead":
            raise ConnectionRefusedError("runner gone")
        if self.state == "hung":
            await asyncio.sleep(60)
        return ModelInfo(loaded=True, tag="review-sentiment:abc", backend="onnx-int8")

    async def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return [{"probs": [0.1, 0.1, 0.8], "unk_rate": 0.0, "oov_rate": 0.0} for _ in texts]


@pytest.fixture
def fast_settings(tmp_path: Path) -> Settings:
    return load_settings(
        paths={"data_dir": tmp_path}, service={"runner_info_recheck_s": 0.2, "runner_info_timeout_s": 0.2}
    )


def _tiers(settings: Settings, transformer: FakeTransformer) -> RunnerTiers:
    monitor = Monitor(settings.paths.predictions_log, 100)
    return RunnerTiers(settings, transformer, None, None, monitor)


def test_a_fresh_worker_waits_for_the_model_state_instead_of_answering_from_the_rules(fast_settings: Settings) -> None:
    async def main() -> None:
        tiers = _tiers(fast_settings, FakeTransformer())
        # Many first requests at once: every one must see the loaded model, with one ask between them.
        answers = await asyncio.gather(*(tiers.model_unavailable() for _ in range(20)))
        assert answers == [None] * 20
        assert tiers.transformer.asks == 1

    asyncio.run(main())


@pytest.mark.parametrize("failure", ["dead", "hung"])
def test_a_dead_or_hung_model_runner_is_seen_within_two_checks(fast_settings: Settings, failure: str) -> None:
    async def main() -> None:
        transformer = FakeTransformer()
        tiers = _tiers(fast_settings, transformer)
        assert (await tiers.model_info(wait=True)).loaded
        transformer.state = failure
        loop = asyncio.get_running_loop()
        start = loop.time()
        while (await tiers.model_info()).loaded:  # what requests see, never blocking on the ask
            await asyncio.sleep(0.02)
            assert loop.time() - start < 1.0
        seen_after = loop.time() - start
        assert seen_after <= 0.2 + 0.2 + 0.1  # re-check interval + ask time limit (+ scheduling)
        assert await tiers.model_unavailable() is not None
        transformer.state = "up"
        await asyncio.sleep(0.25)
        assert (await tiers.model_info(wait=True)).loaded  # back once the runner answers again

    asyncio.run(main())


def test_coalescer_expects_the_queue_ahead_times_the_cost_per_text() -> None:
    async def main() -> None:
        async def call(texts: list[str]) -> list[str]:
            await asyncio.sleep(0.01 * len(texts))
            return texts

        c: Coalescer[str] = Coalescer(call, max_in_flight=1, max_texts=4)
        assert c.expected_wait_s(4) == 0.0  # nothing learnt yet
        await c(["a"] * 4)
        first = asyncio.create_task(c(["b"] * 4))  # in flight
        waiting = [asyncio.create_task(c(["c"] * 4)) for _ in range(2)]  # queued behind it
        await asyncio.sleep(0)
        per_text = c.expected_wait_s(1) / 13  # 4 in flight + 8 queued + this one
        assert 0.005 < per_text < 0.05
        assert c.expected_wait_s(3) == pytest.approx(per_text * 15)
        await asyncio.gather(first, *waiting)
        assert c.expected_wait_s(4) == 0.0  # idle again: a call would go out at once

    asyncio.run(main())


def test_a_client_may_shorten_the_budget_but_never_lengthen_it(fast_settings: Settings) -> None:
    pipeline = Pipeline(fast_settings, _tiers(fast_settings, FakeTransformer()), ResourceGuard(90, 95))
    assert pipeline.budget_s(None) == 1.0
    assert pipeline.budget_s("250") == 0.25
    assert pipeline.budget_s("5000") == 1.0
    for junk in ("abc", "-5", "0", "nan", ""):
        assert pipeline.budget_s(junk) == 1.0
    assert pipeline.budget_s(None, batch=True) == 10.0 and pipeline.budget_s("300", batch=True) == 0.3


def test_load_shedder_answers_503_with_retry_after_past_its_limit() -> None:
    release = asyncio.Event()
    sent: list[list[dict[str, Any]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def main() -> None:
        shedder = LoadShedder(app, frozenset({"/predict"}), max_in_flight=2)

        async def request(path: str) -> None:
            out: list[dict[str, Any]] = []
            sent.append(out)

            async def send(message: dict[str, Any]) -> None:
                out.append(message)

            await shedder({"type": "http", "path": path, "method": "POST"}, None, send)

        held = [asyncio.create_task(request("/predict")) for _ in range(2)]
        await asyncio.sleep(0)
        await request("/predict")  # the third is shed at once
        shed = sent[-1]
        assert shed[0]["status"] == 503 and (b"retry-after", b"1") in shed[0]["headers"]
        assert "overloaded" in json.loads(shed[1]["body"])["error"]
        other = asyncio.create_task(request("/health"))  # other paths are never shed
        release.set()
        await asyncio.gather(*held, other)
        assert [m[0]["status"] for m in sent] == [200, 200, 503, 200]
        assert shedder.in_flight == 0

    asyncio.run(main())


def test_logged_review_text_is_masked_and_the_log_rotates(tmp_path: Path) -> None:
    from sentiment.jsonl import iter_records
    from sentiment.records import PredictionRecord

    settings = load_settings(
        paths={"data_dir": tmp_path},
        service={"log_text": True},
        rotation={"max_bytes": 600, "max_age_s": None, "keep": None},
    )
    monitor = Monitor.from_settings(settings)
    for i in range(6):
        monitor.record(
            [
                PredictionRecord(
                    request_id=f"r{i}",
                    text_len=40,
                    label=None,
                    confidence=0.0,
                    status="rejected",
                    reason="too_short: x",
                    tier="gate",
                    text=f"card 4111 1111 1111 1111 number {i}",
                )
            ]
        )
    records = list(iter_records(settings.paths.predictions_log))
    assert [r["request_id"] for r in records] == [f"r{i}" for i in range(6)]  # nothing lost across rotations
    assert all("4111" not in r["text"] and "[CARD]" in r["text"] for r in records)
    assert len(list(tmp_path.glob("predictions*.jsonl"))) > 1


def test_an_estimate_inflated_by_a_hang_recovers_once_the_runner_answers_again() -> None:
    """Drill e of tools/chaos.py: after a 6 s hang every request went to the rules, for good."""

    async def main() -> None:
        hang = asyncio.Event()

        async def call(texts: list[str]) -> list[str]:
            if not hang.is_set():
                await asyncio.sleep(0.5)  # the hung runner: half a second for one text
                hang.set()
            else:
                await asyncio.sleep(0.001 * len(texts))
            return texts

        c: Coalescer[str] = Coalescer(call, max_in_flight=2, max_texts=8)
        await c(["a"])
        assert c.expected_wait_s(1) == 0.0  # idle: the next call goes out at once, whatever the estimate says
        first = asyncio.create_task(c(["b"]))
        await asyncio.sleep(0)
        assert c.expected_wait_s(1) > 0.5  # busy: the inflated estimate still warns while calls are out
        await first
        for _ in range(30):
            await c(["x"])
        busy = asyncio.create_task(c(["y"]))
        await asyncio.sleep(0)
        assert c.expected_wait_s(1) < 0.05  # learnt again from the calls let through
        await busy

    asyncio.run(main())


def test_a_silent_model_runner_fails_liveness_but_a_loading_one_does_not(tmp_path: Path) -> None:
    settings = load_settings(
        paths={"data_dir": tmp_path},
        service={"runner_info_recheck_s": 0.05, "runner_info_timeout_s": 0.05, "runner_dead_s": 0.3},
    )

    async def main() -> None:
        transformer = FakeTransformer()
        tiers = _tiers(settings, transformer)
        pipeline = Pipeline(settings, tiers, ResourceGuard(90, 95))
        await tiers.model_info(wait=True)
        assert pipeline.failing() is None
        transformer.state = "hung"
        for _ in range(40):  # about 0.5 s of probes
            await tiers.model_info()
            await asyncio.sleep(0.0125)
        assert "silent" in (pipeline.failing() or "")
        transformer.state = "up"
        await asyncio.sleep(0.06)
        await tiers.model_info(wait=True)
        assert pipeline.failing() is None and tiers.silent_for_s() == 0.0

    asyncio.run(main())


def test_load_shedder_holds_what_it_answers_within_the_budget() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    shedder = LoadShedder(app, frozenset({"/predict"}), max_in_flight=1000, budget_s=0.5, min_in_flight=8)
    assert shedder.limit(100.0) == 8  # idle: the floor
    shedder._answered.extend(99.2 + i * 0.001 for i in range(300))  # 300 answers in the last second
    assert shedder.limit(100.0) == 150  # half a second's worth
    assert shedder.limit(101.5) == 8  # a second later they have aged out
    shedder._answered.extend(101.0 + i * 0.0001 for i in range(5000))
    assert shedder.limit(101.5) == 1000  # never past the hard cap


def test_urgent_language_check_runs_in_process_without_the_hop(fast_settings: Settings) -> None:
    """Under overload the language gate too is checked inline: same verdicts, the language runner not called."""

    class Unreachable:
        @property
        def to_async(self) -> Any:
            raise AssertionError("the language runner was called for an urgent request")

    tiers = RunnerTiers(
        fast_settings, FakeTransformer(), Unreachable(), None, Monitor(fast_settings.paths.predictions_log, 100)
    )
    texts = ["Terrible, it broke after a day.", "Ce produit est vraiment excellent, je le recommande."]
    langs = asyncio.run(tiers.languages(texts, urgent=True))
    assert langs == [detect_language(t, fast_settings.gates) for t in texts]
    assert [r.accepted for r in langs] == [True, False]


def test_urgent_rules_answer_in_process_without_the_hop(fast_settings: Settings) -> None:
    """Under overload the API answers from the same rules inline: the rules runner is not called at all."""

    class Unreachable:
        @property
        def to_async(self) -> Any:
            raise AssertionError("the rules runner was called for an urgent request")

    tiers = RunnerTiers(
        fast_settings, FakeTransformer(), None, Unreachable(), Monitor(fast_settings.paths.predictions_log, 100)
    )
    texts = ["Terrible, it broke after a day.", "The box was brown."]
    verdicts = asyncio.run(tiers.rules(texts, urgent=True))
    assert verdicts == [tiers.keyword_rules.match(t) for t in texts] and verdicts[0].label is not None
