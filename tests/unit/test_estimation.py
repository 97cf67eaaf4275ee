"""The performance estimator on synthetic streams whose truth is known."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from sentiment.contract import LABELS
from sentiment.estimation import (
    by_version,
    count_windows,
    estimate,
    fit_atc,
    metrics_of,
    record_arrays,
    true_confusion,
)


def stream(n: int, seed: int, sharpen: float = 1.0, shift: float = 1.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated probabilities, labels drawn from them, and the same logits sharpened (over-confident if > 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, 3))
    z[:, 2] += shift
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(1)).sum(1)
    q = np.exp(z * sharpen) / np.exp(z * sharpen).sum(1, keepdims=True)
    return p, y, q


def truth(y: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    return metrics_of(true_confusion(y, probs.argmax(1)))


def test_metrics_match_sklearn() -> None:
    p, y, _ = stream(700, 0)
    pred = p.argmax(1)
    m = truth(y, p)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", labels=[0, 1, 2], zero_division=0))
    assert m["precision"] == pytest.approx(precision_score(y, pred, average=None, labels=[0, 1, 2], zero_division=0))
    assert m["recall"] == pytest.approx(recall_score(y, pred, average=None, labels=[0, 1, 2], zero_division=0))


@pytest.mark.parametrize("method", ["cbpe", "atc"])
def test_a_calibrated_stream_lands_inside_its_interval(method: str) -> None:
    vp, vy, _ = stream(3000, 99)
    atc = fit_atc(vp, vy)
    inside = {"accuracy": 0, "macro_f1": 0, "negative_recall": 0, "positive_share": 0}
    for seed in range(60):
        p, y, _ = stream(500, seed)
        e = estimate(p, method, atc, seed=seed)  # type: ignore[arg-type]
        t = truth(y, p)
        inside["accuracy"] += e.accuracy.contains(float(t["accuracy"]))
        inside["macro_f1"] += e.macro_f1.contains(float(t["macro_f1"]))
        inside["negative_recall"] += e.per_class["negative"].recall.contains(float(t["recall"][0]))
        inside["positive_share"] += e.per_class["positive"].share.contains(float(t["mix"][2]))
    assert all(v >= 52 for v in inside.values()), inside  # 95% of 60 is 57


def test_an_over_confident_stream_shows_its_bias() -> None:
    p, y, q = stream(20_000, 1, sharpen=2.0)
    assert (q.argmax(1) == p.argmax(1)).all()  # same answers, only the confidence is wrong
    e = estimate(q)
    t = truth(y, q)
    assert e.accuracy.lo > t["accuracy"] + 0.05  # over-confidence over-estimates, far outside the interval
    assert e.macro_f1.lo > t["macro_f1"] + 0.05
    honest = estimate(p)
    assert honest.accuracy.contains(float(t["accuracy"])) and honest.macro_f1.contains(float(t["macro_f1"]))


def test_atc_threshold_reproduces_validation_accuracy() -> None:
    vp, vy, _ = stream(4000, 5)
    atc = fit_atc(vp, vy)
    assert atc.val_accuracy == pytest.approx((vp.argmax(1) == vy).mean())
    assert (vp.max(1) > atc.threshold).mean() == pytest.approx(atc.val_accuracy, abs=1e-3)
    with pytest.raises(ValueError):
        estimate(vp, "atc")


def test_operator_labels_correct_a_biased_estimate_and_say_so() -> None:
    p, y, q = stream(4000, 2, sharpen=2.0)
    t = truth(y, q)
    labels = np.where(np.arange(len(y)) % 2 == 0, y, -1)  # half labelled
    blind, corrected = estimate(q), estimate(q, labels=labels)
    assert abs(corrected.accuracy.value - t["accuracy"]) < abs(blind.accuracy.value - t["accuracy"]) / 1.5
    assert corrected.labelled == 2000 and "operator label" in corrected.note and blind.labelled == 0
    hard = np.where(q.max(1) < 0.6, y, -1)  # operators label the low-confidence answers (the human queue)
    picked = estimate(p, labels=hard)
    assert picked.realised_accuracy is not None and picked.labelled_estimated_accuracy is not None
    assert picked.realised_accuracy < picked.accuracy.value - 0.1  # the chosen few are harder than the stream
    assert abs(picked.realised_accuracy - picked.labelled_estimated_accuracy) < 0.03  # like for like they agree
    every = estimate(q, labels=y)
    assert every.accuracy.value == pytest.approx(t["accuracy"]) and every.accuracy.lo == every.accuracy.hi
    assert every.realised_macro_f1 == pytest.approx(t["macro_f1"])


def test_log_records_by_version_with_labels() -> None:
    p, y, _ = stream(300, 3)
    records = [
        {"request_id": f"r{i}", "ts": f"t{i}", "model_tag": "m:1" if i < 200 else "m:2", "probs": p[i].tolist()}
        for i in range(300)
    ]
    records.append({"request_id": "old", "model_confidence": 0.9})  # written before probabilities were logged
    records.append({"request_id": "gate"})  # never reached the model
    arrays = record_arrays(records, {"r0": LABELS[y[0]], "r250": LABELS[y[250]], "gate": "positive"})
    assert arrays.skipped == 1 and len(arrays.probs) == 300
    est = by_version(arrays)
    assert [(k, v.n, v.labelled) for k, v in est.items()] == [("m:1", 200, 1), ("m:2", 100, 1)]


def test_count_windows_fold_a_short_tail_into_the_last() -> None:
    assert count_windows(1200, 500) == [slice(0, 500), slice(500, 1200)]
    assert count_windows(1300, 500) == [slice(0, 500), slice(500, 1000), slice(1000, 1300)]
    assert count_windows(100, 500) == [slice(0, 100)]


def test_a_million_answers_estimate_fast() -> None:
    _, _, q = stream(1_000_000, 4)
    start = time.perf_counter()
    e = estimate(q)
    assert time.perf_counter() - start < 10.0 and e.n == 1_000_000


def test_the_evaluation_scores_a_calibrated_fold_close_to_its_truth() -> None:
    from experiments.evaluate_estimation import evaluate_fold

    p, y, _ = stream(1500, 7)
    vp, vy, _ = stream(600, 8)
    order = np.argsort(y, kind="stable")  # stored folds are ordered by class; the evaluation shuffles them
    fold = {
        "source": "synthetic",
        "y": y[order].tolist(),
        "probs": p[order].tolist(),
        "val_y": vy.tolist(),
        "val_probs": vp.tolist(),
        "in_domain": {"macro_f1": 0.9},
    }
    out = evaluate_fold(fold, drop=0.05, seed=0)
    assert abs(out["stream"]["cbpe"]["accuracy_error"]) <= 0.02 and out["stream"]["cbpe"]["accuracy_inside"]
    assert len(out["windows"]) == 3 and all(w["true"]["macro_f1"] > 0.4 for w in out["windows"])  # mixed classes
    assert out["false_drop"]["cbpe"] <= 0.05 and len(out["in_domain_windows"]) == 100
    assert out["true_drop"] and out["drop"]["cbpe"]["stream"] is False  # truth well below 0.9; estimate near val's
