"""Behaviour of the trained model, CheckList style (Ribeiro et al. 2020): what a sentiment model must get right
whatever its test-set score.

- minimum functionality: short, clear reviews get their obvious label;
- negation: "not good" is never positive;
- invariance: a product name, a number, punctuation or a typo in a non-sentiment word does not flip the label;
- direction: adding "but it broke after a week" never makes a review more positive.

They run on ``behaviour_minilm`` (the real MiniLM fine-tuned once per test session on ~1,000 shared reviews,
calibrated) through :class:`SentimentModel` as serving loads it. The smaller ``trained_minilm`` of the other model
tests (320 reviews) fails the negation test ("This is not good." and "I would not recommend it to anyone." come out
positive), so these tests train their own.
"""

from __future__ import annotations

import numpy as np
import pytest

from sentiment.contract import LABELS
from sentiment.model.inference import SentimentModel
from tests.support.models import TrainedModel

pytestmark = pytest.mark.slow

NEG, NEU, POS = range(len(LABELS))

CLEAR = {
    POS: [
        "Great product, I love it.",
        "Excellent quality, works perfectly.",
        "Best purchase I have made this year!",
        "Very happy with it, highly recommended.",
    ],
    NEG: [
        "Terrible product, it broke on the first day.",
        "Waste of money, do not buy.",
        "Awful quality, very disappointed.",
        "It stopped working after two days. Useless.",
    ],
}
NEGATED = [
    "This is not good.",
    "Not worth the money.",
    "I would not recommend it to anyone.",
    "The sound is not great and I am not happy with it.",
]
# (original, perturbed): product name, number, punctuation, typo in a non-sentiment word
INVARIANT = [
    ("I love this Yamaha keyboard, it sounds wonderful.", "I love this Casio keyboard, it sounds wonderful."),
    ("Great strings from Ernie Ball, they last long.", "Great strings from D'Addario, they last long."),
    ("Broke after 2 days, very disappointed.", "Broke after 5 days, very disappointed."),
    ("I have used it for 3 years and it is still excellent.", "I have used it for 7 years and it is still excellent."),
    ("Terrible cable, the sound keeps cutting out.", "Terrible cable, the sound keeps cutting out!!!"),
    ("Works great, very happy with it!", "Works great, very happy with it"),
    ("Excellent purchase, arrived quickly and works well.", "Excellent purchse, arrived quickly and works well."),
    ("Awful product, the packaging was damaged too.", "Awful product, the packagng was damaged too."),
]
BREAKS = " But it broke after a week."
DIRECTION = [
    *CLEAR[POS],
    "It is okay, does the job.",
    "Good value for the price.",
    "Nice sound and easy to set up.",
    "Decent, nothing special.",
]


@pytest.fixture(scope="module")
def model(behaviour_minilm: TrainedModel) -> SentimentModel:  # noqa: F811
    return SentimentModel(behaviour_minilm.path, behaviour_minilm.metadata, num_threads=2)


def labels(model: SentimentModel, texts: list[str]) -> list[str]:
    return [LABELS[i] for i in model.predict(texts).argmax(1)]


@pytest.mark.parametrize("cls", [POS, NEG], ids=["positive", "negative"])
def test_minimum_functionality_on_short_clear_reviews(model: SentimentModel, cls: int) -> None:
    assert labels(model, CLEAR[cls]) == [LABELS[cls]] * len(CLEAR[cls])


def test_negation_is_never_positive(model: SentimentModel) -> None:
    got = labels(model, NEGATED)
    assert "positive" not in got, dict(zip(NEGATED, got, strict=True))
    # and the negation is what does it: the same sentences without "not" are positive
    plain = [t.replace("not ", "").replace("Not ", "") for t in NEGATED]
    assert labels(model, plain).count("positive") >= len(plain) - 1


def test_invariance_to_names_numbers_punctuation_and_typos(model: SentimentModel) -> None:
    before = labels(model, [a for a, _ in INVARIANT])
    after = labels(model, [b for _, b in INVARIANT])
    flips = [(a, b, x, y) for (a, b), x, y in zip(INVARIANT, before, after, strict=True) if x != y]
    assert not flips


def test_adding_a_breakage_never_makes_a_review_more_positive(model: SentimentModel) -> None:
    before = model.predict(DIRECTION)
    after = model.predict([t + BREAKS for t in DIRECTION])
    assert np.all(after[:, POS] <= before[:, POS]), np.c_[before[:, POS], after[:, POS]]
    assert np.all(after[:, NEG] >= before[:, NEG])
