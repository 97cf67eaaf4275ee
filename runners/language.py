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
    @bentoml.api
    def detect(self, texts: list[str]) -> list[LanguageResult]:
        g = SETTINGS.gates
        return [detect_language(t, g.language, g.lang_min_english_zipf) for t in texts]
