"""Leave-one-source-out plumbing on small real sources and a tiny random checkpoint (seconds, not quality).

Fashion (48 three-star reviews) and Gift Card (27) are folds; the PDS US sample (5) is too small and only trains.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from api.schemas import ModelCard
from scripts.train import main as train_main
from sentiment.contract import LABELS
from sentiment.model.inference import SentimentModel
from sentiment.model.serving import ModelInfo
from sentiment.settings import GateSettings
from tests.support.models import MUSIC
from training.chain_view import chain_decisions
from training.config import TrainConfig
from training.data import AUGMENTATION_SOURCE, LoadStats, Review, load_reviews
from training.loso import (
    TARGETS,
    LosoConfig,
    LosoReport,
    eligible_sources,
    fold_data,
    lever_rows,
    merge_reports,
    metadata_summary,
    natural_sample,
    plot_folds,
    render_levers,
    render_markdown,
    report_from_folds,
    run_loso,
)

SOURCES = (
    "amazon2018_fashion_5core.jsonl",
    "amazon_reviews_us_gift_card_sample.jsonl",
    "amazon_reviews_pds_sample_us.jsonl",
)


@pytest.fixture(scope="module")
def reviews(shared_data: Path) -> list[Review]:
    return load_reviews([shared_data / f for f in SOURCES], GateSettings(), LoadStats())


def _config(base_model: str, **overrides: object) -> LosoConfig:
    train = TrainConfig(
        base_model=base_model,
        max_train=60,
        max_val=40,
        max_length=32,
        batch_size=16,
        epochs=1,
        lr=1e-3,
        eval_every=2,
        patience=2,
        num_threads=2,
        seed=3,
    )
    return LosoConfig(train=train, test_cap=120, in_domain_cap=60, bootstrap=40, **overrides)


def test_sources_without_enough_three_star_reviews_are_not_folds(reviews: list[Review]) -> None:
    folds, excluded = eligible_sources(reviews, min_neutral=20)
    assert folds == ["amazon2018_fashion_5core", "amazon_reviews_us_gift_card"]
    assert list(excluded) == ["amazon_reviews_pds_sample_us"]


def test_natural_sample_keeps_the_class_mix_and_spreads_over_the_source(reviews: list[Review]) -> None:
    gift = [r for r in reviews if r.source == "amazon_reviews_us_gift_card"]
    sample = natural_sample(gift, 200)
    full, got = Counter(r.y for r in gift), Counter(r.y for r in sample)
    assert len(sample) == 200 and len({r.text for r in sample}) == 200
    for k in full:
        assert abs(got[k] - 200 * full[k] / len(gift)) <= 1
    positions = sorted(gift.index(r) for r in sample if r.y == LABELS.index("positive"))
    assert positions[0] < len(gift) * 0.05 and positions[-1] > len(gift) * 0.9  # evenly spaced, not a head


def test_a_fold_never_trains_validates_or_calibrates_on_its_test_source(reviews: list[Review]) -> None:
    cfg = _config("unused")
    for held_out in ("amazon2018_fashion_5core", "amazon_reviews_us_gift_card"):
        data = fold_data(reviews, held_out, cfg, seed=3)
        assert {r.source for r in data["test"]} == {held_out}
        for part in ("train", "val", "in_domain"):
            assert data[part] and held_out not in {r.source for r in data[part]}
        assert not {r.text for r in data["test"]} & {r.text for p in ("train", "val") for r in data[p]}


@pytest.fixture(scope="module")
def report(reviews: list[Review], tiny_checkpoint: Path) -> LosoReport:  # noqa: F811
    return run_loso(_config(str(tiny_checkpoint)), reviews, GateSettings(), chain_decisions, log=lambda *_: None)


@pytest.mark.slow  # a multi-second test: the fast stage stays under a minute
def test_loso_end_to_end_with_confidence_intervals(report: LosoReport, tmp_path: Path) -> None:
    assert [f.source for f in report.folds] == ["amazon2018_fashion_5core", "amazon_reviews_us_gift_card"]
    for fold in report.folds:
        assert fold.source not in fold.train_sources and "amazon_reviews_pds_sample_us" in fold.train_sources
        assert len(fold.y) == sum(fold.test_labels.values()) and set(fold.variants) == {"served", "band", "tuned_bias"}
        assert len(fold.val_y) == len(fold.val_probs) == fold.val_n  # decision rules can be re-run offline
        served = fold.variants["served"]
        # the chain's model tier answers exactly the reviews at or above the gate
        assert [a >= 0 for a in served.answer] == [max(p) >= report.gate for p in fold.probs]
        band = fold.variants["band"]
        assert all(p == LABELS.index("neutral") for p, q in zip(band.pred, fold.probs, strict=True) if max(q) < 0.75)
    for variant, summary in report.summary.items():
        for name, iv in summary.items():
            assert iv.lo <= iv.mean + 1e-9 and iv.mean <= iv.hi + 1e-9, (variant, name, iv)
        assert summary["macro_f1"].hi > summary["macro_f1"].lo  # resampling moves the figure
    assert set(report.targets["served"]) >= {"macro_f1", "ece", "coverage"}
    md = render_markdown(report)
    assert "amazon_reviews_pds_sample_us" in md and "| macro_f1 |" in md
    assert plot_folds(report, tmp_path / "loso.png").stat().st_size > 0
    rows = lever_rows({"tiny": report})
    assert [r["variant"] for r in rows] == list(report.summary)
    assert render_levers(rows).count("| tiny |") == len(report.summary)


@pytest.mark.slow  # needs the trained report fixture
def test_folds_run_apart_merge_into_the_same_report(report: LosoReport) -> None:
    cfg = LosoConfig.model_validate(report.config)
    gates = GateSettings(confidence_gate=report.gate)
    parts = [report_from_folds(cfg, gates, report.excluded, [f], f.seconds) for f in report.folds]
    merged = merge_reports(parts)
    assert merged.summary == report.summary and merged.targets == report.targets
    other = report_from_folds(cfg.model_copy(update={"test_cap": 7}), gates, report.excluded, report.folds[:1], 1.0)
    with pytest.raises(ValueError, match="differ"):
        merge_reports([other, parts[1]])
    with pytest.raises(ValueError, match="twice"):
        merge_reports([parts[0], parts[0]])


@pytest.mark.slow  # trains a fold
def test_a_lever_of_training_data_reaches_every_fold(reviews: list[Review], tiny_checkpoint: Path) -> None:  # noqa: F811
    """``--augment-behaviour`` on evaluate_loso trains each fold on the behaviour suite's training half too."""
    cfg = _config(str(tiny_checkpoint), folds=["amazon2018_fashion_5core"])
    cfg.train = cfg.train.model_copy(update={"augment_behaviour": 2, "augment_categories": ("negation",)})
    lever = run_loso(cfg, reviews, GateSettings(), chain_decisions, log=lambda *_: None)
    assert lever.folds[0].train_sources[AUGMENTATION_SOURCE] > 0


@pytest.mark.slow  # a multi-second test: the fast stage stays under a minute
def test_train_loso_report_reaches_the_model_info_card(
    report: LosoReport,
    tiny_checkpoint: Path,  # noqa: F811
    model_store: Path,
    tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``scripts/train.py --loso-report`` -> store metadata -> what ``GET /model/info`` serialises."""
    loso_json = tmp_path / "loso.json"
    loso_json.write_text(report.model_dump_json())
    monkeypatch.setenv("SENTIMENT_PATHS__DATA_DIR", str(tmp_path / "var"))
    assert (
        train_main(
            [
                "--base-model",
                str(tiny_checkpoint),
                "--data",
                str(MUSIC),
                "--max-train",
                "96",
                "--max-val",
                "32",
                "--max-test-per-source",
                "8",
                "--max-length",
                "32",
                "--eval-every",
                "3",
                "--threads",
                "2",
                "--train-budget-s",
                "0",
                "--name",
                "loso-card",
                "--output-dir",
                str(tmp_path / "reports"),
                "--loso-report",
                str(loso_json),
                "--loso-variant",
                "tuned_bias",
            ]
        )
        == 0
    )
    model = SentimentModel.from_store("loso-card:latest")
    info = ModelInfo(loaded=True, tag=model.tag, metadata=model.metadata, backend=model.backend)
    card = ModelCard.from_metadata(str(info.tag), model.metadata, info.backend).model_dump(mode="json")
    loso = metadata_summary(report, "tuned_bias")  # the quick profile serves its validation-tuned decision bias
    assert card["metrics"]["loso"]["variant"] == "tuned_bias"
    assert card["metrics"]["loso"]["figures"]["macro_f1"] == loso["figures"]["macro_f1"]
    assert card["metrics"]["loso"]["folds"] == ["amazon2018_fashion_5core", "amazon_reviews_us_gift_card"]
    assert set(card["metrics"]["loso"]["targets_met"]) == set(TARGETS)
    assert "test_macro_f1" in card["metrics"]  # its own test figures are kept next to it
    summary = (tmp_path / "reports" / "quick" / "summary.md").read_text()
    assert "leave-one-source-out" in summary and "| ok_negative_precision | >= 0.75 |" in summary
    assert (tmp_path / "reports" / "quick" / "class_risk_coverage.png").stat().st_size > 0
