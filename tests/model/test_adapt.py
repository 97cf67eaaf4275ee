"""Recalibration on a real store: the tiny random DistilBERT as champion, a mostly-positive product line labelled
by operators; ``--recalibrate`` registers a version that serves exactly the refit, and the gate judges it on the
held-out labels (product-line mode), or says "not enough evidence"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sentiment.contract import LABELS, Label
from sentiment.jsonl import append_records
from sentiment.model.aliases import AliasRegistry
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import ModelMetadata, resolve, save_to_store
from sentiment.records import HumanLabel
from sentiment.settings import LifecycleSettings, ModelSettings, PathSettings, Settings
from tests.support.models import BLITZER, isolated_store, small_config
from training.adaptation import Adaptation, apply, recalibrate
from training.data import build_dataset
from training.evalset import in_holdout, text_key
from training.promotion import run_gate

pytestmark = pytest.mark.slow
NAME = "adapt-sentiment"
WORDS = ["strap", "tuner", "cable", "pedal", "case", "stand", "capo", "pick", "string", "mic"]


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    with isolated_store(tmp_path / "bentoml"):
        yield Settings(
            paths=PathSettings(data_dir=tmp_path / "var"),
            model=ModelSettings(name=NAME),
            lifecycle=LifecycleSettings(min_target_labels=20, base_tolerance=1.0, bootstrap_resamples=500),
        )


def _champion(settings: Settings, checkpoint: Path) -> str:
    """The tiny model, calibrated for a line with almost no positive reviews, recording a small frozen set."""
    cfg = small_config("tiny-random-distilbert", data=[BLITZER], split="stratified", max_test_per_source=60)
    ds = build_dataset(cfg, settings.gates, settings.paths.shared_data_dir)
    meta = ModelMetadata(
        base_model="tiny-random-distilbert",
        profile="tiny",
        class_bias=[0.0, 0.0, -4.0],
        decision_bias=[0.3, -0.2, 0.0],  # the tiny profile chooses none: a stand-in for the quick profile's
        train_config=cfg.model_dump(mode="json"),
        data_fingerprint=ds.fingerprint,
    )
    return save_to_store(NAME, checkpoint, meta, frozenset({"great"}))


def _label(settings: Settings, n: int) -> list[HumanLabel]:
    rng = np.random.default_rng(0)
    labels = [
        HumanLabel(
            request_id=f"r{i}",
            text=f"Review {i} of the {WORDS[i % len(WORDS)]}: {'works as described' if i % 10 else 'broke at once'}",
            label=Label.positive if rng.random() < 0.9 else Label.negative,
        )
        for i in range(n)
    ]
    append_records(settings.paths.human_labels, labels)
    return labels


def test_recalibration_serves_the_refit_and_the_gate_judges_it_on_the_product_line(
    settings: Settings, tiny_checkpoint: Path
) -> None:
    champion = _champion(settings, tiny_checkpoint)
    labels = _label(settings, 200)
    share = settings.lifecycle.human_holdout_share
    train = [h for h in labels if not in_holdout(text_key(h.text), share)]

    result = recalibrate(settings, log=lambda _: None)

    assert AliasRegistry(NAME).state().challenger == result.tag and result.champion == champion
    path, meta, _ = resolve(result.tag)
    adaptation = Adaptation.model_validate(meta.adaptation)
    assert adaptation.method == "recalibrate" and adaptation.from_tag == champion
    assert adaptation.labels == len(train) and adaptation.held_out == len(labels) - len(train)
    assert adaptation.nll_after < adaptation.nll_before and adaptation.seconds < 30
    assert meta.splits["frozen_eval"]["fingerprint"] == resolve(champion)[1].data_fingerprint
    texts = [h.text for h in train]
    before = SentimentModel.from_store(champion).predict(texts)
    after = SentimentModel.from_store(result.tag).predict(texts)
    np.testing.assert_allclose(after, apply(before, adaptation.refit), atol=1e-5)
    y = np.array([LABELS.index(h.label.value) for h in train])
    assert (after.argmax(1) == y).mean() > (before.argmax(1) == y).mean()

    report = run_gate(NAME, settings, dry_run=True)

    assert report.mode == "product_line" and report.challenger == result.tag
    assert report.evaluation.n_human == len(labels) - len(train)
    assert report.bootstrap.difference > 0 and report.passed
    assert [c.name for c in report.checks][:4] == ["evidence", "significance", "macro_f1_gain", "base_no_worse"]
    assert "held-out labels (product line)" in Path(report.report_dir, "gate.md").read_text()


def test_too_few_held_out_labels_are_not_enough_evidence(settings: Settings, tiny_checkpoint: Path) -> None:
    settings.lifecycle.adapt_min_labels = 5
    champion = _champion(settings, tiny_checkpoint)
    _label(settings, 40)

    recalibrate(settings, log=lambda _: None)
    report = run_gate(NAME, settings)

    assert report.action == "kept" and report.action_detail.startswith("not enough evidence")
    assert AliasRegistry(NAME).state().champion == champion


def test_fine_tune_from_the_champion_replays_base_data_and_registers_an_adapted_challenger(
    settings: Settings, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from training.adapt_fine_tune import fine_tune_from_champion
    from training.chain_view import chain_view

    champion = _champion(settings, tiny_checkpoint)
    _label(settings, 200)
    lines: list[str] = []
    settings.lifecycle.replay_per_label = 2.5  # SENTIMENT_LIFECYCLE__REPLAY_PER_LABEL
    settings.lifecycle.calibration_prior_sd = 0.005  # SENTIMENT_LIFECYCLE__CALIBRATION_PRIOR_SD

    result = fine_tune_from_champion(settings, chain_view, tmp_path / "out", budget_s=120, log=lines.append)

    a = result.adaptation
    assert AliasRegistry(NAME).state().challenger == result.tag and a.from_tag == champion
    assert a.replay == int(2.5 * a.labels) and a.early_stop_labels > 0 and a.steps > 0
    # the checkpoint choice and calibration see base validation reviews beside the line's few labels
    assert 0 < a.val_replay <= 2.5 * a.early_stop_labels
    assert a.labels + a.early_stop_labels + a.held_out == 200
    assert a.seconds < 300 and a.lr < small_config("x").lr
    meta = resolve(result.tag)[1]
    assert meta.adaptation["method"] == "fine_tune" and "test_macro_f1" not in meta.metrics
    champion_meta = resolve(champion)[1]
    assert meta.decision_bias == champion_meta.decision_bias  # kept: a few labels cannot choose one
    # calibrated towards the champion's own calibration (its served bias less its decision bias)
    prior = meta.train_config["calibration_prior"]
    assert prior["temperature"] == champion_meta.temperature
    assert prior["sd"] == settings.lifecycle.calibration_prior_sd
    served = [c - d for c, d in zip(champion_meta.class_bias, champion_meta.decision_bias, strict=True)]
    assert prior["class_bias"] == pytest.approx(served)
    # ... and the calibration used it: a prior this narrow holds the refit at the champion's
    assert meta.temperature == pytest.approx(champion_meta.temperature, rel=0.02)
    pinned = [b - meta.class_bias[0] for b in meta.class_bias]  # softmax is shift-invariant
    assert pinned == pytest.approx([b - champion_meta.class_bias[0] for b in champion_meta.class_bias], abs=0.05)
    assert meta.metrics["base_test_macro_f1"] == pytest.approx(result.base_test_macro_f1, abs=1e-4)
    assert meta.splits["frozen_eval"]["fingerprint"] == resolve(champion)[1].data_fingerprint
    assert any("replayed base reviews" in line and "base validation reviews" in line for line in lines)
    report = run_gate(NAME, settings, dry_run=True)
    assert report.mode == "product_line" and report.challenger == result.tag
