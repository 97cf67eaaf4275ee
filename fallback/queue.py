"""Tier 3: the append-only human review queue. Nothing an automated tier cannot answer is dropped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from fallback.decide import Traced
from sentiment.backlog import BackloggedFile
from sentiment.jsonl import ReadStats, iter_records
from sentiment.pii import text_masker
from sentiment.records import QueueRecord
from sentiment.settings import RotationSettings, Settings

log = logging.getLogger(__name__)


class HumanQueue:
    """A JSON Lines file many worker processes append to at once (see :mod:`sentiment.jsonl` for why it is safe)."""

    def __init__(
        self,
        path: Path,
        fsync: bool = False,
        rotation: RotationSettings | None = None,
        mask: Callable[[str], str] = str,
    ) -> None:
        self.path = path
        self.mask = mask
        self.file = BackloggedFile(path, rotation, fsync)

    @classmethod
    def from_settings(cls, settings: Settings) -> HumanQueue:
        """Personal data masked before it reaches the disk; rotated like every log, but no closed piece is ever
        deleted: each line is a review waiting for a human."""
        rotation = settings.rotation.model_copy(update={"keep": None})
        return cls(settings.paths.human_queue, rotation=rotation, mask=text_masker(settings.privacy))

    def put(self, record: QueueRecord) -> bool:
        return self._append([record])

    def _append(self, records: list[QueueRecord]) -> bool:
        return self.file.append([r.model_copy(update={"text": self.mask(r.text)}) for r in records])

    def read(self, stats: ReadStats | None = None) -> list[QueueRecord]:
        return [QueueRecord.model_validate(r) for r in iter_records(self.path, stats)]

    def escalate(self, traced: list[Traced]) -> list[Traced]:
        """Append every escalation the sequence decided on (one write) and say in each answer whether it landed."""
        records = [t.escalation for t in traced if t.escalation is not None]
        if not records:
            return traced
        outcome = "queued for human review"
        if not self._append(records):
            log.error("human queue not writable (%s): %d reviews wait in memory", self.file.last_error, len(records))
            outcome = "queued for human review (held until the queue file is writable again)"
        return [_with_outcome(t, outcome) if t.escalation is not None else t for t in traced]


def _with_outcome(t: Traced, outcome: str) -> Traced:
    prediction = t.prediction.model_copy(update={"reason": f"{t.prediction.reason}; {outcome}"})
    return t.model_copy(update={"prediction": prediction})
