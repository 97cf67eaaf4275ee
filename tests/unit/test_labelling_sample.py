"""The labelling sample: uncertain answers always, a weighted random share of the rest, masked, capped per day."""

from __future__ import annotations

import json
import random

from fallback.labelling import LabellingSample, choose, margin
from sentiment.records import SampleRecord
from sentiment.settings import LabellingSettings
from tests.support.doubles import StandInModel

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
