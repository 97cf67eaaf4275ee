"""Recalibration on a product line's labels: the fit composes exactly into a stored calibration; the plan for
``--auto``; the gate's product-line checks."""

from __future__ import annotations

import numpy as np

from sentiment.model.inference import calibrated_probs
from sentiment.model.registry import ModelMetadata
from sentiment.settings import LifecycleSettings
from training.adaptation import apply, compose, plan, refit
from training.decision import macro_f1
from training.promotion import Bootstrap, ModelScore, PartScore, paired_bootstrap, product_line_checks


def test_the_refit_composes_into_the_stored_calibration_exactly():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 3)) * 3
    meta = ModelMetadata(base_model="m", temperature=1.3, class_bias=[0.0, -0.4, 1.1])
    served = calibrated_probs(logits, meta.temperature, np.array(meta.class_bias))
    y = np.where(rng.random(300) < 0.9, 2, rng.integers(0, 3, 300))  # a mostly-positive product line
    r = refit(served, y, gate=0.6, min_coverage=0.8)
    t, b = compose(meta, r)
    np.testing.assert_allclose(calibrated_probs(logits, t, np.array(b)), apply(served, r), atol=1e-6)


def test_a_prior_shift_is_corrected_by_the_refit():
    rng = np.random.default_rng(1)
    n = 2000
    y = np.where(rng.random(n) < 0.9, 2, 0)
    logits = np.zeros((n, 3))
    logits[np.arange(n), y] = 1.0
    logits += rng.normal(size=(n, 3))
    served = calibrated_probs(logits, 1.0, np.array([0.0, 0.0, -1.5]))  # calibrated for a line with few positives
    before = macro_f1(y, served.argmax(1))
    r = refit(served, y, gate=0.6, min_coverage=0.8, decision=False)
    assert r.bias[2] - r.bias[0] > 1.0  # the positive prior comes back
    assert macro_f1(y, apply(served, r).argmax(1)) > before


def test_auto_chooses_by_label_count_and_says_why():
    cfg = LifecycleSettings(adapt_min_labels=30, fine_tune_min_labels=1000)
    assert plan(35, 10, cfg).path == "none" and "25 labels" in plan(35, 10, cfg).why
    assert plan(300, 90, cfg).path == "recalibrate" and plan(300, 90, cfg).train == 210
    assert plan(2000, 600, cfg).path == "fine_tune" and "lower macro-F1" in plan(2000, 600, cfg).why
    default = LifecycleSettings()  # fine-tunes as soon as it adapts: recalibrating was measured to lower macro-F1
    assert plan(35, 10, default).path == "none"
    assert plan(45, 15, default).path == "fine_tune" and plan(45, 15, default).train == 30
    assert plan(100, 30, default).path == "fine_tune"


def _score(base: float, human: float, n_human: int) -> ModelScore:
    return ModelScore(
        tag="m:v",
        macro_f1=base,
        accuracy=base,
        per_class_f1={},
        ece=0.03,
        low_confidence_share=0.1,
        parts={
            "base": PartScore(n=500, accuracy=base, macro_f1=base),
            "human": PartScore(n=n_human, accuracy=human, macro_f1=human),
        },
    )


BOOT = Bootstrap(difference=0.1, ci_low=0.05, ci_high=0.15, ci_level=0.9, p_value=0.001, resamples=2000, seed=0)


def test_the_product_line_decides_and_the_base_split_only_guards():
    cfg = LifecycleSettings(min_target_labels=30, base_tolerance=0.01)
    ok = product_line_checks(_score(0.80, 0.55, 60), _score(0.795, 0.65, 60), BOOT, cfg)
    names = ["evidence", "significance", "macro_f1_gain", "base_no_worse", "ece", "low_confidence"]
    assert [c.name for c in ok] == names
    assert all(c.passed for c in ok)
    forgot = product_line_checks(_score(0.80, 0.55, 60), _score(0.78, 0.65, 60), BOOT, cfg)
    assert [c.name for c in forgot if not c.passed] == ["base_no_worse"]


def test_few_held_out_labels_are_not_enough_evidence():
    cfg = LifecycleSettings(min_target_labels=30)
    [only] = product_line_checks(_score(0.8, 0.5, 12), _score(0.8, 0.9, 12), BOOT, cfg)
    assert only.name == "evidence" and not only.passed and "12 held-out labels" in only.detail


def test_labels_worth_few_reviews_of_the_stream_are_not_enough_evidence():
    cfg = LifecycleSettings(min_target_labels=30)
    thin = BOOT.model_copy(update={"effective_n": 9.4})
    [only] = product_line_checks(_score(0.8, 0.5, 41), _score(0.8, 0.9, 41), thin, cfg)
    assert not only.passed and "41 held-out labels" in only.detail and "worth 9 reviews" in only.detail
    enough = product_line_checks(
        _score(0.8, 0.5, 41), _score(0.8, 0.9, 41), BOOT.model_copy(update={"effective_n": 35.0}), cfg
    )
    assert enough[0].passed and "weighted to the stream" in enough[2].detail


def test_a_challenger_that_fixes_only_the_uncertain_reviews_is_not_better_on_the_stream():
    """30 uncertain reviews (every one taken: weight 1) the champion gets wrong and the challenger right; 10 random
    picks (weight 40 each: the other 400 reviews of the stream) the champion gets right and the challenger gets 3
    wrong. Counted once each, the challenger looks far better; weighted to the stream, it is worse."""
    y = np.array([0, 1, 2] * 10 + [2] * 4 + [0] * 3 + [1] * 3)
    champion = np.concatenate([(y[:30] + 1) % 3, y[30:]])
    challenger = y.copy()
    challenger[30:33] = 0  # three of the random picks (positive) read as negative
    weights = np.array([1.0] * 30 + [40.0] * 10)
    plain, _ = paired_bootstrap(y, champion, challenger, 500, 0, 0.05)
    weighted, _ = paired_bootstrap(y, champion, challenger, 500, 0, 0.05, weights=weights)
    assert plain.difference > 0.5 and plain.p_value < 0.01 and plain.effective_n is None
    assert weighted.difference < 0 and weighted.p_value > 0.5
    assert weighted.effective_n == round(float(weights.sum() ** 2 / (weights**2).sum()), 1)


def test_import_labels_checks_rows_and_counts_duplicates_and_conflicts(settings, tmp_path, monkeypatch):
    import csv

    from scripts.models import main
    from training.evalset import load_human_labels

    path = tmp_path / "export.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "sentiment"])
        w.writerow([1, "The strap broke after a week of light use.", "Negative"])
        w.writerow([2, "The strap broke after a week of light use.", "neutral"])  # conflict: latest wins
        w.writerow([3, "Sounds lovely and stays in tune for hours.", "positive"])
        w.writerow([4, "Sounds lovely and stays in tune for hours.", "positive"])  # duplicate
        w.writerow([5, "Fine I guess, nothing special about it.", "meh"])  # unknown label
        w.writerow([6, "ok", "positive"])  # too short for the input checks
    monkeypatch.setenv("SENTIMENT_PATHS__DATA_DIR", str(settings.paths.data_dir))
    assert main(["import-labels", str(path)]) == 0
    labels = load_human_labels(settings.paths.human_labels, settings.gates)
    assert labels.stats.records == 4 and labels.stats.reviews == 2
    assert labels.stats.duplicates == 2 and labels.stats.conflicts == 1
    assert {e.text[:9]: e.label.value for e in labels.examples} == {"The strap": "neutral", "Sounds lo": "positive"}
