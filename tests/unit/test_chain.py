"""Unit layer of the chain (spec section 9) with a stand-in model: every path yields a valid contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentiment.contract import Label, Prediction, Reason, Status
from tests.support.doubles import FixedGuard, StandInModel

POSITIVE = "I love this guitar strap, it works great and feels sturdy."
NEGATIVE = "Terrible cable, it broke after two days and the sound was awful."
BLAND = "The package arrived on a Tuesday and it was a box."


def test_confident_model_answer_is_ok(make_chain):
    chain = make_chain(StandInModel(default=(0.05, 0.05, 0.90)))
    assert chain.classify(POSITIVE) == Prediction(label=Label.positive, confidence=0.9, status=Status.ok, reason="")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", Reason.empty),
        ("   \n\t ", Reason.empty),
        (None, Reason.invalid_input),
        (42, Reason.invalid_input),
        (["a list"], Reason.invalid_input),
        ("Good", Reason.too_short),
        ("x" * 5001, Reason.too_long),
        ("Ce produit est vraiment excellent, je le recommande à tous mes amis.", Reason.not_english),
        ("这个产品质量很好，物流也很快，非常满意", Reason.not_english),
        ("Das Produkt ist leider nach zwei Wochen kaputt gegangen.", Reason.not_english),
        (b"\xff\xfe\xfa\xfb\xfc valid \xff\xfe", Reason.bad_encoding),
        ("Great\x00\x01\x02\x03 product", Reason.bad_encoding),
        ("asdf qwer zxcv", Reason.not_language),
        ("xqzvbn ptrkl jjjjjjj", Reason.not_language),
        ("!!!!!!!!", Reason.not_language),
    ],
)
def test_invalid_inputs_are_rejected_before_the_model(make_chain, raw, code):
    model = StandInModel()
    pred = make_chain(model).classify(raw)
    assert pred.status is Status.rejected
    assert pred.reason_code is code
    assert pred.label is None and pred.confidence == 0.0
    assert model.calls == []


def test_boundary_lengths_pass(make_chain):
    model = StandInModel()
    chain = make_chain(model)
    assert chain.classify("Great").status is Status.ok  # exactly 5 characters
    long_english = ("This amplifier sounds great and I use it every day. " * 200)[:5000]
    assert chain.classify(long_english).status is Status.ok


def test_overlong_input_is_truncated_when_configured(settings, make_chain):
    settings.gates.overlong = "truncate"
    model = StandInModel()
    pred = make_chain(model).classify("This amplifier sounds great and I use it every day. " * 200)
    assert pred.status is Status.ok
    assert len(model.calls[0][0]) == settings.gates.max_chars


def test_short_english_reviews_are_not_rejected_as_foreign(make_chain):
    chain = make_chain(StandInModel())
    for text in ["Great value", "Works as described", "nice product", "Love it!", "good quality", "v nice!!"]:
        assert chain.classify(text).status is Status.ok, text


def test_markup_is_normalised_before_the_model(make_chain):
    model = StandInModel()
    traced = make_chain(model).classify_traced("Works great &amp; sounds <br/>clean")
    assert model.calls == [["Works great & sounds clean"]]
    assert traced.trace.had_markup is True


def test_low_confidence_goes_to_rules_with_a_clear_winner(make_chain):
    pred = make_chain(StandInModel(default=(0.45, 0.30, 0.25))).classify(NEGATIVE)
    assert pred.status is Status.fallback
    assert pred.reason_code is Reason.low_confidence
    assert pred.label is Label.negative
    assert "0.45 below gate 0.60" in pred.reason


def test_confidence_exactly_at_gate_is_ok(make_chain):
    pred = make_chain(StandInModel(default=(0.2, 0.2, 0.6))).classify(BLAND)
    assert pred.status is Status.ok


def test_rules_tie_escalates_to_human_queue(make_chain, settings):
    text = "Great sound but terrible build, honestly."
    chain = make_chain(StandInModel(default=(0.4, 0.3, 0.3)))
    pred = chain.classify(text)
    assert pred.status is Status.fallback and pred.label is None
    assert pred.reason_code is Reason.human_review
    assert "tie" in pred.reason
    [record] = [json.loads(line) for line in settings.paths.human_queue.read_text().splitlines()]
    assert record["text"] == text
    assert record["reason_code"] == "low_confidence"
    assert record["model"]["label"] == "negative" and record["rules"]["label"] is None
    assert record["ts"].endswith("Z") and record["request_id"]


def test_no_keyword_match_escalates_to_human_queue(make_chain, settings):
    pred = make_chain(StandInModel(default=(0.34, 0.33, 0.33))).classify(BLAND)
    assert pred.reason_code is Reason.human_review
    assert "no keyword matched" in pred.reason
    assert len(settings.paths.human_queue.read_text().splitlines()) == 1


def test_resource_pressure_skips_the_model(make_chain):
    model = StandInModel()
    pred = make_chain(model, guard=FixedGuard(memory=95.0)).classify(POSITIVE)
    assert pred.status is Status.fallback
    assert pred.reason_code is Reason.resource_pressure
    assert pred.label is Label.positive  # the rules answered
    assert model.calls == []


def test_cpu_pressure_is_reported(make_chain):
    pred = make_chain(StandInModel(), guard=FixedGuard(cpu=99.0)).classify(NEGATIVE)
    assert pred.reason_code is Reason.resource_pressure and "99% above 95%" in pred.reason


def test_no_model_answers_through_rules(make_chain):
    pred = make_chain(None).classify(POSITIVE)
    assert (pred.status, pred.reason_code, pred.label) == (Status.fallback, Reason.model_unavailable, Label.positive)


class Exploding:
    def predict(self, texts):
        raise RuntimeError("CUDA out of memory")


class Garbage:
    def __init__(self, rows):
        self.rows = rows

    def predict(self, texts):
        return self.rows


class Sleepy:
    def predict(self, texts):
        import time

        time.sleep(2)
        return np.array([[0.1, 0.1, 0.8]] * len(texts))


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        (Exploding(), "RuntimeError"),
        (Garbage([[float("nan"), 0.5, 0.5]]), "invalid probabilities"),
        (Garbage([[0.5, 0.5]]), "invalid probabilities"),
        (Garbage([[0.9, 0.9, 0.9]]), "sum to"),
        (Garbage("not an array"), "returned"),
        (Garbage([]), "0 rows for 1"),
        (Garbage([None]), "not probabilities"),
    ],
)
def test_misbehaving_model_is_a_fallback_not_a_crash(make_chain, model, needle):
    pred = make_chain(model).classify(POSITIVE)
    assert pred.status is Status.fallback
    assert pred.reason_code is Reason.model_error
    assert needle in pred.reason
    assert pred.label is Label.positive


def test_model_timeout_is_a_fallback(settings, make_chain):
    settings.gates.model_timeout_s = 0.2
    pred = make_chain(Sleepy()).classify(NEGATIVE)
    assert pred.reason_code is Reason.model_error and "timed out" in pred.reason
    assert pred.label is Label.negative


def test_neutral_band_option(settings, make_chain):
    settings.gates.neutral_band = 0.75
    chain = make_chain(StandInModel(default=(0.1, 0.2, 0.7)))
    pred = chain.classify(BLAND)
    assert (pred.status, pred.reason_code, pred.label) == (Status.fallback, Reason.neutral_band, Label.neutral)
    assert make_chain(StandInModel(default=(0.1, 0.1, 0.8))).classify(BLAND).status is Status.ok


def test_batch_keeps_order_and_calls_model_once(settings, make_chain):
    settings.gates.clause_check = False  # the stand-in reads every clause with its default, positive
    model = StandInModel({POSITIVE: (0.05, 0.05, 0.9), NEGATIVE: (0.9, 0.05, 0.05)})
    out = make_chain(model).classify_many([POSITIVE, "", NEGATIVE, None])
    assert [t.prediction.status for t in out] == [Status.ok, Status.rejected, Status.ok, Status.rejected]
    assert [t.prediction.label for t in out] == [Label.positive, None, Label.negative, None]
    assert model.calls == [[POSITIVE, NEGATIVE]]


def test_queue_write_failure_still_answers(make_chain, settings):
    settings.paths.data_dir.mkdir(parents=True)
    settings.paths.human_queue.mkdir()  # a directory where the file should be: every append fails
    pred = make_chain(StandInModel(default=(0.34, 0.33, 0.33))).classify(BLAND)
    assert pred.reason_code is Reason.human_review and "held until the queue file is writable again" in pred.reason


def test_log_record_carries_monitoring_fields(make_chain):
    traced = make_chain(StandInModel()).classify_traced("Works great &amp; sounds clean", request_id="r1")
    rec = traced.log_record("review-sentiment:abc", latency_ms=12.5, log_text=False)
    assert rec.request_id == "r1" and rec.tier == "model" and rec.had_markup
    assert rec.text is None and rec.model_tag == "review-sentiment:abc" and rec.latency_ms == 12.5
    assert traced.log_record(None, 1.0, log_text=True).text == "Works great & sounds clean"


def test_log_record_keeps_model_confidence_when_rules_answer(make_chain):
    traced = make_chain(StandInModel(default=(0.45, 0.30, 0.25))).classify_traced(NEGATIVE)
    rec = traced.log_record(None, 1.0)
    assert rec.tier == "rules" and rec.model_confidence == 0.45 and rec.confidence != 0.45
    assert rec.probs == [0.45, 0.30, 0.25]  # the whole served vector, also when a later tier answered


def test_log_record_keeps_served_probabilities_and_old_logs_still_read(make_chain):
    from sentiment.records import PredictionRecord

    rec = make_chain(StandInModel(default=(0.1, 0.2, 0.7))).classify_traced(POSITIVE).log_record("m:1", 1.0)
    assert rec.probs == [0.1, 0.2, 0.7] and rec.model_tag == "m:1"
    assert make_chain(StandInModel()).classify_traced("").log_record(None, 1.0).probs is None  # gate: no model
    old = rec.model_dump(exclude={"probs"})
    assert PredictionRecord.model_validate(old).probs is None


def test_a_machine_path_in_an_error_never_reaches_the_client(make_chain):
    class Broken(StandInModel):
        def predict(self, texts):
            raise OSError("[Errno 2] No such file: '/srv/models/review-sentiment/model.onnx'")

    pred = make_chain(Broken()).classify(NEGATIVE)
    assert pred.reason_code is Reason.model_error
    assert "/srv/models" not in pred.reason and "…/model.onnx" in pred.reason


@pytest.mark.parametrize(
    ("text", "label"), [("👎👎👎", Label.negative), ("😍🔥", Label.positive), ("👍", Label.positive)]
)
def test_emoji_only_reviews_are_answered_by_the_rules_without_the_model(make_chain, text, label):
    """The tokenizer reads every emoji as [UNK]: tier 1 is not asked, the rules' emoji lexicon answers."""
    model = StandInModel(default=(0.02, 0.03, 0.95))
    pred = make_chain(model).classify(text)
    assert (pred.label, pred.status, pred.reason_code) == (label, Status.fallback, Reason.no_words)
    assert model.calls == []


def test_emoji_beside_words_still_go_to_the_model(make_chain):
    model = StandInModel(default=(0.9, 0.05, 0.05))
    pred = make_chain(model).classify("👎 it broke after a day")
    assert (pred.label, pred.status) == (Label.negative, Status.ok)
    assert model.calls == [["👎 it broke after a day"]]


def test_rules_veto_stops_a_confident_answer_the_rules_read_the_other_way(settings, make_chain):
    settings.gates.rules_veto = True
    model = StandInModel(default=(0.02, 0.03, 0.95))
    chain = make_chain(model)
    sarcastic = chain.classify("I love how it broke the first time I used it.")  # love vs broke: a tie
    assert (sarcastic.status, sarcastic.reason_code, sarcastic.label) == (Status.fallback, Reason.human_review, None)
    assert "rules_disagree" in sarcastic.reason
    complaint = chain.classify("Great, it broke after a day and the sound is awful and useless.")
    assert (complaint.label, complaint.reason_code) == (Label.negative, Reason.rules_disagree)
    assert chain.classify(POSITIVE).status is Status.ok  # no opposite reading: the model's answer stands


def test_a_confident_answer_contradicted_by_one_of_its_clauses_is_mixed(make_chain):
    """Contrast and sarcasm: the whole text reads positive, one clause reads negative; the rules then answer."""
    model = StandInModel({"it broke in the first week": (0.9, 0.05, 0.05)}, default=(0.02, 0.03, 0.95))
    chain = make_chain(model)
    pred = chain.classify("The sound is excellent, but it broke in the first week.")
    assert model.calls[-1] == ["The sound is excellent", "it broke in the first week"]
    # the rules read "excellent" and "broke": a tie, so a person decides
    assert (pred.status, pred.reason_code, pred.label) == (Status.fallback, Reason.human_review, None)
    assert pred.reason.startswith("human_review: mixed_sentiment")
    assert chain.classify(POSITIVE).status is Status.ok  # its clauses read positive too: the answer stands


def test_without_the_veto_the_rules_are_not_asked_for_confident_answers(make_chain):
    pred = make_chain(StandInModel(default=(0.02, 0.03, 0.95))).classify("I love how it broke the first time.")
    assert (pred.label, pred.status) == (Label.positive, Status.ok)
