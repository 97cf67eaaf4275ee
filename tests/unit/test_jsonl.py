"""Append-only JSON Lines in one process: torn lines never break readers or later appends, tails read back across
blocks and rotated pieces, rotation follows size, age and the clock. Writer processes racing on one file are in
tests/stress/test_jsonl_writers.py."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sentiment.jsonl import ReadStats, append_records, iter_records, tail_records
from sentiment.rotation import rotated_files
from sentiment.settings import RotationSettings


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


# Rotation ----------------------------------------------------------------------------------------------------------


def test_a_writer_queued_on_a_rotated_file_reopens_the_live_one(tmp_path: Path):
    path = tmp_path / "q.jsonl"
    append_records(path, [{"n": 1}])
    holder = os.open(path, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process holds the lock ...
    writer = threading.Thread(target=append_records, args=(path, [{"n": 2}]))
    writer.start()
    time.sleep(0.2)  # ... while this writer opened the file and waits for the lock
    closed = tmp_path / "q.2026-01-01T00-00-00.000000Z.jsonl"
    os.rename(path, closed)  # ... and rotates it away
    path.write_bytes(b"")
    os.close(holder)
    writer.join(10)
    assert [r["n"] for r in iter_records(closed)] == [1]
    assert [r["n"] for r in iter_records(path)] == [1, 2]  # the closed piece first, then the live file


def _at(seconds: float) -> datetime:
    return datetime(2026, 12, 1, 22, 0, tzinfo=UTC) + timedelta(seconds=seconds)


def test_age_rotation_follows_the_clock(tmp_path: Path):
    path = tmp_path / "predictions.jsonl"
    daily = RotationSettings(max_bytes=None, max_age_s=3600, keep=None)

    def put(n: int, t: float) -> None:
        ts = _at(t).isoformat().replace("+00:00", "Z")
        append_records(path, [{"n": n, "ts": ts}], rotation=daily, now=lambda: _at(t))

    put(1, 0)
    put(2, 3599)
    assert rotated_files(path) == []
    put(3, 3600)  # the oldest record is an hour old: the file is closed before n=3
    assert [p.name for p in rotated_files(path)] == ["predictions.2026-12-01T23-00-00.000000Z.jsonl"]
    assert [r["n"] for r in iter_records(path)] == [1, 2, 3]
    assert [r["n"] for r in tail_records(path, 1)] == [3]
    put(4, 7199)
    assert len(rotated_files(path)) == 1
    put(5, 7200)
    assert len(rotated_files(path)) == 2
    assert [r["n"] for r in iter_records(path)] == [1, 2, 3, 4, 5]


def test_names_stay_in_time_order_when_the_clock_steps_back(tmp_path: Path):
    path = tmp_path / "log.jsonl"
    tiny = RotationSettings(max_bytes=10, max_age_s=None, keep=None)
    for n, t in enumerate([0, 100, 50, 50, 10]):  # the clock goes back twice
        append_records(path, [{"n": n}], rotation=tiny, now=lambda t=t: _at(t))
    names = [p.name for p in rotated_files(path)]
    assert len(names) == 4 and names == sorted(names) and len(set(names)) == 4
    assert [r["n"] for r in iter_records(path)] == [0, 1, 2, 3, 4]


def test_keep_prunes_only_the_oldest_pieces(tmp_path: Path):
    path = tmp_path / "log.jsonl"
    policy = RotationSettings(max_bytes=10, max_age_s=None, keep=3)
    for n in range(10):
        append_records(path, [{"n": n}], rotation=policy, now=lambda n=n: _at(n))
    assert len(rotated_files(path)) == 3
    assert [r["n"] for r in iter_records(path)] == [6, 7, 8, 9]


def test_tail_reads_only_the_pieces_it_needs(tmp_path: Path):
    path = tmp_path / "log.jsonl"
    policy = RotationSettings(max_bytes=200, max_age_s=None, keep=None)
    for n in range(100):
        append_records(path, [{"n": n}], rotation=policy, now=lambda n=n: _at(n))
    pieces = rotated_files(path)
    with open(pieces[0], "ab") as fh:
        fh.write(b"corrupt\n")  # a bad line in the oldest piece: only a reader that goes that far sees it
    stats = ReadStats()
    assert [r["n"] for r in tail_records(path, 30, stats)] == list(range(70, 100))
    assert stats.skipped == 0
    everything = ReadStats()
    assert [r["n"] for r in tail_records(path, 1000, everything)] == list(range(100))
    assert everything.skipped == 1


def test_bad_lines_never_leave_a_gap_in_the_tail(tmp_path: Path):
    path = tmp_path / "log.jsonl"
    policy = RotationSettings(max_bytes=300, max_age_s=None, keep=None)
    for n in range(100):
        append_records(path, [{"n": n}], rotation=policy, now=lambda n=n: _at(n))
        if n % 3 == 0:
            with open(path, "ab") as fh:
                fh.write(b"not json\n")  # bad lines in every piece, the live file included
    assert len(rotated_files(path)) >= 2
    assert [r["n"] for r in iter_records(path)] == list(range(100))
    for k in (1, 5, 20, 60, 100, 150):
        assert [r["n"] for r in tail_records(path, k, block=64)] == list(range(100))[-k:]
