"""The behaviour suite's generator and scorer (training.behaviour), with a stand-in tier 1 so that every answer is
known: the suite must build hundreds of cases per category, keep its training half apart, and score each category
by its own rule on the chain's real answers."""

from __future__ import annotations

import pytest

from sentiment.contract import Label, Prediction, Reason
from tests.support.doubles import StandInModel
from training.behaviour import (
    CATEGORIES,
    PRODUCTS,
    Case,
    augmentation,
    generate,
    passes,
    score,
    split,
)


@pytest.fixture(scope="module")
def suite() -> list[Case]:
    return generate("suite", seed=0)


def test_every_category_has_hundreds_of_cases(suite):
    for cat in CATEGORIES:
        assert sum(c.category == cat for c in suite) >= 200, cat
    assert len({c.text for c in suite}) > 0.9 * len(suite)  # generated, not one sentence repeated


def test_generation_is_deterministic_per_seed(suite):
    assert [c.text for c in generate("suite", seed=0)] == [c.text for c in suite]
    assert [c.text for c in generate("suite", seed=1)] != [c.text for c in suite]


def test_the_training_half_never_shares_a_lexicon_entry_or_a_sentence_with_the_suite(suite):
    assert not set(split(["a", "b", "c", "d"], "suite")) & set(split(["a", "b", "c", "d"], "train"))
    taught = {text for text, _ in augmentation(seed=0)}
    scored = {c.text for c in suite if c.category in ("negation", "contrast", "intensity")}
    assert taught and not taught & scored
    assert not any(f" {p} " in t for t in taught for p in split(PRODUCTS, "suite"))


def test_augmentation_labels_follow_the_templates():
    labels = dict(augmentation(seed=0))
    assert labels["The vacuum is not great."] is Label.negative  # a negated positive
    assert labels["The printer did not work as described."] is Label.negative  # a negated positive event
    contrast = [t for t in labels if " but " in t and t[0].isupper()]
    assert contrast and {labels[t] for t in contrast} == {Label.neutral}


def _ok(label: str) -> Prediction:
    return Prediction.ok(label, 0.9)


@pytest.mark.parametrize(
    ("category", "answer", "passed"),
    [
        ("nonsense", Prediction.rejected(Reason.not_language, "x"), True),
        ("nonsense", Prediction.rejected(Reason.not_english, "x"), False),
        ("nonsense", _ok("neutral"), False),
        ("contrast", _ok("positive"), False),
        ("contrast", _ok("neutral"), True),
        ("contrast", Prediction.fallback(Reason.low_confidence, "x", "positive", 0.5), True),
        ("sarcasm", _ok("positive"), False),
        ("sarcasm", _ok("negative"), True),
        ("sarcasm", Prediction.fallback(Reason.human_review, "x", None, 0.0), True),
        ("negation", _ok("negative"), True),
        ("negation", Prediction.fallback(Reason.low_confidence, "x", "negative", 0.5), True),
        ("negation", Prediction.fallback(Reason.human_review, "x", None, 0.0), False),
    ],
)
def test_each_category_has_its_own_pass_rule(category, answer, passed):
    expected = {"sarcasm": ("negative",), "negation": ("negative",)}.get(category, ())
    case = Case(category=category, kind="MFT", subtype="t", text="t", expected=expected)
    assert passes(case, answer, None) is passed


def test_invariance_compares_with_the_unperturbed_answer():
    case = Case(category="invariance", kind="INV", subtype="names", text="b", base="a")
    assert passes(case, _ok("positive"), _ok("positive"))
    assert not passes(case, _ok("positive"), _ok("negative"))
    human = Prediction.fallback(Reason.human_review, "x", None, 0.0)
    assert passes(case, human, human)


def test_scoring_runs_the_whole_chain(make_chain, suite):
    """A tier 1 that calls everything a confident positive: the chain's gates and rules still decide the emoji and
    nonsense cases, and the scorer counts exactly what the rules above say."""
    model = StandInModel(default=(0.02, 0.03, 0.95))
    cases = [c for c in suite if c.subtype in ("emoji only", "praise for a failure", "keyboard mashing")][::4]
    cases += [c for c in suite if c.category == "contrast"][::8]
    chain = make_chain(model)
    report = score(lambda texts: [t.prediction for t in chain.classify_many(texts)], cases, "stand-in", 0, 0.6)
    rates = report.pass_rates()
    assert rates["sarcasm"] == 0.0 and rates["contrast"] == 0.0  # every one a confident positive `ok`
    assert rates["emoji"] > 0.9  # answered by the emoji lexicon, never by the model
    assert not any(t in call for call in model.calls for t in (c.text for c in cases if c.category == "emoji"))
    assert rates["nonsense"] > 0.9
    assert report.n == len(cases) == sum(s.n for s in report.categories.values())
    assert report.metadata_summary()["pass_rates"] == rates
