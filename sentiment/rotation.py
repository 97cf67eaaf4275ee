"""Where a rotated JSON Lines log goes, how its pieces are found in time order, and when the live file is due.

``predictions.jsonl`` is rotated to ``predictions.2026-12-01T22-15-03.123456Z.jsonl``, stamped with the moment it
was closed. Names are fixed-width, so sorting them sorts by time; a new name always sorts after every existing one,
even if the clock stepped back. The caller holds the log's lock (:mod:`sentiment.jsonl`) around all of this.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sentiment.settings import RotationSettings

_STAMP = "%Y-%m-%dT%H-%M-%S.%fZ"
_STAMP_RE = r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{6}Z"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _pattern(path: Path) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(path.stem)}\.({_STAMP_RE}){re.escape(path.suffix)}")


def rotated_files(path: Path) -> list[Path]:
    """The closed pieces of the log at ``path``, oldest first (the live file itself not included)."""
    pattern = _pattern(path)
    try:
        names = os.listdir(path.parent)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [path.parent / n for n in sorted(n for n in names if pattern.fullmatch(n))]


def rotated_name(path: Path, now: datetime, existing: list[Path]) -> Path:
    """``path`` stamped with ``now``, or 1 µs after the newest existing piece if the clock is behind it."""
    when = now.astimezone(UTC)
    if existing:
        match = _pattern(path).fullmatch(existing[-1].name)
        if match:
            newest = datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)
            when = max(when, newest + timedelta(microseconds=1))
    return path.with_name(f"{path.stem}.{when.strftime(_STAMP)}{path.suffix}")


def first_record_time(fd: int) -> datetime | None:
    """The ``ts`` of the file's first record that has one: the age of a log is the age of its oldest record."""
    for line in os.pread(fd, 1 << 16, 0).split(b"\n"):
        try:
            ts = json.loads(line).get("ts")
        except (ValueError, AttributeError):  # torn, empty or not an object
            continue
        if not isinstance(ts, str):
            continue
        try:
            when = datetime.fromisoformat(ts)
        except ValueError:
            continue
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def due(size: int, incoming: int, opened: datetime | None, now: datetime, policy: RotationSettings) -> bool:
    """Whether the live file (``size`` bytes, first record at ``opened``) must be closed before ``incoming`` more.

    An empty file is never due: a single batch larger than ``max_bytes`` still has to go somewhere.
    """
    if size == 0:
        return False
    if policy.max_bytes is not None and size + incoming > policy.max_bytes:
        return True
    return policy.max_age_s is not None and opened is not None and (now - opened).total_seconds() >= policy.max_age_s


def prune(path: Path, keep: int | None) -> list[Path]:
    """Delete all but the newest ``keep`` closed pieces; returns what was deleted."""
    if keep is None:
        return []
    pieces = rotated_files(path)
    doomed = pieces[: max(0, len(pieces) - keep)]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed
