"""The chain's view of a model: what share each tier would answer, and how well, on labelled reviews.

It runs the very decisions serving runs (:func:`fallback.decide.resolve`: gate, neutral band, rules, human
queue) on model outputs computed once, and writes nothing: escalations are counted, not queued.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from fallback.decide import resolve
from fallback.keywords import KeywordRules
from sentiment.contract import LABELS
from sentiment.outputs import ModelOutput
from sentiment.settings import GateSettings
from sentiment.validation import Validated
from training.evaluate import ChainView, LabelIds, TierStats, metrics


class Decision(NamedTuple):
    tier: str  # model | rules | human
    label: str | None  # None: the human queue, no automatic label
    status: str  # ok | fallback


def chain_decisions(texts: Sequence[str], outputs: Sequence[ModelOutput], gates: GateSettings) -> list[Decision]:
    """What the chain answers for each text, given tier-1 outputs computed once."""
    rules = KeywordRules()
    out = []
    for i, (text, output) in enumerate(zip(texts, outputs, strict=True)):
        t = resolve(Validated(text=text, raw_chars=len(text)), f"eval-{i}", None, output, rules.match(text), gates)
        label = t.prediction.label.value if t.prediction.label is not None else None
        out.append(Decision(t.trace.tier, label, t.prediction.status.value))
    return out


def chain_view(texts: Sequence[str], y: LabelIds, outputs: Sequence[ModelOutput], gates: GateSettings) -> ChainView:
    by_tier: dict[str, list[tuple[int, str | None, str]]] = defaultdict(list)
    for d, gold in zip(chain_decisions(texts, outputs, gates), y, strict=True):
        by_tier[d.tier].append((int(gold), d.label, d.status))
    n = len(texts)
    tiers = {}
    for tier in ("model", "rules", "human"):
        rows = by_tier.get(tier, [])
        acc = float(np.mean([LABELS[gold] == lab for gold, lab, _ in rows])) if rows and tier != "human" else None
        tiers[tier] = TierStats(share=len(rows) / n if n else 0.0, n=len(rows), accuracy=acc)
    ok = [(gold, LABELS.index(lab)) for gold, lab, status in by_tier.get("model", []) if status == "ok" and lab]
    auto = [LABELS[gold] == lab for tier in ("model", "rules") for gold, lab, _ in by_tier.get(tier, [])]
    return ChainView(
        gate=gates.confidence_gate,
        neutral_band=gates.neutral_band,
        tiers=tiers,
        ok_metrics=metrics([a for a, _ in ok], [b for _, b in ok]) if ok else None,
        automatic_accuracy=float(np.mean(auto)) if auto else 0.0,
    )
