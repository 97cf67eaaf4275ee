"""Tier 2: auditable keyword rules. Most hits wins; a tie or no hit escalates to the human queue.

Negation flips what follows it within a short window ("not good" counts as negative, "not disappointed" as
positive, "never worked" is a negative phrase), so the rules do not invert obvious cases. Multi-word phrases are matched
before single words and consume their tokens, so "waste of money" is one negative hit, not three.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, Field

from fallback.emoji_lexicon import NEGATIVE_EMOJI, NEUTRAL_EMOJI, POSITIVE_EMOJI
from sentiment.contract import Label
from sentiment.symbols import EMOJI_CHAR_CLASS

POSITIVE: tuple[str, ...] = (
    "excellent",
    "great",
    "love",
    "loved",
    "loves",
    "perfect",
    "perfectly",
    "awesome",
    "amazing",
    "fantastic",
    "wonderful",
    "best",
    "happy",
    "recommend",
    "recommended",
    "good",
    "nice",
    "superb",
    "outstanding",
    "pleased",
    "satisfied",
    "sturdy",
    "beautiful",
    "comfortable",
    "works great",
    "works well",
    "easy to use",
    "worth it",
    "well made",
    "good quality",
    "super",
    "exactly what i wanted",
    "five stars",
    "5 stars",
    "favorite",
    "impressed",
    *POSITIVE_EMOJI,
)
NEGATIVE: tuple[str, ...] = (
    "terrible",
    "awful",
    "horrible",
    "worst",
    "poor",
    "poorly",
    "broke",
    "broken",
    "junk",
    "garbage",
    "useless",
    "waste",
    "disappointed",
    "disappointing",
    "defective",
    "refund",
    "scam",
    "fake",
    "bad",
    "flimsy",
    "cheaply made",
    "stopped working",
    "fell apart",
    "waste of money",
    "doesn't work",
    "does not work",
    "didn't work",
    "did not work",
    "never worked",
    "do not buy",
    "don't buy",
    "returned",
    "return it",
    "worthless",
    "unusable",
    "one star",
    "1 star",
    "rubbish",
    "pathetic",
    *NEGATIVE_EMOJI,
)
# Measured on the shared reviews: "as expected", "acceptable" and "fair" sat almost only in 4-5 star reviews.
NEUTRAL: tuple[str, ...] = (
    "okay",
    "ok",
    "average",
    "decent",
    "mediocre",
    "fine",
    "so so",
    "so-so",
    "alright",
    "could be better",
    "nothing special",
    "meh",
    "mixed feelings",
    "three stars",
    "3 stars",
    "not great",
    "pros and cons",
    *NEUTRAL_EMOJI,
)
NEGATORS = frozenset({"not", "no", "never", "hardly", "barely", "without", "nothing", "nor", "neither"})
SCOPE_BREAKS = frozenset({".", "!", "?", ";", ",", "but", "however", "though", "although", "except"})
NEGATION_WINDOW = 3

_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[.!?;,]|" + EMOJI_CHAR_CLASS)


class RuleVerdict(BaseModel):
    """What the rules saw: a label only when one class has strictly the most hits."""

    label: Label | None
    hits: dict[str, int] = Field(default_factory=lambda: {lab.value: 0 for lab in Label})
    matched: list[str] = Field(default_factory=list)
    detail: str = ""

    @property
    def confidence(self) -> float:
        """Vote share with add-one smoothing: one lone hit is 0.5, never certainty."""
        if self.label is None:
            return 0.0
        return self.hits[self.label.value] / (sum(self.hits.values()) + 1)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("’", "'"))


# Lower-cased, apostrophe-stripped feeds (Flipkart) write "dont" for "don't".
_BARE_CONTRACTIONS = frozenset(
    {"dont", "doesnt", "didnt", "wont", "cant", "isnt", "wasnt", "arent", "werent", "couldnt", "wouldnt", "shouldnt"}
)


def _is_negator(token: str) -> bool:
    return token in NEGATORS or token.endswith("n't") or token in _BARE_CONTRACTIONS


class KeywordRules:
    """A lexicon of positive, negative and neutral terms (single words or phrases)."""

    def __init__(
        self,
        positive: Iterable[str] = POSITIVE,
        negative: Iterable[str] = NEGATIVE,
        neutral: Iterable[str] = NEUTRAL,
    ) -> None:
        self.lexicon: dict[tuple[str, ...], Label] = {}
        for label, terms in ((Label.positive, positive), (Label.negative, negative), (Label.neutral, neutral)):
            for term in terms:
                self.lexicon[tuple(tokenize(term))] = label
        self.max_len = max(len(k) for k in self.lexicon)

    def counts(self) -> dict[str, int]:
        out = {lab.value: 0 for lab in Label}
        for label in self.lexicon.values():
            out[label.value] += 1
        return out

    def _negated(self, tokens: list[str], start: int) -> bool:
        for tok in reversed(tokens[max(0, start - NEGATION_WINDOW) : start]):
            if tok in SCOPE_BREAKS:
                return False
            if _is_negator(tok):
                return True
        return False

    def match(self, text: str) -> RuleVerdict:
        """Count hits per class; never raises (anything odd simply matches nothing)."""
        tokens = tokenize(text) if isinstance(text, str) else []
        hits = {lab.value: 0 for lab in Label}
        matched: list[str] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self.max_len, len(tokens) - i), 0, -1):
                key = tuple(tokens[i : i + n])
                label = self.lexicon.get(key)
                if label is None:
                    continue
                term = " ".join(key)
                if not any(_is_negator(t) for t in key) and self._negated(tokens, i):
                    # "not good" -> negative; "not disappointed", "not a waste" -> positive (reviewers' litotes);
                    # a negated neutral term says nothing.
                    label = {Label.positive: Label.negative, Label.negative: Label.positive}.get(label)
                    term = f"NOT {term}"
                if label is not None:
                    hits[label.value] += 1
                    matched.append(term)
                i += n
                break
            else:
                i += 1
        ranked = sorted(hits.items(), key=lambda kv: kv[1], reverse=True)
        top, second = ranked[0], ranked[1]
        winner = Label(top[0]) if top[1] > 0 and top[1] > second[1] else None
        if winner is not None:
            detail = f"keyword rules: {winner.value} wins {hits} on {matched}"
        elif top[1] == 0:
            detail = "keyword rules: no keyword matched"
        else:
            detail = f"keyword rules: tie {hits} on {matched}"
        return RuleVerdict(label=winner, hits=hits, matched=matched, detail=detail)

    def reads_polar(self, text: str, min_hits: int = 2) -> bool:
        """Clearly positive or negative: at least ``min_hits`` hits of one polar class and none of the others
        (the label-noise filter for 3-star training reviews, ``TrainConfig.neutral_noise``)."""
        v = self.match(text)
        return (
            v.label in (Label.positive, Label.negative)
            and v.hits[v.label.value] >= min_hits
            and sum(v.hits.values()) == v.hits[v.label.value]
        )
