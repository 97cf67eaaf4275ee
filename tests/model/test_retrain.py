"""Retraining data and the retraining command: human labels merged as documented, held-out and evaluation reviews
never trained on, ``--when-drifted`` both ways, and the loop end to end through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.loaders import save_label
from drift.report import DriftReport, SignalResult, WindowInfo
from scripts.retrain import drift_decision, main
from sentiment.contract import Label
from sentiment.jsonl import append_records
from sentiment.records import HumanLabel
from sentiment.rotation import rotated_files
from sentiment.settings import GateSettings, PathSettings, RotationSettings, Settings, default_base_model
from tests.support import REPO
from tests.support.models import FLIPKART, MUSIC, small_config
from training.data import build_dataset
from training.evalset import EvalSpec, data_config, in_holdout, load_human_labels, text_key
from training.retrain import retrain_dataset


def label(request_id: str, text: str, lab: str, ts: str) -> HumanLabel:
    return HumanLabel(request_id=request_id, text=text, label=Label(lab), ts=ts)


def test_latest_label_wins_duplicates_merge_and_conflicts_are_counted_across_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "human_labels.jsonl"
    tiny_pieces = RotationSettings(max_bytes=200, max_age_s=None, keep=None)
    for rec in [
        label("r1", "The strings broke in a week.", "neutral", "2026-01-01T00:00:00Z"),
        label("r1", "The strings broke in a week.", "negative", "2026-01-02T00:00:00Z"),  # relabelled: wins
        label("r2", "Lovely tone, great value", "positive", "2026-01-01T00:00:01Z"),
        label("r3", "  lovely TONE,   great value ", "positive", "2026-01-03T00:00:00Z"),  # duplicate, agrees
        label("r4", "It is fine I guess", "positive", "2026-01-01T00:00:02Z"),
        label("r5", "it is fine i guess", "neutral", "2026-01-04T00:00:00Z"),  # same text, later: wins
        label("r6", "abc", "positive", "2026-01-05T00:00:00Z"),  # too short for the serving gates
    ]:
        append_records(path, [rec], rotation=tiny_pieces)
    assert rotated_files(path), "the labels must span rotated pieces for this test"

    labels = load_human_labels(path, GateSettings())

    got = {e.key: e.label.value for e in labels.examples}
    assert got == {
        "the strings broke in a week.": "negative",
        "lovely tone, great value": "positive",
        "it is fine i guess": "neutral",
    }
    s = labels.stats
    assert (s.records, s.superseded, s.rejected_text, s.duplicates, s.conflicts, s.reviews) == (7, 1, 1, 2, 1, 3)
    [conflict] = s.conflict_examples
    assert conflict.request_ids == ["r4", "r5"] and conflict.labels == ["positive", "neutral"]
    assert conflict.kept == "neutral"


def test_the_holdout_is_a_stable_share_chosen_by_text() -> None:
    keys = [f"review {i} about a guitar" for i in range(2000)]
    held = [k for k in keys if in_holdout(k, 0.3)]
    assert 0.27 < len(held) / len(keys) < 0.33
    assert held == [k for k in keys if in_holdout(k, 0.3)]  # the same on every run
    assert not any(in_holdout(k, 0.0) for k in keys) and all(in_holdout(k, 1.0) for k in keys)


@pytest.mark.slow
def test_held_out_and_evaluation_reviews_never_reach_training(shared_data: Path, tmp_path: Path) -> None:
    settings = Settings(paths=PathSettings(data_dir=tmp_path / "var"))
    reviews = tmp_path / "reviews.jsonl"
    with MUSIC.open(encoding="utf-8") as src:
        reviews.write_text("".join(next(src) for _ in range(500)), encoding="utf-8")
    # The frozen set comes from a different data config (another seed: another random split), so without the
    # exclusion some of its reviews would be training reviews of this run.
    sizes = dict(data=[reviews], split="stratified", max_train=None, max_val=None, max_test_per_source=None)
    frozen_cfg = small_config(default_base_model(), seed=1, **sizes)
    frozen = build_dataset(frozen_cfg, settings.gates, shared_data)
    spec = EvalSpec(config=data_config(frozen_cfg), fingerprint=frozen.fingerprint)
    cfg = small_config(default_base_model(), seed=2, **sizes)
    plain = build_dataset(cfg, settings.gates, shared_data)
    frozen_keys = {text_key(r.text) for r in frozen.test}
    assert frozen_keys & {text_key(r.text) for r in plain.train}, "the configs must overlap for this test to bite"
    # Human labels: some repeat frozen-evaluation reviews, some repeat base training reviews, the rest are new.
    texts = (
        [r.text for r in frozen.test[:10]]
        + [r.text for r in plain.train[:10]]
        + [f"Human labelled review {i}: the pickups hum a little" for i in range(60)]
    )
    append_records(
        settings.paths.human_labels,
        [label(f"q{i}", t, "neutral", f"2026-02-01T00:00:{i % 60:02d}Z") for i, t in enumerate(texts)],
    )
    labels = load_human_labels(settings.paths.human_labels, settings.gates)

    ds, info = retrain_dataset(cfg, settings, spec, labels)

    trained = {text_key(r.text) for r in [*ds.train, *ds.val]}
    held = {e.key for e in labels.examples if in_holdout(e.key, settings.lifecycle.human_holdout_share)}
    assert not trained & frozen_keys
    assert not trained & held
    assert not trained & {text_key(r.text) for r in ds.test}
    human_in_train = [r for r in ds.train if r.source == "human"]
    assert len(human_in_train) == info.human_train > 0 and info.human_holdout > 0
    assert info.human_in_eval >= 10  # the ten frozen reviews, at least
    assert info.human_train + info.human_holdout + info.human_in_eval == labels.stats.reviews
    assert all(r.label.value == "neutral" for r in human_in_train)  # the human label replaced the star label
    assert info.base_dropped["frozen_eval"] > 0 and info.frozen_eval == spec
    assert ds.split_info["frozen_eval"] == spec.model_dump(mode="json")
    assert ds.fingerprint != plain.fingerprint and ds.split_info["base_fingerprint"] == plain.fingerprint


def _drift_report(path: Path, drifted: list[str]) -> Path:
    window = WindowInfo(label="w", n=500)
    signals = {
        name: SignalResult(drifted=name in drifted, statistic=0.1, threshold=0.05, description=name)
        for name in ("oov_rate", "low_confidence")
    }
    report = DriftReport.build(window, window, signals, {}, {})
    path.write_text(report.model_dump_json())
    return path


def test_when_drifted_skips_a_calm_report_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calm = _drift_report(tmp_path / "calm.json", [])
    assert main(["--when-drifted", str(calm)]) == 0
    decision = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert decision["decision"] == "skip" and decision["reason"].startswith("no drift")
    assert drift_decision(_drift_report(tmp_path / "low.json", ["low_confidence"])).decision == "retrain"
    only_low = DriftReport.model_validate_json((tmp_path / "low.json").read_text()).model_copy(
        update={"drift_detected": False, "drifted_signals": []}
    )
    (tmp_path / "only_low.json").write_text(only_low.model_dump_json())
    low = drift_decision(tmp_path / "only_low.json")
    assert low.decision == "retrain" and "low-confidence" in low.reason


@pytest.mark.slow
@pytest.mark.usefixtures("shared_data")
def test_retrain_then_gate_from_the_command_line(tmp_path: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    env = {
        **os.environ,
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "SENTIMENT_PATHS__DATA_DIR": str(tmp_path / "var"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )

    champion = run("tests.support.tiny_model")
    assert champion.returncode == 0, champion.stderr
    labels = tmp_path / "var" / "human_labels.jsonl"
    for i in range(30):
        save_label(
            labels,
            f"req{i}",
            f"Queued review {i}: the tuner {'works' if i % 2 else 'died'} after a day",
            "positive" if i % 2 else "negative",
            "tester",
        )
    save_label(labels, "req0", "Queued review 0: the tuner died after a day", "neutral", "tester")  # relabelled
    drifted = _drift_report(tmp_path / "drift.json", ["oov_rate"])
    sizes = [
        "--data",
        str(MUSIC),
        str(FLIPKART),
        "--base-model",
        str(tiny_checkpoint),
        "--max-train",
        "120",
        "--max-val",
        "60",
        "--max-test-per-source",
        "40",
        "--max-length",
        "32",
        "--eval-every",
        "0",
        "--threads",
        "1",
    ]

    retrained = run("scripts.retrain", "--profile", "quick", "--when-drifted", str(drifted), *sizes)

    assert retrained.returncode == 0, retrained.stderr[-3000:]
    result = json.loads(retrained.stdout.strip().splitlines()[-1])
    assert result["decision"] == "retrained" and result["alias"] == "challenger"
    assert result["drift"]["drifted_signals"] == ["oov_rate"]
    assert result["human_train"] + result["human_holdout"] == 30 and result["human_holdout"] > 0
    history = tmp_path / "bentoml" / "aliases" / "review-sentiment.jsonl"
    before = history.read_text()

    gate = run("scripts.models", "gate", "--dry-run", "--json")

    assert gate.returncode in (0, 3), gate.stderr[-3000:]
    report = json.loads(gate.stdout)
    assert report["challenger"] == result["tag"] and report["action"] == "dry_run"
    assert report["evaluation"]["n_human"] == result["human_holdout"]
    assert gate.returncode == (0 if report["passed"] else 3)
    assert history.read_text() == before
    assert (Path(report["report_dir"]) / "gate.png").stat().st_size > 0


def test_when_drifted_retrains_on_a_performance_drop_alone(tmp_path: Path) -> None:
    from drift.report import PerformanceReport

    calm = DriftReport.model_validate_json(_drift_report(tmp_path / "calm.json", []).read_text())
    perf = PerformanceReport(method="cbpe", window=500, threshold=0.05, performance_drop=True, detail="m:2 fell")
    (tmp_path / "perf.json").write_text(calm.model_copy(update={"performance": perf}).model_dump_json())
    decision = drift_decision(tmp_path / "perf.json")
    assert (
        decision.decision == "retrain" and decision.performance_drop and "performance_drop: m:2 fell" in decision.reason
    )
    assert drift_decision(tmp_path / "calm.json").decision == "skip"
