"""Append-only JSON Lines that survive concurrent writers and crashes.

Writers: each record batch is one ``write`` of whole lines under an exclusive ``flock``, on an ``O_APPEND``
descriptor, so processes never interleave. If a crash left a torn last line (no trailing newline), the next
writer terminates it first, so the torn bytes can never glue themselves onto a good record.
Readers: a line that does not parse is skipped and counted, never raised.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def _dumps(record: Mapping[str, Any] | BaseModel) -> str:
    if isinstance(record, BaseModel):
        return record.model_dump_json()
    return json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))


def append_records(path: Path, records: Iterable[Mapping[str, Any] | BaseModel], fsync: bool = False) -> int:
    """Append records atomically with respect to other writers; returns how many were written."""
    lines = [_dumps(r) for r in records]
    if not lines:
        return 0
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                payload = b"\n" + payload
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if fsync:
                os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return len(lines)


class ReadStats(BaseModel):
    """What a reader saw: good records and lines it had to skip (torn or corrupt)."""

    records: int = 0
    skipped: int = 0


def _parse(line: bytes, stats: ReadStats) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        stats.skipped += 1
        return None
    if not isinstance(obj, dict):
        stats.skipped += 1
        return None
    stats.records += 1
    return obj


def iter_records(path: Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Stream every parseable record; a missing file is simply empty. ``.gz`` files are read compressed."""
    stats = stats if stats is not None else ReadStats()
    opener = gzip.open if Path(path).suffix == ".gz" else open
    try:
        fh = opener(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            obj = _parse(line, stats)
            if obj is not None:
                yield obj


def tail_records(path: Path, n: int, stats: ReadStats | None = None, block: int = 1 << 16) -> list[dict[str, Any]]:
    """The last ``n`` parseable records, reading backwards from the end so huge logs stay cheap."""
    stats = stats if stats is not None else ReadStats()
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return []
    with fh:
        end = fh.seek(0, os.SEEK_END)
        buf = b""
        pos = end
        lines: deque[bytes] = deque()
        while pos > 0 and len(lines) <= n:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            parts = buf.split(b"\n")
            buf = parts[0]  # possibly partial: keep for the next block
            lines.extendleft(reversed(parts[1:]))
        if pos == 0 and buf:
            lines.appendleft(buf)
    out = [obj for line in lines if (obj := _parse(line, stats)) is not None]
    return out[-n:] if n > 0 else []
