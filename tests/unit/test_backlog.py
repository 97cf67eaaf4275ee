"""Append-only files keep every record through a write failure, in order, and say so while they wait."""

from __future__ import annotations

from pathlib import Path

from sentiment.backlog import BackloggedFile
from sentiment.jsonl import iter_records
from sentiment.records import HumanLabel


def _rec(i: int) -> HumanLabel:
    return HumanLabel(request_id=f"r{i}", text="t", label="positive")


def test_records_wait_in_order_and_land_when_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("")  # a file where the folder should be
    f = BackloggedFile(blocker / "log.jsonl")
    assert f.append([_rec(0), _rec(1)]) is False
    assert f.append([_rec(2)]) is False
    assert f.state().waiting == 3 and "Error" in f.state().last_error
    blocker.unlink()
    assert f.append([_rec(3)]) is True
    assert [r["request_id"] for r in iter_records(f.path)] == ["r0", "r1", "r2", "r3"]
    assert f.state().waiting == 0 and f.state().last_error == ""


def test_the_wait_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("")
    f = BackloggedFile(blocker / "log.jsonl", max_waiting=3)
    for i in range(5):
        f.append([_rec(i)])
    assert f.state().waiting == 3 and f.state().dropped == 2
    blocker.unlink()
    f.append([])
    assert [r["request_id"] for r in iter_records(f.path)] == ["r2", "r3", "r4"]  # the newest kept
