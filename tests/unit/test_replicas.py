"""Many replicas' logs read as one (sentiment/replicas.py): which folders count, time order, tags, tails, rotation."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sentiment.jsonl import ReadStats, append_records, iter_records
from sentiment.replicas import REPLICA_FIELD, iter_merged, replica_logs, tail_merged
from sentiment.settings import RotationSettings


def _rec(second: int, rid: str) -> dict[str, object]:
    return {"ts": f"2026-12-01T10:00:{second:02d}.000Z", "request_id": rid}


def _volume(root: Path) -> None:
    """Two pods (one with a rotated piece and a torn line), a pod that logged nothing yet, a demo folder inside a
    pod, and a stray file at the root: only the two pods' predictions count."""
    a, b = root / "api-7c9-aaaaa", root / "api-7c9-bbbbb"
    rotate = RotationSettings(max_bytes=200, max_age_s=None, keep=None)
    for s in (0, 2, 4, 6, 8):
        append_records(
            a / "predictions.jsonl",
            [_rec(s, f"a{s}")],
            rotation=rotate,
            now=lambda: datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC),
        )
    for s in (1, 3, 5, 7):
        append_records(b / "predictions.jsonl", [_rec(s, f"b{s}")])
    with (b / "predictions.jsonl").open("ab") as f:
        f.write(b'{"ts":"2026-12-01T10:00:09.000Z","request_id":"torn')
    (root / "api-7c9-ccccc").mkdir()
    append_records(a / "demo" / "predictions.jsonl", [_rec(5, "demo")])
    (root / "predictions.jsonl").write_text('{"ts":"2026-12-01T10:00:05.000Z","request_id":"stray"}\n')


def test_every_pod_folder_with_the_log_is_a_replica_and_nothing_else(tmp_path: Path) -> None:
    _volume(tmp_path)
    logs = replica_logs(tmp_path / "predictions.jsonl", replicas=True)
    assert list(logs) == ["api-7c9-aaaaa", "api-7c9-bbbbb"]
    assert len(list((tmp_path / "api-7c9-aaaaa").glob("predictions.*.jsonl"))) >= 1  # rotation did happen
    assert replica_logs(tmp_path / "nowhere" / "predictions.jsonl", replicas=True) == {}
    one = tmp_path / "api-7c9-bbbbb" / "predictions.jsonl"
    assert replica_logs(one, replicas=False) == {"api-7c9-bbbbb": one}


def test_merged_in_time_order_tagged_once_each_torn_line_counted(tmp_path: Path) -> None:
    _volume(tmp_path)
    stats = ReadStats()
    merged = list(iter_merged(replica_logs(tmp_path / "predictions.jsonl", replicas=True), stats))
    assert [r["request_id"] for r in merged] == ["a0", "b1", "a2", "b3", "a4", "b5", "a6", "b7", "a8"]
    assert {r["request_id"][0]: r[REPLICA_FIELD] for r in merged} == {"a": "api-7c9-aaaaa", "b": "api-7c9-bbbbb"}
    assert (stats.records, stats.skipped) == (9, 1)


def test_tail_is_the_newest_over_all_replicas(tmp_path: Path) -> None:
    _volume(tmp_path)
    logs = replica_logs(tmp_path / "predictions.jsonl", replicas=True)
    assert [r["request_id"] for r in tail_merged(logs, 3)] == ["a6", "b7", "a8"]
    assert [r["request_id"] for r in tail_merged(logs, 100)] == [r["request_id"] for r in iter_merged(logs)]
    assert tail_merged(logs, 0) == []


def test_tail_is_in_time_order_when_two_workers_appended_neighbours_out_of_order(tmp_path: Path) -> None:
    # Two workers of one server share a file: a record stamped first can be appended second.
    a, b = tmp_path / "pod-a" / "predictions.jsonl", tmp_path / "pod-b" / "predictions.jsonl"
    append_records(a, [_rec(1, "a1"), _rec(4, "a4"), _rec(3, "a3"), _rec(6, "a6")])
    append_records(b, [_rec(2, "b2"), _rec(5, "b5")])
    logs = replica_logs(tmp_path / "predictions.jsonl", replicas=True)
    assert [r["request_id"] for r in tail_merged(logs, 100)] == ["a1", "b2", "a3", "a4", "b5", "a6"]
    assert [r["request_id"] for r in tail_merged(logs, 3)] == ["a4", "b5", "a6"]


def test_a_gone_pods_folder_is_not_read_once_newer_records_fill_the_tail(tmp_path: Path) -> None:
    """After many rollouts most folders belong to pods long gone: the tail must not read them all."""
    _volume(tmp_path)
    old = tmp_path / "api-5f1-zzzzz" / "predictions.jsonl"
    append_records(old, [{"ts": f"2026-11-01T08:00:{s:02d}.000Z", "request_id": f"old{s}"} for s in range(50)])
    last_write = datetime(2026, 11, 1, 8, 1, tzinfo=UTC).timestamp()
    os.utime(old, (last_write, last_write))
    logs = replica_logs(tmp_path / "predictions.jsonl", replicas=True)
    assert len(logs) == 3
    stats = ReadStats()
    assert [r["request_id"] for r in tail_merged(logs, 3, stats)] == ["a6", "b7", "a8"]
    assert stats.records == 6  # three from each live pod, none from the old one
    everything = tail_merged(logs, 100)
    assert len(everything) == 59 and everything[0]["request_id"] == "old0"  # asked for more: the old pod is read


def test_one_data_dir_reads_as_before(tmp_path: Path) -> None:
    _volume(tmp_path)
    log = tmp_path / "api-7c9-aaaaa" / "predictions.jsonl"
    alone = list(iter_merged(replica_logs(log, replicas=False)))
    assert [{k: v for k, v in r.items() if k != REPLICA_FIELD} for r in alone] == list(iter_records(log))
    assert {r[REPLICA_FIELD] for r in alone} == {"api-7c9-aaaaa"}
