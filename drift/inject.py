"""Known shifts injected into real review records, to check that each signal fires for the failure it is for.

Every injection takes a window of real records and returns a new list; nothing is invented except the markup
wrapper and the broken-client payloads, which copy what such bugs really produce. Replacements are drawn from
other real reviews (negative ones, foreign-language ones, another product category).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Record = Mapping[str, Any]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _replace(
    records: Sequence[Record], share: float, rng: random.Random, make: Callable[[Record], Record]
) -> list[Record]:
    idx = set(rng.sample(range(len(records)), round(share * len(records))))
    return [make(r) if i in idx else r for i, r in enumerate(records)]


def mix_in(
    records: Sequence[Record], pool: Sequence[Record], share: float, rng: random.Random, keep_label: bool = False
) -> list[Record]:
    """Replace ``share`` of the records with records drawn from ``pool``.

    ``keep_label``: draw a pool record with the same label as the one it replaces (when the pool has it), so
    a topic change does not also move the label mix and we see which signals catch the topic alone.
    """
    from drift.windows import label_code

    by_label: dict[int, list[Record]] = {}
    for r in pool:
        by_label.setdefault(label_code(r), []).append(r)

    def draw(r: Record) -> Record:
        if keep_label:
            same = by_label.get(label_code(r))
            return rng.choice(same) if same else r
        return rng.choice(pool)

    return _replace(records, share, rng, draw)


def leak_markup(text: str) -> str:
    """What a scraper that stopped stripping HTML hands over: escaped quotes, paragraph and line-break tags."""
    body = text.replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#39;")
    body = "<br />".join(_SENTENCE_END.split(body))
    return f'<div class="review-text"><p>{body}</p></div>'


def markup_leak(records: Sequence[Record], share: float, rng: random.Random) -> list[Record]:
    return _replace(records, share, rng, lambda r: {**r, "text": leak_markup(str(r["text"]))})


def broken_client(records: Sequence[Record], share: float, rng: random.Random) -> list[Record]:
    """A client bug: empty bodies, bodies cut to a few characters, or UTF-16 bytes read as UTF-8."""
    payloads: list[Callable[[str], str]] = [
        lambda t: "",
        lambda t: t[:3],
        lambda t: t.encode("utf-16-le").decode("utf-8", errors="replace"),
    ]
    return _replace(records, share, rng, lambda r: {**r, "text": rng.choice(payloads)(str(r["text"]))})
