"""Append-only JSON Lines: concurrent writers lose nothing, torn lines never break readers."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from fallback.queue import HumanQueue
from sentiment.jsonl import ReadStats, append_records, iter_records, tail_records
from sentiment.records import QueueRecord

WRITERS = 6
PER_WRITER = 300


def _writer(path: str, writer: int) -> None:
    queue = HumanQueue(Path(path))
    for i in range(PER_WRITER):
        # Records of very different sizes (up to ~70 KB) make interleaving likely if appends were not atomic.
        queue.put(
            QueueRecord(request_id=f"{writer}-{i}", text="é" * (i % 7) * 5000 + f"review {writer}/{i}",
                        reason_code="low_confidence", reason="test")
        )


@pytest.mark.slow  # spawns writer processes that import the package
def test_concurrent_processes_append_exact_parseable_records(tmp_path: Path):
    path = tmp_path / "human_queue.jsonl"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
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


def test_reader_skips_and_counts_a_torn_last_line(tmp_path: Path):
    path = tmp_path / "q.jsonl"
    append_records(path, [{"n": 1}, {"n": 2}])
    with open(path, "ab") as fh:
        fh.write(b'{"n": 3, "text": "crash mid-wri')  # a writer died here
    stats = ReadStats()
    assert [r["n"] for r in iter_records(path, stats)] == [1, 2]
    assert (stats.records, stats.skipped) == (2, 1)
    assert [r["n"] for r in tail_records(path, 10)] == [1, 2]


def test_append_after_crash_does_not_glue_onto_the_torn_line(tmp_path: Path):
    path = tmp_path / "q.jsonl"
    append_records(path, [{"n": 1}])
    with open(path, "ab") as fh:
        fh.write(b'{"n": 2, "tor')
    append_records(path, [{"n": 3}])
    stats = ReadStats()
    assert [r["n"] for r in iter_records(path, stats)] == [1, 3]
    assert stats.skipped == 1


def test_missing_and_empty_files_read_as_empty(tmp_path: Path):
    assert list(iter_records(tmp_path / "nope.jsonl")) == []
    assert tail_records(tmp_path / "nope.jsonl", 5) == []
    (tmp_path / "empty.jsonl").write_text("")
    assert tail_records(tmp_path / "empty.jsonl", 5) == []


def test_tail_reads_the_last_records_across_blocks(tmp_path: Path):
    path = tmp_path / "big.jsonl"
    append_records(path, ({"n": i, "pad": "x" * 100} for i in range(5000)))
    tail = tail_records(path, 1000, block=4096)
    assert [r["n"] for r in tail] == list(range(4000, 5000))
    assert [r["n"] for r in tail_records(path, 3)] == [4997, 4998, 4999]
