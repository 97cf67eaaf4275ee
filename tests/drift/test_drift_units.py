"""Drift detector units: features, windows, the MMD test, the report, and the CLI on predictions logs and files."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from drift.embedding import mmd_test
from drift.features import oov_rate
from drift.inject import leak_markup
from drift.report import SIGNAL_NAMES, DriftReport, render_text
from drift.windows import WindowSpec, parse_range, read_windows, window_from_records
from scripts import simulate_drift
from sentiment.jsonl import append_records, iter_records
from sentiment.records import PredictionRecord
from sentiment.settings import DriftSettings, load_settings
from tests.support.records import model_record

VOCAB = frozenset({"the", "strings", "sound", "great", "and", "cheap", "div", "class", "p", "br"})


def test_oov_counts_markup_fragments_as_unknown():
    clean, had = oov_rate("The strings sound great", VOCAB)
    assert (clean, had) == (0.0, False)
    leaked, had = oov_rate(leak_markup("The strings sound great"), VOCAB)
    # div/class/p are vocabulary words: only the tags themselves make the leak visible.
    assert had and leaked > 0.4
    assert math.isnan(oov_rate("很好，非常满意", VOCAB)[0])


def test_window_spec_ranges_are_inclusive_prefixes():
    spec = WindowSpec(label="w", path=Path("x"), start="2004", end="2012-06")
    assert spec.contains("2004-01-01T00:00:00Z") and spec.contains("2012-06-30T23:59:59Z")
    assert not spec.contains("2012-07-01T00:00:00Z") and not spec.contains("2003-12-31T00:00:00Z")
    assert not spec.contains(None)
    assert WindowSpec(label="all", path=Path("x")).contains(None)
    assert parse_range("2014..") == ("2014", None)
    with pytest.raises(ValueError):
        parse_range("2014")


def test_window_memory_is_bounded_by_reservoirs():
    drift = DriftSettings(max_values=100, gate_sample=30, embedding_sample=10, score_sample=20)
    recs = [{"text": "great " * (i % 50 + 1), "rating": 5} for i in range(5000)]
    w = window_from_records("big", recs, VOCAB, drift, 0.6)
    assert w.info.n == 5000 and w.info.with_text == 5000
    assert len(w.length) == 100 and len(w.texts) == 30
    # The reservoir is a random sample, not the first records (whose lengths are 6..300 in order).
    assert w.length.mean() == pytest.approx(np.mean([len(r["text"]) for r in recs]), rel=0.15)


def test_mmd_permutation_test_separates_shift_from_noise():
    rng = np.random.default_rng(0)
    same = mmd_test(rng.normal(size=(120, 8)), rng.normal(size=(120, 8)), permutations=300)
    moved = mmd_test(rng.normal(size=(120, 8)), rng.normal(size=(120, 8)) * 1.6, permutations=300)
    assert same.p_value > 0.05
    assert moved.p_value < 0.01


def _predictions(path: Path, day: str, n: int, low_share: float, rejected_share: float, rng: random.Random) -> None:
    recs = []
    for i in range(n):
        u = rng.random()
        if u < rejected_share:
            recs.append(
                PredictionRecord(
                    ts=f"{day}T10:00:00.000Z",
                    request_id=f"{day}-{i}",
                    text_len=2,
                    label=None,
                    confidence=0.0,
                    status="rejected",
                    reason="too_short: 2 characters",
                    reason_code="too_short",
                    tier="gate",
                )
            )
            continue
        low = rng.random() < low_share
        own = rng.uniform(0.35, 0.59) if low else rng.uniform(0.61, 0.99)
        # As the chain logs them: a low-confidence answer comes from the rules with their own confidence,
        # and the model's top probability rides along in model_confidence.
        answered = {"status": "ok", "reason": "", "tier": "model", "confidence": own}
        if low:
            answered = {"status": "fallback", "reason": "low_confidence: 0.50 < 0.60", "reason_code": "low_confidence",
                        "tier": "rules", "confidence": 0.75}  # fmt: skip
        recs.append(
            PredictionRecord(
                ts=f"{day}T10:00:00.000Z",
                request_id=f"{day}-{i}",
                text_len=rng.randint(20, 900),
                label=rng.choice(["negative", "positive", "positive"]),
                model_confidence=own,
                oov_rate=rng.uniform(0.0, 0.1),
                **answered,
            )
        )
    append_records(path, recs)


def test_predictions_of_every_replica_under_a_root_make_one_window(tmp_path, monkeypatch):
    """deploy/: one data dir per pod. ``--replicas-root`` (or the setting) reads every pod's log; a PATH is one log."""
    rng = random.Random(1)
    _predictions(tmp_path / "pod-a" / "predictions.jsonl", "2026-01-01", 300, 0.1, 0.01, rng)
    _predictions(tmp_path / "pod-b" / "predictions.jsonl", "2026-01-01", 200, 0.1, 0.01, rng)
    _predictions(tmp_path / "pod-b" / "predictions.jsonl", "2026-02-01", 100, 0.1, 0.01, rng)
    ranges = ["--reference-range", "2026-01..2026-01", "--current-range", "2026-02..2026-02"]

    def specs(*flags: str) -> list[WindowSpec]:
        return simulate_drift.window_specs(simulate_drift.build_parser().parse_args([*flags, *ranges]), load_settings())

    by_flag = specs("--predictions", "--replicas-root", str(tmp_path))
    assert all(s.replicas and s.path == tmp_path / "predictions.jsonl" for s in by_flag)
    ref, cur = read_windows(by_flag, VOCAB, DriftSettings(), 0.6, progress=False)
    assert (ref.info.n, cur.info.n) == (500, 100)
    assert ref.info.source == str(tmp_path / "*" / "predictions.jsonl")
    one = specs("--predictions", str(tmp_path / "pod-b" / "predictions.jsonl"))
    assert [w.info.n for w in read_windows(one, VOCAB, DriftSettings(), 0.6, progress=False)] == [200, 100]
    monkeypatch.setenv("SENTIMENT_PATHS__REPLICAS_ROOT", str(tmp_path))
    assert specs("--predictions") == by_flag
    with pytest.raises(SystemExit, match="without a PATH"):
        specs("--predictions", "x.jsonl", "--replicas-root", str(tmp_path))
    with pytest.raises(SystemExit, match="no replica folder"):
        simulate_drift.main(["--predictions", "--replicas-root", str(tmp_path / "pod-a"), *ranges])


@pytest.mark.slow
def test_predictions_log_windows_flag_low_confidence_growth(tmp_path):
    """Mode (c): the service's log by time range, fields only (no text): embedding says why it is skipped."""
    log = tmp_path / "predictions.jsonl"
    rng = random.Random(0)
    _predictions(log, "2026-01-01", 2500, low_share=0.10, rejected_share=0.01, rng=rng)
    _predictions(log, "2026-02-01", 2500, low_share=0.14, rejected_share=0.06, rng=rng)
    out = tmp_path / "drift.json"
    args = [
        "--predictions",
        str(log),
        "--reference-range",
        "2026-01..2026-01",
        "--current-range",
        "2026-02..2026-02",
        "--output-json",
        str(out),
        "--quiet",
    ]
    assert simulate_drift.main(args) == 0
    report = json.loads(out.read_text())
    assert report["windows"]["reference"]["n"] == 2500 and report["windows"]["current"]["n"] == 2500
    sig = report["signals"]
    assert set(sig) == set(SIGNAL_NAMES)
    assert sig["low_confidence"]["drifted"] and sig["low_confidence"]["statistic"] > 0.15
    assert sig["rejected_rate"]["drifted"]
    assert not sig["oov_rate"]["drifted"] and not sig["label_distribution"]["drifted"]
    assert sig["embedding"]["skipped"] and "no text" in sig["embedding"]["detail"]
    # More 2-character rejects also shorten the length distribution, so text_length may join; the others must not.
    assert {"low_confidence", "rejected_rate"} <= set(report["drifted_signals"]) and report["drift_detected"]
    assert not sig["non_english_rate"]["drifted"]
    # A stricter growth threshold turns the low-confidence signal off, nothing else.
    assert simulate_drift.main([*args, "--low-confidence-growth", "0.8"]) == 0
    strict = json.loads(out.read_text())
    assert set(strict["drifted_signals"]) == set(report["drifted_signals"]) - {"low_confidence"}
    assert strict["settings"]["low_confidence_growth"] == 0.8
    # these records carry no probabilities: the performance section says so instead of estimating
    assert report["performance"]["skipped"] and not report["performance"]["performance_drop"]


@pytest.mark.slow
def test_two_files_mode_writes_json_and_boxed_text(tmp_path, shared_reviews):
    ref, cur = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    append_records(ref, shared_reviews[:300])
    append_records(cur, [{**r, "text": leak_markup(r["text"])} for r in shared_reviews[300:600]])
    out = tmp_path / "drift.json"
    text_out = tmp_path / "report.txt"
    code = simulate_drift.main(
        [
            "--reference",
            str(ref),
            "--current",
            str(cur),
            "--output-json",
            str(out),
            "--output-text",
            str(text_out),
            "--no-embedding",
            "--gate-sample",
            "60",
            "--quiet",
        ]
    )
    assert code == 0
    report = DriftReport.model_validate_json(out.read_text())
    assert "oov_rate" in report.drifted_signals
    text = text_out.read_text()
    assert text.startswith("╔") and "DRIFT REPORT" in text and "Early window: 300" in text
    assert text.count("→ ") == len(SIGNAL_NAMES) and "→ SKIPPED" in text
    assert text.rstrip().endswith("]") and "Overall: DRIFT DETECTED in [oov_rate" in text
    assert render_text(report) == text
    assert (tmp_path / "drift_windows.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def shared_reviews(shared_data):
    path = shared_data / "amazon2014_musical_instruments_5core.jsonl"
    return [r for _, r in zip(range(600), iter_records(path), strict=False)]


def test_window_flags_map_to_specs(tmp_path):
    from sentiment.settings import load_settings

    settings = load_settings()
    parser = simulate_drift.build_parser()
    default = simulate_drift.window_specs(parser.parse_args([]), settings)
    assert [(s.start, s.end) for s in default] == [("2004", "2012"), ("2014", "2014")]
    assert default[0].path == settings.paths.shared_data_dir / simulate_drift.DEFAULT_DATA
    split = simulate_drift.window_specs(
        parser.parse_args(["--data", str(tmp_path), "--split-date", "2006-01-01"]), settings
    )
    assert [(s.start, s.end) for s in split] == [(None, "2005-12-31"), ("2006-01-01", None)]
    with pytest.raises(SystemExit):
        simulate_drift.window_specs(parser.parse_args(["--reference", "a.jsonl"]), settings)
    flags = parser.parse_args(["--js-threshold", "0.2", "--gate-sample", "50"])
    drift = simulate_drift.settings_from_args(flags).drift
    assert (drift.js_threshold, drift.gate_sample, drift.oov_threshold) == (0.2, 50, 0.05)


def _scored(prefix: str, n: int, sharpen: float, tag: str, seed: int) -> tuple[list[dict], dict[str, str]]:
    """Predictions with logged probabilities, and the true labels drawn from the calibrated ones (``sharpen`` 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5 if sharpen == 1.0 else 0.6, (n, 3))
    z[:, 2] += 1.0
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(1)).sum(1)
    labels = ("negative", "neutral", "positive")
    recs = [
        model_record(f"{prefix}-{i}", p[i], tag, ts=f"{prefix}T10:00:00.000Z", text_len=50).model_dump()
        for i in range(n)
    ]
    return recs, {f"{prefix}-{i}": labels[int(y[i])] for i in range(n)}


def test_performance_section_fires_when_the_estimate_drops_and_uses_operator_labels():
    from drift.performance import performance_section

    settings = load_settings()
    ref_recs, _ = _scored("2026-01-01", 1500, 1.0, "m:1", 0)
    same, _ = _scored("2026-02-01", 1200, 1.0, "m:1", 1)
    worse, truth = _scored("2026-02-02", 1200, 0.5, "m:2", 2)  # flatter probabilities: a worse model
    ref = window_from_records("ref", ref_recs, VOCAB, DriftSettings(), 0.6)
    calm = performance_section(ref, window_from_records("cur", same, VOCAB, DriftSettings(), 0.6), settings)
    assert not calm.performance_drop and calm.reference is not None and calm.reference.n == 1500
    assert set(calm.current) == {"m:1"} and len(calm.windows) == 2 and abs(calm.drop["m:1"]) < 0.05
    some = dict(list(truth.items())[:300])
    cur = window_from_records("cur", [*same, *worse], VOCAB, DriftSettings(), 0.6, labels=some)
    dropped = performance_section(ref, cur, settings)
    assert dropped.performance_drop and dropped.drop["m:2"] > 0.05 and "m:2" in dropped.detail
    assert dropped.current["m:2"].labelled == 300 and dropped.current["m:1"].labelled == 0
    report = DriftReport.build(ref.info, cur.info, {}, {}, {}, performance=dropped)
    text = render_text(report)
    assert "PERFORMANCE DROP" in text and "Performance: DROP" in text and "→ " not in text
    no_probs = window_from_records("cur", [{**r, "probs": None} for r in same], VOCAB, DriftSettings(), 0.6)
    skipped = performance_section(ref, no_probs, settings)
    assert skipped.skipped and not skipped.performance_drop and "no tier-1 probabilities" in skipped.detail


@pytest.mark.slow
def test_a_worse_model_in_the_log_raises_performance_drop_and_retrain_acts_on_it(tmp_path):
    """End to end: sentiment-drift on a predictions log with probabilities, then sentiment-retrain's decision."""
    from scripts.retrain import drift_decision

    log = tmp_path / "predictions.jsonl"
    ref, _ = _scored("2026-01-01", 1500, 1.0, "m:1", 0)
    cur, _ = _scored("2026-02-01", 1500, 0.5, "m:2", 1)
    append_records(log, [*ref, *cur])
    out = tmp_path / "drift.json"
    ranges = ["--reference-range", "2026-01..2026-01", "--current-range", "2026-02..2026-02"]
    args = ["--predictions", str(log), *ranges, "--output-json", str(out), "--quiet", "--no-embedding"]
    assert simulate_drift.main(args) == 0
    perf = json.loads(out.read_text())["performance"]
    assert perf["performance_drop"] and perf["drop"]["m:2"] > 0.05 and perf["current"]["m:2"]["n"] == 1500
    assert "PERFORMANCE DROP" in (tmp_path / "drift_report.txt").read_text()
    decision = drift_decision(out)
    assert decision.decision == "retrain" and decision.performance_drop
    assert simulate_drift.main([*args, "--performance-drop", "0.9"]) == 0  # a looser threshold: no verdict
    assert not json.loads(out.read_text())["performance"]["performance_drop"]
