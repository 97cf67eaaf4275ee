"""An append-only file that never loses a record to a passing write failure (full disk, unwritable folder).

Records that cannot be written wait in memory, in order, and go out ahead of the next batch once the file is
writable again; the wait is bounded (``max_waiting``), and what it ever had to drop is counted, so an operator sees
both on ``/health``. The writer itself (:func:`sentiment.jsonl.append_records`) keeps its guarantees: one write per
batch under the lock, rotation, torn-line healing.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from sentiment.jsonl import append_records
from sentiment.settings import RotationSettings


class BacklogState(BaseModel):
    path: str
    waiting: int
    dropped: int
    last_error: str


class BackloggedFile:
    def __init__(
        self, path: Path, rotation: RotationSettings | None = None, fsync: bool = False, max_waiting: int = 100_000
    ) -> None:
        self.path = path
        self.rotation = rotation
        self.fsync = fsync
        self._waiting: deque[BaseModel] = deque()
        self._max = max_waiting
        self._lock = threading.Lock()  # one process may append from several threads
        self.dropped = 0
        self.last_error = ""

    def append(self, records: Sequence[BaseModel]) -> bool:
        """True when these records (and any that waited) are on disk; False when they wait. Never raises OSError."""
        with self._lock:
            batch = [*self._waiting, *records]
            if not batch:
                return True
            try:
                append_records(self.path, batch, fsync=self.fsync, rotation=self.rotation)
            except OSError as exc:
                self.last_error = f"{type(exc).__name__}: {exc.strerror or exc}"
                self._waiting.extend(records)
                while len(self._waiting) > self._max:
                    self._waiting.popleft()
                    self.dropped += 1
                return False
            self._waiting.clear()
            return True

    def state(self) -> BacklogState:
        with self._lock:
            return BacklogState(
                path=self.path.name,
                waiting=len(self._waiting),
                dropped=self.dropped,
                last_error=self.last_error if self._waiting else "",
            )
