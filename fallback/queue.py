"""Tier 3: the append-only human review queue. Nothing an automated tier cannot answer is dropped."""

from __future__ import annotations

import logging
from pathlib import Path

from fallback.decide import Traced
from sentiment.jsonl import ReadStats, append_records, iter_records
from sentiment.records import QueueRecord

log = logging.getLogger(__name__)


class HumanQueue:
    """A JSON Lines file many worker processes append to at once (see :mod:`sentiment.jsonl` for why it is safe)."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync

    def put(self, record: QueueRecord) -> None:
        append_records(self.path, [record], fsync=self.fsync)

    def read(self, stats: ReadStats | None = None) -> list[QueueRecord]:
        return [QueueRecord.model_validate(r) for r in iter_records(self.path, stats)]

    def escalate(self, traced: list[Traced]) -> list[Traced]:
        """Append every escalation the sequence decided on (one write) and say in each answer whether it landed."""
        records = [t.escalation for t in traced if t.escalation is not None]
        if not records:
            return traced
        outcome = "queued for human review"
        try:
            append_records(self.path, records, fsync=self.fsync)
        except OSError as exc:
            log.error("human queue write failed for %d reviews: %s", len(records), exc)
            outcome = f"human queue write failed ({exc.strerror})"
        return [_with_outcome(t, outcome) if t.escalation is not None else t for t in traced]


def _with_outcome(t: Traced, outcome: str) -> Traced:
    prediction = t.prediction.model_copy(update={"reason": f"{t.prediction.reason}; {outcome}"})
    return t.model_copy(update={"prediction": prediction})
