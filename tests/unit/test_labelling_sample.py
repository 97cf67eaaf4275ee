"""The labelling sample: uncertain answers always, a weighted random share of the rest, masked, capped per day."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

from api.monitoring import Monitor
from api.request import Pipeline
from api.runner_tiers import RunnerTiers
from fallback.keywords import KeywordRules
from fallback.label_sample import LabellingSample, choose, drop_boost, margin
from sentiment.estimation import Interval, PerformanceEstimate, estimate
from sentiment.language_id import detect_language
from sentiment.model.registry import ModelMetadata
from sentiment.model.serving import ModelInfo
from sentiment.records import SampleRecord
from sentiment.settings import LabellingSettings, Settings
from tests.support.doubles import FixedGuard, StandInModel

CLOSE = "The strings are fine but the tuning pegs slip, call me at jane.doe@example.com about it."
SURE = "I love this guitar strap, it works great and feels sturdy."
LOW = "The package arrived on a Tuesday and it was a box."


def test_margin_is_top_one_minus_top_two():
    assert margin([0.2, 0.45, 0.35]) == 0.45 - 0.35
    assert margin([0.0, 0.0, 1.0]) == 1.0


def test_choose_takes_every_uncertain_answer_and_weights_the_random_ones():
    cfg = LabellingSettings(max_margin=0.2, random_share=0.25, daily_cap=100)
    picks = choose([0.1, 0.9, 0.9, 0.05], cfg, draws=[0.99, 0.1, 0.3, 0.99])
    assert picks == [(0, 1.0), (1, 4.0), (3, 1.0)]


def test_choose_stops_at_the_daily_cap_counting_what_was_taken_before():
    cfg = LabellingSettings(max_margin=0.5, random_share=0.0, daily_cap=3)
    assert [i for i, _ in choose([0.1] * 5, cfg, [0.0] * 5, taken=1)] == [0, 1]
    assert choose([0.1] * 5, cfg, [0.0] * 5, taken=3) == []


def test_the_chain_offers_uncertain_answers_masked_and_never_queued_ones(settings, make_chain):
    settings.labelling = LabellingSettings(max_margin=0.2, random_share=0.0, daily_cap=10)
    sample = LabellingSample.from_settings(settings)
    model = StandInModel({CLOSE: (0.05, 0.5, 0.45), SURE: (0.02, 0.03, 0.95), LOW: (0.34, 0.33, 0.33)})
    chain = make_chain(model, sample=sample)
    traced = chain.classify_many([CLOSE, SURE, LOW], ["close", "sure", "low"])
    assert traced[2].escalation is not None  # the queue has it already
    rows = [json.loads(line) for line in settings.paths.labelling_sample.read_text().splitlines()]
    assert [r["request_id"] for r in rows] == ["close"]
    rec = SampleRecord.model_validate(rows[0])
    assert rec.selection == "margin" and rec.weight == 1.0 and abs(rec.margin - 0.05) < 1e-6
    assert "jane.doe@example.com" not in rec.text and "tuning pegs slip" in rec.text
    assert rec.model.label is not None and rec.model.label.value == "neutral"


def test_the_random_share_is_recorded_with_its_weight(settings, make_chain):
    settings.labelling = LabellingSettings(max_margin=0.0, random_share=0.5, daily_cap=1000)
    sample = LabellingSample(settings.paths.labelling_sample, settings.labelling, rng=random.Random(0))
    chain = make_chain(StandInModel(default=(0.02, 0.03, 0.95)), sample=sample)
    chain.classify_many([SURE] * 400)
    got = sample.read()
    assert 150 < len(got) < 250
    assert {(r.selection, r.weight) for r in got} == {("random", 2.0)}


def test_the_cap_holds_across_a_restart(settings, make_chain):
    settings.labelling = LabellingSettings(max_margin=0.5, random_share=0.0, daily_cap=5)
    texts = [f"{CLOSE} number {i}" for i in range(4)]
    model = StandInModel({t: (0.05, 0.5, 0.45) for t in texts})
    make_chain(model, sample=LabellingSample.from_settings(settings)).classify_many(texts)
    make_chain(model, sample=LabellingSample.from_settings(settings)).classify_many(texts)
    assert len(LabellingSample.from_settings(settings).read()) == 5


def test_a_broken_sample_file_never_breaks_an_answer(settings, make_chain, tmp_path):
    settings.labelling = LabellingSettings(max_margin=0.5, random_share=0.0, daily_cap=5)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    sample = LabellingSample(blocker / "labelling_sample.jsonl", settings.labelling)
    chain = make_chain(StandInModel({CLOSE: (0.05, 0.5, 0.45)}), sample=sample)
    assert chain.classify(CLOSE).label is not None
    assert sample.file.state().waiting == 1


def _estimate(macro_f1: float, n: int = 300, tag: str = "m:1") -> PerformanceEstimate:
    """A real estimate over a synthetic window, its macro-F1 then set to the figure a test needs."""
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, (n, 3))
    e = estimate(np.exp(z) / np.exp(z).sum(1, keepdims=True), model_tag=tag)
    return e.model_copy(update={"macro_f1": Interval(value=macro_f1, lo=macro_f1 - 0.02, hi=macro_f1 + 0.02)})


def test_a_boost_multiplies_the_random_share_up_to_one_and_the_weight_is_one_over_the_share_used():
    cfg = LabellingSettings(max_margin=0.2, random_share=0.1, daily_cap=100)
    # share 0.1 * 5 = 0.5: a draw of 0.4 is taken (weight 2), 0.6 is not; an uncertain answer keeps weight 1
    assert choose([0.9, 0.9, 0.1], cfg, draws=[0.4, 0.6, 0.99], boost=5.0) == [(0, 2.0), (2, 1.0)]
    assert choose([0.9, 0.9], cfg, draws=[0.4, 0.6]) == []  # unboosted: share 0.1
    capped = LabellingSettings(max_margin=0.0, random_share=0.3, daily_cap=100)
    assert choose([0.9] * 3, capped, draws=[0.999, 0.5, 0.0], boost=5.0) == [(0, 1.0), (1, 1.0), (2, 1.0)]


def test_the_boost_needs_a_drop_beyond_the_setting_below_the_held_out_figure_over_enough_answers(
    settings: Settings,
) -> None:
    settings.labelling = LabellingSettings(boost_on_drop=4.0)
    assert settings.drift.performance_drop == 0.05 and settings.estimation.min_answers == 200
    assert drop_boost(_estimate(0.80), 0.86, settings) == 4.0
    assert drop_boost(_estimate(0.82), 0.86, settings) == 1.0  # 0.04 below: within the setting
    assert drop_boost(_estimate(0.90), 0.86, settings) == 1.0
    assert drop_boost(_estimate(0.80, n=150), 0.86, settings) == 1.0  # too few answers to judge
    assert drop_boost(_estimate(0.80), None, settings) == 1.0  # a version without a held-out figure
    assert drop_boost(None, 0.86, settings) == 1.0  # no estimate yet


class _Transformer:
    """The transformer runner's two calls as it answers them, for a version whose held-out macro-F1 is 0.90."""

    def __init__(self) -> None:
        self.to_async = SimpleNamespace(info=self.info, predict=self.predict)

    async def info(self) -> ModelInfo:
        metadata = ModelMetadata(base_model="minilm", metrics={"test_macro_f1": 0.90})
        return ModelInfo(loaded=True, tag="m:1", metadata=metadata, backend="onnx-int8")

    async def predict(self, texts: list[str]) -> list[dict[str, object]]:
        return [{"probs": [0.02, 0.03, 0.95], "unk_rate": 0.0, "oov_rate": 0.0, "model_tag": "m:1"} for _ in texts]


def _cpu_runner(call: str, fn: Callable[[str], object]) -> SimpleNamespace:
    """A CPU runner's proxy answering with the function that runner serves."""

    async def answer(texts: list[str]) -> list[object]:
        return [fn(t) for t in texts]

    return SimpleNamespace(to_async=SimpleNamespace(**{call: answer}))


@pytest.mark.parametrize(
    ("estimated_f1", "share", "boosted"),
    [
        ({"m:1": 0.80}, 0.5, True),  # the serving version dropped 0.10 below its held-out 0.90: 0.1 * 5
        ({"m:1": 0.88}, 0.1, False),  # 0.02 below: no boost
        ({"m:0": 0.50, "m:1": 0.88}, 0.1, False),  # an older version's drop is not the serving one's
        ({}, 0.1, False),  # the monitor has not estimated yet
    ],
)
def test_the_service_samples_more_while_the_serving_versions_estimate_has_dropped(
    settings: Settings, estimated_f1: dict[str, float], share: float, boosted: bool
) -> None:
    settings.labelling = LabellingSettings(max_margin=0.0, random_share=0.1, daily_cap=10_000, boost_on_drop=5.0)
    language = _cpu_runner("detect", lambda t: detect_language(t, settings.gates))
    rules = _cpu_runner("match", KeywordRules().match)
    tiers = RunnerTiers(settings, _Transformer(), language, rules, Monitor.from_settings(settings))
    pipeline = Pipeline(settings, tiers, FixedGuard())
    pipeline.sample = LabellingSample(settings.paths.labelling_sample, settings.labelling, rng=random.Random(0))
    # What the monitor's last refresh found (injected: the request path must read it, never estimate itself).
    pipeline.monitor.estimates = {tag: _estimate(f1, tag=tag) for tag, f1 in estimated_f1.items()}
    texts = [f"I love this guitar strap, it works great and feels sturdy. Order {i}." for i in range(400)]

    async def main() -> None:
        await tiers.model_info(wait=True)
        answers = await pipeline.classify(texts, pipeline.budget_s(None, batch=True))
        assert {a.status.value for a in answers} == {"ok"}

    asyncio.run(main())
    got = pipeline.sample.read()
    assert abs(len(got) / len(texts) - share) < 0.06
    assert {(r.selection, r.weight, r.boosted) for r in got} == {("random", 1.0 / share, boosted)}
