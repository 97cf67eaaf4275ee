"""Tier 2 keyword rules: lexicon size, most-hits-wins, ties, no match, negation."""

from __future__ import annotations

import pytest

from fallback.keywords import KeywordRules
from sentiment.contract import Label


@pytest.fixture(scope="module")
def rules() -> KeywordRules:
    return KeywordRules()


def test_lexicon_meets_the_spec_sizes(rules):
    counts = rules.counts()
    assert counts["positive"] >= 18 and counts["negative"] >= 18 and counts["neutral"] >= 11


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Excellent tuner, I love it and would recommend it.", Label.positive),
        ("Total junk, broke in a week. Waste of money.", Label.negative),
        ("It's okay, average sound, nothing special.", Label.neutral),
        ("This is not good at all.", Label.negative),
        ("It never worked, returned it.", Label.negative),
        ("Would not recommend to anyone.", Label.negative),
        ("dont buy this product worst quality", Label.negative),
        ("Not bad at all, I was not disappointed.", Label.positive),
        ("It's okay, could be better, mediocre sound.", Label.neutral),
        ("Great. Not terrible at all, I love it.", Label.positive),
        ("Not great, not terrible, just average.", Label.neutral),
    ],
)
def test_clear_winner(rules, text, label):
    verdict = rules.match(text)
    assert verdict.label is label, verdict.detail
    assert 0.0 < verdict.confidence < 1.0


def test_negation_scope_stops_at_punctuation_and_but(rules):
    assert rules.match("Not what I expected, but great.").label is Label.positive
    assert rules.match("no issues. Great").hits["positive"] == 1


def test_phrase_consumes_its_words(rules):
    verdict = rules.match("waste of money")
    assert verdict.hits == {"negative": 1, "neutral": 0, "positive": 0}


def test_tie_escalates(rules):
    verdict = rules.match("Great sound but terrible build.")
    assert verdict.label is None and "tie" in verdict.detail
    assert verdict.hits["positive"] == verdict.hits["negative"] == 1


def test_no_match_escalates(rules):
    verdict = rules.match("The box arrived on Tuesday.")
    assert verdict.label is None and verdict.confidence == 0.0
    assert "no keyword" in verdict.detail


def test_more_hits_means_more_confidence(rules):
    assert rules.match("great, love it, perfect").confidence > rules.match("great").confidence


@pytest.mark.parametrize(
    ("text", "label", "hits"),
    [
        ("👎👎👎", Label.negative, 3),
        ("😍🔥", Label.positive, 2),
        ("meh 😐", Label.neutral, 2),
        ("not 👍", Label.negative, 1),
    ],
)
def test_emoji_are_scored_from_the_emoji_lexicon(rules, text, label, hits):
    v = rules.match(text)
    assert v.label is label and v.hits[label.value] == hits
