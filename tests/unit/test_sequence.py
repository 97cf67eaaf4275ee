"""The tier sequence over fake tiers: every text gets one contract answer whatever a tier does.

The fakes answer like the real tiers (the real language gate and keyword rules) unless a test makes one slow,
failing, garbage-returning or cancelled, so what is checked is the sequence's handling, not a stand-in's logic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from fallback.decide import Traced, answered_by_model
from fallback.keywords import KeywordRules, RuleVerdict
from fallback.queue import HumanQueue
from fallback.sequence import TierSequence
from sentiment.contract import Label, Prediction, Reason, Status
from sentiment.language_id import LanguageResult, detect_language
from sentiment.outputs import ModelOutput
from sentiment.settings import GateSettings

POSITIVE = "I love this guitar strap, it works great and feels sturdy."
NEGATIVE = "Terrible cable, it broke after two days and the sound was awful."
BLAND = "The package arrived on a Tuesday and it was a box."
FRENCH = "Ce produit est vraiment excellent, je le recommande à tous mes amis."
CONFIDENT = [0.05, 0.05, 0.90]
UNSURE = [0.40, 0.30, 0.30]


class FakeTiers:
    """Real language gate and rules; tier 1 answers from ``table`` (default ``CONFIDENT``). Records every call."""

    def __init__(self, gates: GateSettings, table: dict[str, list[float]] | None = None) -> None:
        self.gates = gates
        self.table = table or {}
        self.loaded: str | None = None
        self.calls: dict[str, list[list[str]]] = {"predict": [], "languages": [], "rules": []}
        self.urgent: list[bool] = []  # per rules call: was tier 1 overloaded for it
        self.urgent_languages: list[bool] = []  # the same, per language call
        self.keyword_rules = KeywordRules()

    async def model_unavailable(self) -> str | None:
        return self.loaded

    def expected_wait_s(self, n: int) -> float:
        return self.wait_s * n

    wait_s = 0.0

    async def predict(self, texts: list[str]) -> Sequence[object]:
        self.calls["predict"].append(texts)
        return [ModelOutput(probs=self.table.get(t, CONFIDENT), unk_rate=0.0, oov_rate=0.0) for t in texts]

    async def languages(self, texts: list[str], urgent: bool = False) -> Sequence[LanguageResult]:
        self.calls["languages"].append(texts)
        self.urgent_languages.append(urgent)
        return [detect_language(t, self.gates) for t in texts]

    async def rules(self, texts: list[str], urgent: bool = False) -> Sequence[RuleVerdict]:
        self.calls["rules"].append(texts)
        self.urgent.append(urgent)
        return [self.keyword_rules.match(t) for t in texts]


@pytest.fixture
def gates() -> GateSettings:
    """The clause check off: the fake tier 1 answers every clause with ``CONFIDENT``, which would make the tests
    of other paths about it (its own tests turn it on)."""
    return GateSettings(model_timeout_s=0.3, clause_check=False)


def run(
    tiers: FakeTiers,
    gates: GateSettings,
    raws: Sequence[object],
    overlap: bool = True,
    budget_s: float | None = None,
    **kw: object,
) -> list[Traced]:
    seq = TierSequence(tiers, gates, overlap=overlap, **kw)  # type: ignore[arg-type]
    return asyncio.run(seq.run(raws, [f"r{i}" for i in range(len(raws))], budget_s))


def contract(traced: list[Traced], n: int) -> list[Prediction]:
    assert len(traced) == n
    for t in traced:
        Prediction.model_validate(t.prediction.model_dump())  # still the four-field contract
    return [t.prediction for t in traced]


@pytest.mark.parametrize("overlap", [True, False])
def test_one_answer_per_text_in_order(gates: GateSettings, overlap: bool) -> None:
    tiers = FakeTiers(gates, {NEGATIVE: [0.9, 0.05, 0.05], BLAND: UNSURE})
    raws: list[object] = [POSITIVE, None, NEGATIVE, FRENCH, "", BLAND]
    preds = contract(run(tiers, gates, raws, overlap), len(raws))
    assert [p.status for p in preds] == [
        Status.ok,
        Status.rejected,
        Status.ok,
        Status.rejected,
        Status.rejected,
        Status.fallback,
    ]
    assert preds[0].label is Label.positive and preds[2].label is Label.negative
    assert preds[3].reason_code is Reason.not_english
    assert preds[5].reason_code is Reason.human_review  # unsure model, no keyword


def test_language_first_never_sends_rejected_text_to_the_model(gates: GateSettings) -> None:
    tiers = FakeTiers(gates)
    run(tiers, gates, [POSITIVE, FRENCH], overlap=False)
    assert tiers.calls["predict"] == [[POSITIVE]]


def test_overlap_and_language_first_give_the_same_answers(gates: GateSettings) -> None:
    raws: list[object] = [POSITIVE, FRENCH, BLAND, NEGATIVE, "x" * 6000, 42]
    table = {BLAND: UNSURE, NEGATIVE: [0.5, 0.2, 0.3]}
    a = [t.prediction for t in run(FakeTiers(gates, table), gates, raws, overlap=True)]
    b = [t.prediction for t in run(FakeTiers(gates, table), gates, raws, overlap=False)]
    assert a == b


def test_rules_are_asked_only_where_tier1_did_not_answer(gates: GateSettings) -> None:
    tiers = FakeTiers(gates, {NEGATIVE: UNSURE})
    preds = contract(run(tiers, gates, [POSITIVE, NEGATIVE]), 2)
    assert tiers.calls["rules"] == [[NEGATIVE]]
    assert preds[1].reason_code is Reason.low_confidence and preds[1].label is Label.negative


class SlowModel(FakeTiers):
    async def predict(self, texts: list[str]) -> Sequence[object]:
        await asyncio.sleep(5)
        return await super().predict(texts)


def test_a_slow_model_times_out_into_the_rules(gates: GateSettings) -> None:
    preds = contract(run(SlowModel(gates), gates, [NEGATIVE, BLAND]), 2)
    assert preds[0].reason_code is Reason.model_error and "timed out after 0.3s" in preds[0].reason
    assert preds[0].label is Label.negative  # the rules answered
    assert preds[1].reason_code is Reason.human_review and "model_error" in preds[1].reason


class FailingModel(FakeTiers):
    async def predict(self, texts: list[str]) -> Sequence[object]:
        raise RuntimeError("CUDA out of memory")


def test_a_failing_model_falls_back(gates: GateSettings) -> None:
    (pred,) = contract(run(FailingModel(gates), gates, [POSITIVE]), 1)
    assert pred.status is Status.fallback and pred.reason.startswith("model_error: model raised RuntimeError")
    assert pred.label is Label.positive


@pytest.mark.parametrize(
    "garbage",
    [
        [[float("nan"), 0.5, 0.5]],
        [[0.2, 0.2]],
        [[0.9, 0.9, 0.9]],
        ["not probabilities"],
        [{"probs": "x"}],
        [],  # wrong number of rows
        [CONFIDENT, CONFIDENT],
    ],
)
def test_garbage_from_the_model_is_a_model_error(gates: GateSettings, garbage: list[object]) -> None:
    class Garbage(FakeTiers):
        async def predict(self, texts: list[str]) -> Sequence[object]:
            return garbage

    (pred,) = contract(run(Garbage(gates), gates, [POSITIVE]), 1)
    assert pred.reason_code is Reason.model_error


def test_no_model_and_resource_pressure_skip_tier1(gates: GateSettings) -> None:
    tiers = FakeTiers(gates)
    tiers.loaded = "no model loaded"
    (pred,) = contract(run(tiers, gates, [POSITIVE]), 1)
    assert pred.reason_code is Reason.model_unavailable and tiers.calls["predict"] == []
    tiers = FakeTiers(gates)
    (pred,) = contract(run(tiers, gates, [POSITIVE], pressure=lambda: "memory 95% above 90%"), 1)
    assert pred.reason_code is Reason.resource_pressure and tiers.calls["predict"] == []


def test_a_broken_pressure_sensor_does_not_stop_the_model(gates: GateSettings) -> None:
    def broken() -> str | None:
        raise OSError("no /proc")

    (pred,) = contract(run(FakeTiers(gates), gates, [POSITIVE], pressure=broken), 1)
    assert pred.status is Status.ok


def test_failing_rules_escalate_to_a_human(gates: GateSettings) -> None:
    class NoRules(FakeTiers):
        async def rules(self, texts: list[str], urgent: bool = False) -> Sequence[RuleVerdict]:
            raise ConnectionError("rules runner gone")

    traced = run(NoRules(gates, {NEGATIVE: UNSURE}), gates, [NEGATIVE])
    (pred,) = contract(traced, 1)
    assert pred.reason_code is Reason.human_review and "keyword rules failed (ConnectionError)" in pred.reason
    assert traced[0].escalation is not None  # nothing is dropped


@pytest.mark.parametrize("bad", [[], ["garbage"]])
def test_a_broken_language_tier_is_an_internal_error_for_every_text(gates: GateSettings, bad: list[object]) -> None:
    class BadLanguage(FakeTiers):
        async def languages(self, texts: list[str], urgent: bool = False) -> Sequence[LanguageResult]:
            return bad  # type: ignore[return-value]

    preds = contract(run(BadLanguage(gates), gates, [POSITIVE, NEGATIVE, None]), 3)
    assert [p.reason_code for p in preds] == [Reason.internal_error, Reason.internal_error, Reason.invalid_input]


def test_cancelling_the_caller_cancels_the_tiers(gates: GateSettings) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    class Hanging(FakeTiers):
        async def predict(self, texts: list[str]) -> Sequence[object]:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return []

    async def main() -> None:
        seq = TierSequence(Hanging(gates), GateSettings(model_timeout_s=60))
        task = asyncio.create_task(seq.run([POSITIVE], ["r0"]))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cancelled == [True]


def test_decisions_write_nothing_and_the_caller_queues_escalations(gates: GateSettings, tmp_path) -> None:
    queue = HumanQueue(tmp_path / "queue.jsonl")
    traced = run(FakeTiers(gates, {BLAND: UNSURE}), gates, [BLAND, POSITIVE])
    assert not queue.path.exists()  # the sequence decided, nobody wrote yet
    assert traced[0].escalation is not None and traced[1].escalation is None
    done = queue.escalate(traced)
    assert done[0].prediction.reason.endswith("; queued for human review")
    assert [r.request_id for r in queue.read()] == ["r0"]
    assert done[1] == traced[1]


def test_a_failed_queue_write_waits_and_lands_once_the_file_is_writable(gates: GateSettings, tmp_path) -> None:
    blocked = tmp_path / "data"
    blocked.write_text("")  # a file where the folder should be: appends fail
    queue = HumanQueue(blocked / "queue.jsonl")
    done = queue.escalate(run(FakeTiers(gates, {BLAND: UNSURE}), gates, [BLAND]))
    assert "held until the queue file is writable again" in done[0].prediction.reason
    assert done[0].prediction.reason_code is Reason.human_review
    assert queue.file.state().waiting == 1 and queue.file.state().last_error
    blocked.unlink()  # writable again: the next escalation takes the waiting one with it
    queue.escalate(run(FakeTiers(gates, {BLAND: UNSURE}), gates, [BLAND]))
    assert len(queue.read()) == 2 and queue.file.state().waiting == 0


def test_answered_by_model_is_the_confidence_gate(gates: GateSettings) -> None:
    assert answered_by_model(ModelOutput(probs=[0.2, 0.2, 0.6], unk_rate=0, oov_rate=0), gates)
    assert not answered_by_model(ModelOutput(probs=[0.3, 0.2, 0.5], unk_rate=0, oov_rate=0), gates)


def test_a_model_slower_than_the_budget_is_an_overload_answered_by_the_rules(gates: GateSettings) -> None:
    long_limit = GateSettings(model_timeout_s=30)
    start = asyncio.run(_now())
    preds = contract(run(SlowModel(long_limit), long_limit, [NEGATIVE, BLAND], budget_s=0.3, rules_reserve_s=0.05), 2)
    took = asyncio.run(_now()) - start
    assert took < 1.5  # the budget, not the 30 s model limit, bounded the wait
    assert preds[0].reason_code is Reason.overload and preds[0].label is Label.negative
    assert "within the 0.25s left of the budget" in preds[0].reason
    assert preds[1].reason_code is Reason.human_review and "overload" in preds[1].reason


def test_a_queue_predicted_too_long_goes_to_the_rules_without_calling_the_model(gates: GateSettings) -> None:
    tiers = FakeTiers(gates)
    tiers.wait_s = 2.0  # tier 1 would take 2 s for this text
    (pred,) = contract(run(tiers, gates, [POSITIVE], budget_s=1.0), 1)
    assert pred.reason_code is Reason.overload and pred.label is Label.positive
    assert "expected to answer in 2.00s" in pred.reason
    assert tiers.calls["predict"] == []
    assert tiers.urgent == [True]  # an overloaded request asks for the rules' quickest way
    assert tiers.urgent_languages == [True]  # and for the language check's


def test_a_request_with_the_model_unavailable_is_not_urgent(gates: GateSettings) -> None:
    """Only overload is urgent: without a model the answer is the rules' as ever, through the runners."""
    tiers = FakeTiers(gates)
    tiers.loaded = "no model loaded"
    (pred,) = contract(run(tiers, gates, [POSITIVE], budget_s=1.0), 1)
    assert pred.reason_code is Reason.model_unavailable
    assert tiers.urgent == [False] and tiers.urgent_languages == [False]


def test_rules_are_asked_urgently_only_for_overload(gates: GateSettings) -> None:
    tiers = FakeTiers(gates, {BLAND: UNSURE})
    (pred,) = contract(run(tiers, gates, [BLAND], budget_s=1.0), 1)
    assert pred.reason_code is Reason.human_review and tiers.urgent == [False]
    assert tiers.urgent_languages == [False]


def test_a_generous_budget_changes_nothing(gates: GateSettings) -> None:
    raws: list[object] = [POSITIVE, BLAND, FRENCH]
    table = {BLAND: UNSURE}
    assert [t.prediction for t in run(FakeTiers(gates, table), gates, raws, budget_s=10.0)] == [
        t.prediction for t in run(FakeTiers(gates, table), gates, raws)
    ]


async def _now() -> float:
    return asyncio.get_running_loop().time()


def test_queued_text_is_masked_on_disk_but_classified_unmasked(tmp_path) -> None:
    from sentiment.settings import load_settings

    settings = load_settings(paths={"data_dir": tmp_path})
    queue = HumanQueue.from_settings(settings)
    text = "The box came on Tuesday, write to jane.doe@example.com or call +1 415 555 2671 about it."
    gates = settings.gates
    tiers = FakeTiers(gates, {text: UNSURE})
    done = queue.escalate(run(tiers, gates, [text]))
    assert tiers.calls["predict"] == [[text]]  # the model saw the review as written
    (record,) = queue.read()
    assert "jane.doe" not in record.text and "[EMAIL]" in record.text and "[PHONE]" in record.text
    assert record.text.startswith("The box came on Tuesday")  # still readable for a labeller
    assert done[0].prediction.reason_code is Reason.human_review


SARCASTIC = "Wow, what a fantastic kettle, it leaked everywhere."


@pytest.mark.parametrize("overlap", [True, False])
def test_a_clause_read_the_other_way_sends_a_confident_answer_down_the_chain(
    gates: GateSettings, overlap: bool
) -> None:
    gates.clause_check = True
    tiers = FakeTiers(gates, {"it leaked everywhere": [0.85, 0.10, 0.05]})
    mixed, plain = contract(run(tiers, gates, [SARCASTIC, POSITIVE], overlap), 2)
    # the rules read only "fantastic": they answer, flagged as a fallback, never as the model's confident `ok`
    assert (mixed.status, mixed.reason_code, mixed.label) == (Status.fallback, Reason.mixed_sentiment, Label.positive)
    assert "'it leaked everywhere' negative at 0.85" in mixed.reason
    assert plain.status is Status.ok and plain.label is Label.positive  # its clauses agree: the answer stands
    # one call for the texts, one more for the clauses of both (each has two)
    clauses = ["Wow", "what a fantastic kettle", "it leaked everywhere"]
    assert tiers.calls["predict"][-1] == [*clauses, "I love this guitar strap", "it works great and feels sturdy"]


def test_the_clause_check_spares_long_texts_single_clauses_and_unsure_answers(gates: GateSettings) -> None:
    gates.clause_check = True
    long_text = ", ".join(["the strap is great"] * 12) + ", it broke"
    tiers = FakeTiers(gates, {BLAND: UNSURE, "it broke": [0.9, 0.05, 0.05]})
    preds = contract(run(tiers, gates, ["I love how the kettle leaked everywhere.", BLAND, long_text]), 3)
    assert preds[0].status is Status.ok and preds[2].status is Status.ok
    assert len(tiers.calls["predict"]) == 1  # nothing to check: no clause call


def test_a_failed_clause_call_leaves_the_answer_as_it_was(gates: GateSettings) -> None:
    gates.clause_check = True

    class FailsOnClauses(FakeTiers):
        async def predict(self, texts: list[str]) -> Sequence[object]:
            if texts != [SARCASTIC]:
                raise RuntimeError("runner died")
            return await super().predict(texts)

    (pred,) = contract(run(FailsOnClauses(gates), gates, [SARCASTIC]), 1)
    assert (pred.status, pred.label) == (Status.ok, Label.positive)
