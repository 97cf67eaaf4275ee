"""Append-only JSON Lines that survive concurrent writers and crashes.

Writers: each record batch is one ``write`` of whole lines under an exclusive ``flock``, on an ``O_APPEND``
descriptor, so processes never interleave. If a crash left a torn last line (no trailing newline), the next
writer terminates it first, so the torn bytes can never glue themselves onto a good record.
Readers: a line that does not parse is skipped and counted, never raised.
Rotation (:mod:`sentiment.rotation`): a writer given a :class:`RotationSettings` closes the live file by renaming it,
under the same lock, before an append that would make it too big or too old. Every writer re-checks after taking the
lock that its descriptor is still the file at ``path`` (another process may have rotated it meanwhile) and reopens
if not, so no record lands in a closed piece. Readers see the closed pieces and the live file as one log, oldest first.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from pydantic import BaseModel

from sentiment.rotation import due, first_record_time, prune, rotated_files, rotated_name, utc_now
from sentiment.settings import RotationSettings


def _dumps(record: Mapping[str, Any] | BaseModel) -> str:
    if isinstance(record, BaseModel):
        return record.model_dump_json()
    return json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))


def _open_locked(path: Path) -> int:
    """A descriptor on the file that is at ``path`` now, held under ``LOCK_EX``.

    Waiting for the lock can take long enough for another writer to rotate the file away: its descriptor then names
    a closed piece, so it is dropped (which drops the lock) and ``path`` is opened again.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held = os.fstat(fd)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)


# path -> (device, inode, time of its first record): read once per live file, not once per append.
_OPENED: dict[Path, tuple[int, int, datetime | None]] = {}


def _opened(path: Path, fd: int) -> datetime | None:
    st = os.fstat(fd)
    cached = _OPENED.get(path)
    if cached is not None and cached[:2] == (st.st_dev, st.st_ino):
        return cached[2]
    when = first_record_time(fd)
    if st.st_size:
        _OPENED[path] = (st.st_dev, st.st_ino, when)
    return when


def _rotate_if_due(path: Path, fd: int, incoming: int, policy: RotationSettings, now: datetime) -> int:
    """The descriptor to append to: ``fd``, or (locked) a fresh live file after closing the full or old one.

    The fresh file may already hold what other writers appended between the rename and our lock, so it is checked
    again (an empty file is never due, so this ends).
    """
    while due(os.fstat(fd).st_size, incoming, _opened(path, fd) if policy.max_age_s is not None else None, now, policy):
        os.rename(path, rotated_name(path, now, rotated_files(path)))
        os.close(fd)  # writers queued on the closed piece now see that it moved, and reopen
        fd = _open_locked(path)
        prune(path, policy.keep)
    return fd


def append_records(
    path: Path,
    records: Iterable[Mapping[str, Any] | BaseModel],
    fsync: bool = False,
    rotation: RotationSettings | None = None,
    now: Callable[[], datetime] = utc_now,
) -> int:
    """Append records atomically with respect to other writers (rotating first when due); returns how many."""
    lines = [_dumps(r) for r in records]
    if not lines:
        return 0
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_locked(path)
    try:
        if rotation is not None:
            fd = _rotate_if_due(path, fd, len(payload), rotation, now())
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
        os.close(fd)  # also releases the lock
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


def _same_file(a: IO[bytes] | None, b: IO[bytes]) -> bool:
    if a is None:
        return False
    sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _open(path: Path) -> IO[bytes] | None:
    """The file for reading (``.gz`` decompressed), or None if it does not exist (yet, or any more)."""
    try:
        if Path(path).suffix == ".gz":
            return cast(IO[bytes], gzip.open(path, "rb"))
        return open(path, "rb")
    except FileNotFoundError:
        return None


def iter_records(path: Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Stream every parseable record of the log, closed pieces first; a missing log is simply empty.

    The live file is opened before the pieces are listed, so a rotation meanwhile neither hides nor repeats records.
    ``.gz`` files are read compressed.
    """
    stats = stats if stats is not None else ReadStats()
    live = _open(path)
    try:
        for piece in rotated_files(Path(path)):
            fh = _open(piece)  # None: pruned since it was listed
            if fh is None:
                continue
            with fh:
                if _same_file(live, fh):  # rotated after ``live`` was opened: read below, as the live file
                    continue
                yield from _records(fh, stats)
        if live is not None:
            yield from _records(live, stats)
    finally:
        if live is not None:
            live.close()


def _records(fh: IO[bytes], stats: ReadStats) -> Iterator[dict[str, Any]]:
    for line in fh:
        obj = _parse(line, stats)
        if obj is not None:
            yield obj


def _tail_file(fh: IO[bytes], n: int, stats: ReadStats, block: int) -> list[dict[str, Any]]:
    """The last ``n`` parseable records of one file (fewer only if it has fewer), reading backwards from its end.

    Bad lines do not count towards ``n``: stopping short would leave a gap when the caller goes on to an older piece.
    """
    pos = fh.seek(0, os.SEEK_END)
    buf = b""
    newest_first: list[dict[str, Any]] = []
    while pos > 0 and len(newest_first) < n:
        step = min(block, pos)
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        parts = buf.split(b"\n")
        buf = parts[0]  # possibly partial: keep for the next block
        for line in reversed(parts[1:]):
            if (obj := _parse(line, stats)) is not None:
                newest_first.append(obj)
                if len(newest_first) == n:
                    break
    if pos == 0 and buf and len(newest_first) < n and (obj := _parse(buf, stats)) is not None:
        newest_first.append(obj)
    newest_first.reverse()
    return newest_first


def tail_records(path: Path, n: int, stats: ReadStats | None = None, block: int = 1 << 16) -> list[dict[str, Any]]:
    """The last ``n`` parseable records of the log, oldest first: the live file, then closed pieces newest first,
    read backwards and only as far as needed, so huge logs stay cheap."""
    stats = stats if stats is not None else ReadStats()
    if n <= 0:
        return []
    live = _open(path)
    newest_first: list[list[dict[str, Any]]] = []
    got = 0
    try:
        if live is not None:
            newest_first.append(_tail_file(live, n, stats, block))
            got = len(newest_first[0])
        if got < n:
            for piece in reversed(rotated_files(Path(path))):
                fh = _open(piece)  # None: pruned since it was listed
                if fh is None:
                    continue
                with fh:
                    if _same_file(live, fh):
                        continue
                    newest_first.append(_tail_file(fh, n - got, stats, block))
                got += len(newest_first[-1])
                if got >= n:
                    break
    finally:
        if live is not None:
            live.close()
    return [r for chunk in reversed(newest_first) for r in chunk][-n:]
