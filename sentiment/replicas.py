"""One log written by many replicas: every pod's copy of a log under a shared root, read as one, in time order.

On Kubernetes (``deploy/``) each pod writes its own ``predictions.jsonl`` and ``human_queue.jsonl`` (with their
rotated pieces) to ``<root>/<pod name>/`` on a shared volume, so no two pods append to one file. Readers (the
dashboard, the drift CLI) name the log as ``<root>/predictions.jsonl`` with ``replicas=True`` and get every pod's
records merged by timestamp, each tagged with the folder it came from in the ``replica`` field. Without
``replicas`` the path is one data dir's log, read as before (its records tagged with that folder's name).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentiment.jsonl import ReadStats, iter_records, tail_records
from sentiment.rotation import rotated_files

REPLICA_FIELD = "replica"
# Allowed disagreement between the clocks that stamp records (pods) and files (the volume's server).
CLOCK_SKEW_S = 300.0


def _has_log(log: Path) -> bool:
    return log.is_file() or bool(rotated_files(log))


def replica_logs(log: Path, replicas: bool) -> dict[str, Path]:
    """Replica name -> its copy of ``log``, sorted by name.

    ``replicas``: ``log`` is ``<root>/<name>``; every folder directly under ``<root>`` that holds ``<name>`` (live or
    rotated) is a replica. Deeper folders (a pod's ``demo/``) are not. Otherwise ``log`` itself, named after its folder.
    """
    if not replicas:
        return {log.parent.name: log}
    try:
        entries = sorted(os.scandir(log.parent), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found = {}
    for entry in entries:
        if entry.is_dir() and _has_log(mine := Path(entry.path) / log.name):
            found[entry.name] = mine
    return found


def _ts(record: Mapping[str, Any]) -> str:
    ts = record.get("ts")
    return ts if isinstance(ts, str) else ""


def _tagged(records: Iterator[dict[str, Any]], replica: str) -> Iterator[dict[str, Any]]:
    for r in records:
        r[REPLICA_FIELD] = replica
        yield r


def iter_merged(logs: Mapping[str, Path], stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Every record of every replica's log, streamed and merged by ``ts`` (one open reader per replica).

    Each log is already in append order, which is time order up to the few milliseconds by which concurrent
    workers of one server can swap neighbours; the merge keeps each log's own order, so memory stays one record
    per replica however long the logs are.
    """
    stats = stats if stats is not None else ReadStats()
    streams = [_tagged(iter_records(path, stats), name) for name, path in logs.items()]
    yield from heapq.merge(*streams, key=_ts)


def _last_write(log: Path) -> float:
    """When the replica last wrote this log: its live file's mtime, else its newest rotated piece's; 0 if neither."""
    for piece in (log, *reversed(rotated_files(log))):
        try:
            return piece.stat().st_mtime
        except FileNotFoundError:
            continue
    return 0.0


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tail_merged(logs: Mapping[str, Path], n: int, stats: ReadStats | None = None) -> list[dict[str, Any]]:
    """The newest ``n`` records over all replicas, oldest first: each replica's last ``n``, sorted by ``ts``.

    Replicas are read newest-written first. Once ``n`` records are in hand, a replica that last wrote before the
    oldest of them (by more than ``CLOCK_SKEW_S``: pods' clocks and the file server's differ) cannot add to them,
    nor can any replica after it: the folders of pods long gone cost a ``stat`` each, not a read.
    """
    stats = stats if stats is not None else ReadStats()
    if n <= 0:
        return []
    tails: list[list[dict[str, Any]]] = []
    newest: list[str] = []  # min-heap of the n newest timestamps so far
    for name, path in sorted(logs.items(), key=lambda item: _last_write(item[1]), reverse=True):
        if len(newest) >= n and _iso(_last_write(path) + CLOCK_SKEW_S) < newest[0]:
            break
        tails.append(list(_tagged(iter(tail_records(path, n, stats)), name)))
        for record in tails[-1]:
            if len(newest) < n:
                heapq.heappush(newest, _ts(record))
            else:
                heapq.heappushpop(newest, _ts(record))
    # A full (stable) sort, not a merge: concurrent workers of one server can append neighbours out of time order,
    # and the tail is bounded by n anyway.
    return sorted((r for tail in tails for r in tail), key=_ts)[-n:]
