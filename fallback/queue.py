"""Tier 3: the append-only human review queue. Nothing an automated tier cannot answer is dropped."""

from __future__ import annotations

from pathlib import Path

from sentiment.jsonl import ReadStats, append_records, iter_records
from sentiment.records import QueueRecord


class HumanQueue:
    """A JSON Lines file many worker processes append to at once (see :mod:`sentiment.jsonl` for why it is safe)."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync

    def put(self, record: QueueRecord) -> None:
        append_records(self.path, [record], fsync=self.fsync)

    def read(self, stats: ReadStats | None = None) -> list[QueueRecord]:
        return [QueueRecord.model_validate(r) for r in iter_records(self.path, stats)]
