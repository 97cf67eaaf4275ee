"""Tier 2 keyword rules as a CPU service (the lexicon and negation handling live in :mod:`fallback.keywords`)."""

from __future__ import annotations

import bentoml

from fallback.keywords import KeywordRules, RuleVerdict
from sentiment.bentoml_patches import apply_patches
from sentiment.heap import freeze_heap


@bentoml.service(
    name="rules",
    workers=1,
    threads=1,
    traffic={"timeout": 30, "max_concurrency": 1024},
    logging={"access": {"enabled": False}},
)
class RulesRunner:
    def __init__(self) -> None:
        apply_patches()
        self.rules = KeywordRules()
        freeze_heap()

    @bentoml.api
    async def match(self, texts: list[str]) -> list[RuleVerdict]:
        """On the event loop: a lexicon lookup costs less than handing it to a worker thread."""
        return [self.rules.match(t) for t in texts]
