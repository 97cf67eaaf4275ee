"""The whole chain with a real trained checkpoint: confident answers pass the gate, a genuinely unsure one
falls through to the rules or the human queue, and every answer keeps the contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentiment.contract import Label, Reason, Status
from sentiment.model.inference import SentimentModel
from tests.support.models import TrainedModel

# Plain statements of fact, no sentiment keyword: a sentiment model has nothing to be sure about.
FACTUAL = [
    "I bought this in March for my brother, who plays in a church band on Sundays.",
    "The package arrived on Tuesday in a brown box with a manual and two screws.",
    "It is a black tuner that clips on the headstock and runs on a coin battery.",
    "My daughter uses it with her nylon string guitar in the living room.",
]


@pytest.fixture(scope="module")
def real_model(trained_minilm: TrainedModel) -> SentimentModel:
    return SentimentModel(trained_minilm.path, trained_minilm.metadata, tag="test-sentiment:trained", num_threads=2)


@pytest.mark.slow
def test_chain_with_real_model_handles_confident_and_unsure_reviews(real_model, make_chain, settings) -> None:
    chain = make_chain(real_model)
    happy = chain.classify("Excellent strings, they sound great and I love them. Highly recommended!")
    assert (happy.status, happy.label) == (Status.ok, Label.positive)
    assert happy.confidence >= settings.gates.confidence_gate

    confidence = real_model.predict(FACTUAL).max(1)
    unsure = FACTUAL[int(np.argmin(confidence))]
    assert confidence.min() < settings.gates.confidence_gate, f"model is sure of every factual text: {confidence}"
    traced = chain.classify_traced(unsure, request_id="unsure-1")
    pred = traced.prediction
    assert pred.status is Status.fallback and traced.trace.tier in ("rules", "human")
    assert traced.trace.model is not None and max(traced.trace.model.probs) < settings.gates.confidence_gate
    if traced.trace.tier == "human":
        assert pred.reason_code is Reason.human_review and pred.label is None
        queued = [json.loads(line) for line in settings.paths.human_queue.read_text().splitlines()]
        assert [q["request_id"] for q in queued] == ["unsure-1"] and queued[0]["text"] == unsure
        assert queued[0]["reason_code"] == Reason.low_confidence.value
    else:
        assert pred.reason_code is Reason.low_confidence and pred.label is not None

    french = chain.classify("Ce produit est vraiment excellent, je le recommande à tous mes amis.")
    assert (french.status, french.reason_code) == (Status.rejected, Reason.not_english)
    for answer in (happy, pred, french):
        assert set(answer.model_dump()) == {"label", "confidence", "status", "reason"}
