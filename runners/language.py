"""Language identification as a CPU service (fastText, then langdetect + word frequencies).

The logic is :mod:`sentiment.language_id`; this module only serves it.
"""

from __future__ import annotations

from typing import Any

import bentoml

from sentiment.bentoml_patches import apply_patches
from sentiment.heap import freeze_heap
from sentiment.language_id import LanguageResult, detect_language, warm_up
from sentiment.settings import GateSettings


def language_service(gates: GateSettings) -> bentoml.Service[Any]:
    @bentoml.service(
        name="language",
        workers=1,
        threads=1,
        traffic={"timeout": 30, "max_concurrency": 1024},
        logging={"access": {"enabled": False}},
    )
    class LanguageRunner:
        def __init__(self) -> None:
            apply_patches()
            # fastText, langdetect's profiles and every word list load on first use (0.1-0.6 s each, and each one
            # a stall for every request queued behind it): pay for all of them here, before the first request.
            warm_up()
            freeze_heap()

        @bentoml.api
        async def detect(self, texts: list[str]) -> list[LanguageResult]:
            """On the event loop, not a worker thread: fastText answers most texts in less time than the thread
            hand-off would cost, and this process has nothing else to do while langdetect takes the rest."""
            return [detect_language(t, gates) for t in texts]

    return LanguageRunner
