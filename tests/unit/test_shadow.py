"""Shadow scoring off the response path, and the summary /stats and the dashboard show of it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from api.shadow import MAX_IN_FLIGHT, Shadow
from fallback.decide import Trace, Traced
from sentiment.contract import Prediction, Reason
from sentiment.jsonl import iter_records
from sentiment.model.serving import ModelInfo
from sentiment.outputs import ModelOutput
from sentiment.settings import load_settings
from sentiment.shadow_log import summarize


def _traced(i: int, probs: list[float] | None) -> Traced:
    model = ModelOutput(probs=probs, unk_rate=0, oov_rate=0, model_tag="m:champion") if probs else None
    return Traced(
        prediction=Prediction.ok("positive", 0.9) if probs else Prediction.rejected(Reason.too_short, "x"),
        trace=Trace(request_id=f"r{i}", tier="model" if probs else "gate", text=f"text {i}", model=model),
    )


class FakeTiers:
    def __init__(self, challenger: str | None, answer: list[float], fail: bool = False) -> None:
        self.info = ModelInfo(loaded=True, tag="m:champion", challenger=challenger)
        self.answer, self.fail = answer, fail
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()

    async def shadow(self, texts: list[str]) -> list[ModelOutput]:
        self.calls.append(texts)
        await self.release.wait()
        if self.fail:
            raise ConnectionError("challenger gone")
        return [ModelOutput(probs=self.answer, unk_rate=0, oov_rate=0, model_tag="m:challenger") for _ in texts]


def _shadow(tmp_path: Path, tiers: Any, share: float = 1.0) -> Shadow:
    settings = load_settings(paths={"data_dir": tmp_path}, service={"shadow_share": share})
    return Shadow(settings, tiers)


def test_shadowed_answers_are_logged_after_the_response(tmp_path: Path) -> None:
    async def main() -> None:
        tiers = FakeTiers("m:challenger", [0.7, 0.2, 0.1])
        shadow = _shadow(tmp_path, tiers)
        traced = [_traced(0, [0.1, 0.1, 0.8]), _traced(1, None), _traced(2, [0.6, 0.3, 0.1])]
        shadow.after(traced)  # returns at once: the caller's answer never waits for the challenger
        await asyncio.sleep(0)
        assert tiers.calls == [["text 0", "text 2"]]  # only what tier 1 answered
        assert not shadow.file.path.exists()
        tiers.release.set()
        await asyncio.gather(*shadow._running)

    asyncio.run(main())
    records = list(iter_records(tmp_path / "shadow.jsonl"))
    assert [(r["request_id"], r["champion_label"], r["challenger_label"]) for r in records] == [
        ("r0", "positive", "negative"),
        ("r2", "negative", "negative"),
    ]
    assert records[0]["champion_probs"] == [0.1, 0.1, 0.8] and records[0]["challenger_probs"] == [0.7, 0.2, 0.1]
    summary = summarize(records)
    assert summary.n == 2 and summary.agreement == 0.5 and summary.challenger_tag == "m:challenger"
    assert summary.confusion["positive"]["negative"] == 1 and summary.confusion["negative"]["negative"] == 1


def test_no_challenger_or_no_share_means_no_shadow_calls(tmp_path: Path) -> None:
    async def main() -> None:
        for tiers, share in ((FakeTiers(None, [1, 0, 0]), 1.0), (FakeTiers("m:c", [1, 0, 0]), 0.0)):
            _shadow(tmp_path, tiers, share).after([_traced(0, [0.1, 0.1, 0.8])])
            assert tiers.calls == []

    asyncio.run(main())


def test_a_busy_or_failing_challenger_costs_only_samples(tmp_path: Path) -> None:
    async def main() -> None:
        tiers = FakeTiers("m:challenger", [0.1, 0.1, 0.8], fail=True)
        shadow = _shadow(tmp_path, tiers)
        for i in range(MAX_IN_FLIGHT + 3):
            shadow.after([_traced(i, [0.1, 0.1, 0.8])])
            await asyncio.sleep(0)
        assert len(tiers.calls) == MAX_IN_FLIGHT  # the rest were skipped, not queued
        tiers.release.set()
        await asyncio.gather(*shadow._running)  # the failures were absorbed

    asyncio.run(main())
    assert not (tmp_path / "shadow.jsonl").exists()


def test_summary_keeps_only_the_newest_pairing() -> None:
    rows = [
        dict(
            request_id="a",
            champion_tag="m:1",
            champion_label="positive",
            champion_confidence=0.9,
            challenger_tag="m:old",
            challenger_label="negative",
            challenger_confidence=0.8,
        ),
        dict(
            request_id="b",
            champion_tag="m:1",
            champion_label="positive",
            champion_confidence=0.9,
            challenger_tag="m:new",
            challenger_label="positive",
            challenger_confidence=0.7,
        ),
    ]
    summary = summarize(rows)
    assert summary.n == 1 and summary.agreement == 1.0 and summary.challenger_tag == "m:new"
    assert summarize([]).agreement is None
