"""Append-only JSON Lines under real concurrency: writer processes racing on one file lose, duplicate and tear no
record, with and without rotation. Slow: each test spawns writer processes that import the package. The
single-process behaviour (torn lines, tails, rotation rules) is in tests/unit/test_jsonl.py.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest

from fallback.queue import HumanQueue
from sentiment.jsonl import ReadStats, append_records, iter_records, tail_records
from sentiment.records import QueueRecord
from sentiment.rotation import rotated_files
from sentiment.settings import RotationSettings

pytestmark = pytest.mark.slow

WRITERS = 6
PER_WRITER = 300


def _writer(path: str, writer: int) -> None:
    queue = HumanQueue(Path(path))
    for i in range(PER_WRITER):
        # Records of very different sizes (up to ~70 KB) make interleaving likely if appends were not atomic.
        queue.put(
            QueueRecord(
                request_id=f"{writer}-{i}",
                text="é" * (i % 7) * 5000 + f"review {writer}/{i}",
                reason_code="low_confidence",
                reason="test",
            )
        )


def _run_writers(target: Any, path: Path, n: int) -> None:
    """``n`` spawned processes running ``target(path, index)`` at once; each must finish cleanly."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=(str(path), w)) for w in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0


def test_concurrent_processes_append_exact_parseable_records(tmp_path: Path):
    path = tmp_path / "human_queue.jsonl"
    _run_writers(_writer, path, WRITERS)
    stats = ReadStats()
    records = HumanQueue(path).read(stats)
    assert stats.skipped == 0
    assert len(records) == WRITERS * PER_WRITER
    assert {r.request_id for r in records} == {f"{w}-{i}" for w in range(WRITERS) for i in range(PER_WRITER)}
    for r in records:
        w, i = r.request_id.split("-")
        assert r.text.endswith(f"review {w}/{i}") and r.ts.endswith("Z")
    # Every physical line is one complete JSON object.
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])


ROTATING_WRITERS = 6
ROTATING_PER_WRITER = 250
TINY = RotationSettings(max_bytes=4096, max_age_s=None, keep=None)


def _rotating_writer(path: str, writer: int) -> None:
    for i in range(ROTATING_PER_WRITER):
        # 30-900 bytes per record, so a rotation falls between, never inside, records of any size.
        append_records(Path(path), [{"w": writer, "i": i, "pad": "é" * (i % 30) * 15}], rotation=TINY)


def test_concurrent_writers_rotating_lose_duplicate_and_tear_nothing(tmp_path: Path):
    path = tmp_path / "predictions.jsonl"
    _run_writers(_rotating_writer, path, ROTATING_WRITERS)
    pieces = rotated_files(path)
    assert len(pieces) > 50  # many rotations happened while the writers raced
    for f in [*pieces, path]:
        lines = f.read_bytes().split(b"\n")
        assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1]), f  # none torn
        assert f.stat().st_size <= TINY.max_bytes
    stats = ReadStats()
    records = list(iter_records(path, stats))
    assert stats.skipped == 0
    assert len(records) == ROTATING_WRITERS * ROTATING_PER_WRITER
    seen = [(r["w"], r["i"]) for r in records]
    assert len(set(seen)) == len(seen)  # none duplicated
    for w in range(ROTATING_WRITERS):  # read back in the order each writer wrote: pieces are in time order
        assert [i for ww, i in seen if ww == w] == list(range(ROTATING_PER_WRITER))
    tail = tail_records(path, 700, block=1024)
    assert tail == records[-700:]
