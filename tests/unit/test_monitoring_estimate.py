"""``/stats``' performance estimate, its gauges per model version, and the shadow log's per-version estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prometheus_client import REGISTRY

from api.monitoring import Monitor
from sentiment.contract import LABELS
from sentiment.jsonl import append_records
from sentiment.records import HumanLabel, PredictionRecord
from sentiment.settings import EstimationSettings
from sentiment.shadow_log import summarize
from tests.support.records import model_record


def _records(n: int, tag: str, seed: int) -> tuple[list[PredictionRecord], np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(1)).sum(1)
    recs = [model_record(f"{tag}-{i}", p[i], tag) for i in range(n)]
    return recs, y


def test_stats_estimate_the_serving_version_and_count_operator_labels(tmp_path: Path) -> None:
    labels_log = tmp_path / "human_labels.jsonl"
    monitor = Monitor(tmp_path / "predictions.jsonl", 1000, labels_log=labels_log, estimation=EstimationSettings())
    old, _ = _records(300, "m:1", 0)
    new, y = _records(500, "m:2", 1)
    gate = PredictionRecord(request_id="g", text_len=1, label=None, confidence=0.0, status="rejected", reason="x",
                            tier="gate")  # fmt: skip
    monitor.record([*old, gate, *new])
    append_records(labels_log, [HumanLabel(request_id=f"m:2-{i}", text="t", label=LABELS[y[i]]) for i in range(50)])
    stats = monitor.stats()
    est = stats.performance_estimate
    assert est is not None and est.model_tag == "m:2" and est.n == 500 and est.labelled == 50
    assert list(stats.performance_by_version) == ["m:1", "m:2"] and stats.performance_by_version["m:1"].n == 300
    true_acc = float((np.array([r.probs for r in new]).argmax(1) == y).mean())
    assert est.accuracy.lo - 0.03 <= true_acc <= est.accuracy.hi + 0.03
    assert abs(sum(c.share.value for c in est.per_class.values()) - 1.0) < 1e-6
    gauge = REGISTRY.get_sample_value(
        "sentiment_estimated_performance", {"model_tag": "m:2", "metric": "macro_f1", "bound": "value"}
    )
    assert gauge == est.macro_f1.value
    assert (
        REGISTRY.get_sample_value(
            "sentiment_estimated_performance", {"model_tag": "m:1", "metric": "negative_recall", "bound": "lo"}
        )
        == stats.performance_by_version["m:1"].per_class["negative"].recall.lo
    )


def test_the_monitor_keeps_its_estimate_from_each_refresh_for_the_request_path(tmp_path: Path) -> None:
    monitor = Monitor(tmp_path / "predictions.jsonl", 1000, estimation=EstimationSettings(window=200))
    recs, _ = _records(200, "m:1", 3)
    monitor.record(recs[:199])
    assert monitor.estimates == {}  # no refresh before a window of answers
    monitor.record(recs[199:])
    assert list(monitor.estimates) == ["m:1"] and monitor.estimates["m:1"].n == 200
    more, _ = _records(50, "m:2", 4)
    monitor.record(more)
    assert list(monitor.estimates) == ["m:1"]  # still the last refresh's
    assert list(monitor.stats().performance_by_version) == list(monitor.estimates) == ["m:1", "m:2"]


def test_stats_without_logged_probabilities_have_no_estimate(tmp_path: Path) -> None:
    monitor = Monitor(tmp_path / "predictions.jsonl", 100)
    recs, _ = _records(20, "m:1", 2)
    monitor.record([r.model_copy(update={"probs": None}) for r in recs])
    stats = monitor.stats()
    assert stats.performance_estimate is None and stats.performance_by_version == {}


def test_shadow_summary_estimates_both_versions_on_the_same_answers() -> None:
    rows = [
        dict(request_id=f"r{i}", champion_tag="m:1", champion_label="positive", champion_confidence=0.9,
             challenger_tag="m:2", challenger_label="positive", challenger_confidence=0.6,
             champion_probs=[0.05, 0.05, 0.9], challenger_probs=[0.2, 0.2, 0.6])
        for i in range(40)
    ]  # fmt: skip
    s = summarize(rows)
    assert s.champion_estimate is not None and s.challenger_estimate is not None
    assert s.champion_estimate.accuracy.value > s.challenger_estimate.accuracy.value
    assert s.challenger_estimate.model_tag == "m:2" and s.challenger_estimate.n == 40
    assert summarize([{k: v for k, v in r.items() if not k.endswith("_probs")} for r in rows]).champion_estimate is None
