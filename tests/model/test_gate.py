"""The promotion gate: its statistics against known answers, then real decisions on a real store.

The real part uses the session's trained MiniLM (better) and a tiny random DistilBERT (worse), both stored in a
temporary BentoML home, scored on the trained model's frozen test split plus held-out human labels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sentiment.contract import Label
from sentiment.jsonl import append_records
from sentiment.model.aliases import AliasRegistry
from sentiment.model.registry import ModelMetadata, read_vocab, save_to_store
from sentiment.records import HumanLabel
from sentiment.settings import LifecycleSettings, PathSettings, Settings
from tests.support.models import TrainedModel, isolated_store
from training.evalset import in_holdout, text_key
from training.promotion import (
    Bootstrap,
    ModelScore,
    PartScore,
    checks,
    last_report,
    mcnemar_exact,
    paired_bootstrap,
    run_gate,
)

NAME = "gate-sentiment"


# --- statistics against known answers ------------------------------------------------------------------------


def test_identical_predictions_give_p_one_and_an_interval_around_zero() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    pred = np.where(rng.random(400) < 0.7, y, rng.integers(0, 3, 400))
    boot, diffs = paired_bootstrap(y, pred, pred.copy(), resamples=2000, seed=0, alpha=0.05)
    assert boot.difference == 0 and boot.p_value == 1.0 and boot.ci_low <= 0 <= boot.ci_high
    assert len(diffs) == 2000
    assert mcnemar_exact(y, pred, pred).p_value == 1.0


def test_a_challenger_right_wherever_the_champion_is_wrong_is_significant() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 300)
    champion = np.where(rng.random(300) < 0.7, y, (y + 1) % 3)  # wrong on ~90 reviews
    boot, _ = paired_bootstrap(y, champion, y.copy(), resamples=2000, seed=0, alpha=0.05)
    assert boot.difference > 0.2 and boot.ci_low > 0
    assert boot.p_value == pytest.approx(1 / 2001)  # no resample where the challenger fails to win
    mc = mcnemar_exact(y, champion, y)
    c = int(np.sum(champion != y))
    assert (mc.champion_only_right, mc.challenger_only_right) == (0, c)
    assert mc.p_value == pytest.approx(0.5**c)


def test_mcnemar_matches_the_hand_computed_binomial() -> None:
    # 2 reviews only the champion gets right, 10 only the challenger, 8 both: one-sided P(X >= 10 | n=12, 1/2).
    y = np.zeros(20, dtype=int)
    champion = np.array([0] * 2 + [1] * 10 + [0] * 8)
    challenger = np.array([1] * 2 + [0] * 10 + [0] * 8)
    mc = mcnemar_exact(y, champion, challenger)
    assert (mc.champion_only_right, mc.challenger_only_right) == (2, 10)
    assert mc.p_value == pytest.approx((66 + 12 + 1) / 4096)
    assert mc.p_value_two_sided == pytest.approx(2 * (66 + 12 + 1) / 4096)


def _score(macro_f1: float, ece: float, low: float) -> ModelScore:
    return ModelScore(
        tag="m:v",
        macro_f1=macro_f1,
        accuracy=macro_f1,
        per_class_f1={},
        ece=ece,
        low_confidence_share=low,
        parts={"base": PartScore(n=100, accuracy=macro_f1, macro_f1=macro_f1)},
    )


def test_a_significant_gain_does_not_pass_when_the_confidence_distribution_regresses() -> None:
    cfg = LifecycleSettings(ece_tolerance=0.02, low_confidence_tolerance=0.05)
    boot = Bootstrap(difference=0.1, ci_low=0.05, ci_high=0.15, ci_level=0.9, p_value=0.001, resamples=2000, seed=0)
    ok = checks(_score(0.7, 0.05, 0.10), _score(0.8, 0.06, 0.12), boot, cfg)
    assert all(c.passed for c in ok)
    worse_ece = checks(_score(0.7, 0.05, 0.10), _score(0.8, 0.08, 0.10), boot, cfg)
    more_low = checks(_score(0.7, 0.05, 0.10), _score(0.8, 0.05, 0.16), boot, cfg)
    assert [c.name for c in worse_ece if not c.passed] == ["ece"]
    assert [c.name for c in more_low if not c.passed] == ["low_confidence"]


# --- real models on a real store -----------------------------------------------------------------------------


def _store_trained(trained: TrainedModel) -> str:
    return save_to_store(NAME, trained.path, trained.metadata, read_vocab(trained.path))


def _store_tiny(checkpoint: Path, temperature: float = 1.0) -> str:
    meta = ModelMetadata(
        base_model="tiny-random-distilbert", profile="tiny", metrics={"test_macro_f1": 0.0}, temperature=temperature
    )
    return save_to_store(NAME, checkpoint, meta, frozenset({"great", "awful"}))


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    with isolated_store(tmp_path / "bentoml"):
        yield Settings(paths=PathSettings(data_dir=tmp_path / "var"))


@pytest.mark.slow
def test_the_gate_keeps_a_good_champion_and_force_is_recorded(
    settings: Settings, trained_minilm: TrainedModel, tiny_checkpoint: Path
) -> None:  # noqa: F811
    champion = _store_trained(trained_minilm)
    worse = _store_tiny(tiny_checkpoint)
    registry = AliasRegistry(NAME)
    registry.promote("challenger", worse, "on trial")
    before = registry.history()

    report = run_gate(NAME, settings)

    assert not report.passed and report.action == "kept" and "significance" in report.action_detail
    assert report.bootstrap.difference < 0 and report.bootstrap.p_value > 0.5
    assert registry.history() == before and registry.state().champion == champion
    out = Path(report.report_dir)
    assert {p.name for p in out.iterdir()} == {"gate.json", "gate.png", "gate.md"}
    assert json.loads((out / "gate.json").read_text())["action"] == "kept"

    forced = run_gate(NAME, settings, force=True, reason="operator override for the test")
    [change, cleared] = forced.alias_changes
    assert forced.action == "forced" and change.forced and change.to_tag == worse
    assert change.report == str(Path(forced.report_dir, "gate.json").resolve())
    assert cleared.alias == "challenger" and cleared.to_tag is None
    assert registry.state().champion == worse
    assert last_report(settings) == forced


@pytest.mark.slow
def test_the_gate_promotes_a_clearly_better_challenger_and_dry_run_moves_nothing(
    settings: Settings, trained_minilm: TrainedModel, tiny_checkpoint: Path
) -> None:  # noqa: F811
    # At T=1 the random model is confidently wrong (ECE 0.88, no answer below the gate), and the gate rightly
    # refuses a challenger that sends more reviews below the gate; at T=5 it is unsure, as a weak model should be.
    champion = _store_tiny(tiny_checkpoint, temperature=5.0)
    better = _store_trained(trained_minilm)
    registry = AliasRegistry(NAME)
    registry.promote("challenger", better, "retrained")
    # Operator labels: the held-out share joins the evaluation set, the rest would be training data.
    texts = [f"Review number {i}: the strings sound {'great' if i % 2 else 'awful'} on this guitar" for i in range(40)]
    append_records(
        settings.paths.human_labels,
        [
            HumanLabel(request_id=f"r{i}", text=t, label=Label.positive if i % 2 else Label.negative)
            for i, t in enumerate(texts)
        ],
    )
    held = sum(in_holdout(text_key(t), settings.lifecycle.human_holdout_share) for t in texts)
    before = registry.history()

    dry = run_gate(NAME, settings, dry_run=True)

    assert dry.passed and dry.action == "dry_run" and registry.history() == before
    assert dry.evaluation.n_human == held and 0 < held < len(texts)
    assert dry.evaluation.n_base == trained_minilm.report.test.n
    assert dry.challenger_score.parts["human"].n == held
    assert dry.bootstrap.p_value < 0.01 and dry.bootstrap.ci_low > 0

    report = run_gate(NAME, settings)

    assert report.action == "promoted" and registry.state().champion == better
    assert registry.state().challenger is None
    assert not report.alias_changes[0].forced
    assert report.challenger_score.macro_f1 == dry.challenger_score.macro_f1  # the same frozen set, scored again
    assert champion != better
