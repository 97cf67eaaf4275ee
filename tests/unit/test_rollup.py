"""The trends rollup: sums per hour that add up to days and weeks, filters, and the estimate from the sums."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.monitoring import Monitor
from sentiment.estimation import estimate
from sentiment.records import PredictionRecord
from sentiment.rollup import Rollup
from tests.support.records import model_record


def _records(n: int, day: str, source: str | None, topic: str | None, seed: int) -> list[PredictionRecord]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return [
        model_record(
            f"{day}-{source}-{i}", p[i], "m:1", ts=f"{day}T{i % 24:02d}:30:00.000Z", source=source, topic=topic
        )
        for i in range(n)
    ]


def test_hours_add_up_to_days_and_weeks_with_filters(tmp_path: Path) -> None:
    rollup = Rollup(tmp_path / "trends.sqlite", gate=0.6)
    a = _records(480, "2026-11-16", "shop", "shoes", 0)  # a Monday
    b = _records(240, "2026-11-17", "app", None, 1)
    c = _records(240, "2026-11-23", "shop", "bags", 2)  # the next Monday
    rejected = PredictionRecord(ts="2026-11-16T05:00:00.000Z", request_id="x", text_len=1, label=None,
                                confidence=0.0, status="rejected", reason="short", tier="gate")  # fmt: skip
    for batch in (a[:100], a[100:], b, c, [rejected]):
        rollup.add(batch)
    hours = rollup.query("hour")
    assert len(hours) == 72 and hours[0].start == "2026-11-16T00"
    days = rollup.query("day")
    assert [(d.start, d.count) for d in days] == [("2026-11-16", 481), ("2026-11-17", 240), ("2026-11-23", 240)]
    weeks = rollup.query("week")
    assert [(w.start, w.count) for w in weeks] == [("2026-11-16", 721), ("2026-11-23", 240)]
    first = days[0]
    assert sum(first.labels.values()) == 480  # the rejected answer has no label
    assert first.mean_confidence == pytest.approx(np.mean([r.confidence for r in a]))
    assert first.low_confidence_share == pytest.approx(np.mean([r.confidence < 0.6 for r in a]))
    direct = estimate(np.array([r.probs for r in a]))
    assert first.estimate is not None and first.estimate.n == 480
    assert first.estimate.accuracy.value == pytest.approx(direct.accuracy.value)
    assert first.estimate.macro_f1.value == pytest.approx(direct.macro_f1.value)
    assert first.estimate.per_class["neutral"].share.value == pytest.approx(direct.per_class["neutral"].share.value)
    assert [w.count for w in rollup.query("day", source="shop")] == [480, 240]
    assert [w.count for w in rollup.query("day", source="shop", topic="bags")] == [240]
    assert [w.start for w in rollup.query("day", start="2026-11-17", end="2026-11-23")] == ["2026-11-17"]
    assert Rollup(tmp_path / "none.sqlite", 0.6).query("day") == []


def test_the_monitor_keeps_the_rollup_and_answers_trends(tmp_path: Path) -> None:
    rollup = Rollup(tmp_path / "trends.sqlite", gate=0.6)
    monitor = Monitor(tmp_path / "predictions.jsonl", 100, rollup=rollup)
    monitor.record(_records(48, "2026-11-20", "shop", "shoes", 3))
    trends = monitor.trends("day", source="shop")
    assert trends.window == "day" and [w.count for w in trends.windows] == [48]
    broken = Monitor(tmp_path / "p2.jsonl", 100, rollup=Rollup(tmp_path, gate=0.6))  # a folder: sqlite cannot open
    broken.record(_records(2, "2026-11-20", None, None, 4))  # the log is still written
    assert (tmp_path / "p2.jsonl").read_text().count("\n") == 2
