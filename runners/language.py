"""Language detection as a CPU service (langdetect + word frequencies; see :mod:`sentiment.language`)."""

from __future__ import annotations

import bentoml

from sentiment.language import LanguageResult, detect_language
from sentiment.settings import get_settings

SETTINGS = get_settings()


@bentoml.service(name="language", workers=1, threads=1, traffic={"timeout": 30, "max_concurrency": 1024},
    logging={"access": {"enabled": False}},
)
class LanguageRunner:
    def __init__(self) -> None:
        # langdetect loads its 55 profiles and wordfreq its English list on first use (~1-2 s): pay it here,
        # not on the first requests.
        g = SETTINGS.gates
        for text in ("The strings arrived quickly and sound great.", "Great value", "Produit excellent, merci"):
            detect_language(text, g)

    @bentoml.api
    async def detect(self, texts: list[str]) -> list[LanguageResult]:
        """On the event loop, not a worker thread: fastText answers most texts in 0.04 ms, less than the thread
        hand-off would cost, and this process has nothing else to do while langdetect takes the rest."""
        g = SETTINGS.gates
        return [detect_language(t, g) for t in texts]
