"""Temperature scaling, ECE, the requirement table, risk-coverage and the chain-level view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentiment.contract import LABELS
from sentiment.model.inference import softmax
from sentiment.outputs import ModelOutput
from training.calibrate import calibrate, fit, fit_temperature, plot_reliability, reliability
from training.chain_view import chain_view
from training.config import CalibrationPrior
from training.evaluate import (
    binary_accuracy,
    metrics,
    plot_confusion,
    plot_risk_coverage,
    requirement_gate,
    risk_coverage,
)


def _overconfident(n: int = 4000, t_true: float = 2.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z / t_true) while the model reports z: overconfident by a factor t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, size=(n, 3))
    p = softmax(z / t_true)
    y = np.array([rng.choice(3, p=row) for row in p])
    return z, y


def test_temperature_recovers_the_true_scale_and_lowers_ece(tmp_path: Path) -> None:
    z, y = _overconfident()
    z = z.astype(np.float32)  # what the model emits
    assert fit_temperature(z, y) == pytest.approx(2.5, rel=0.15)
    cal = calibrate(z, y)
    assert cal.nll_after < cal.nll_before
    assert cal.ece_after < cal.ece_before / 3
    png = plot_reliability(z, y, cal.temperature, tmp_path / "rel.png", "synthetic")
    assert png.stat().st_size > 10_000


def test_class_bias_restores_priors_a_balanced_model_lost() -> None:
    """A model trained on balanced classes scores z; the world is 80% positive: the bias must move towards it."""
    rng = np.random.default_rng(1)
    true_prior = np.array([0.1, 0.1, 0.8])
    z = rng.normal(0, 2, size=(6000, 3))
    p = softmax(z + np.log(true_prior))  # the real posterior under skewed priors
    y = np.array([rng.choice(3, p=row) for row in p])
    t, bias = fit(z, y)
    assert bias[0] == 0.0 and bias[2] - bias[1] == pytest.approx(np.log(8.0), abs=0.3)
    assert t == pytest.approx(1.0, rel=0.15)
    cal = calibrate(z, y)
    assert cal.nll_after < cal.nll_before
    assert (softmax(z / t + np.array(bias)).argmax(1) == y).mean() > (z.argmax(1) == y).mean() + 0.05


def test_a_prior_holds_a_fit_on_a_few_reviews_near_it_and_yields_to_many() -> None:
    """The fine-tune validates on a few dozen reviews: the MAP fit stays near the champion's calibration there, and
    moves to what the reviews say when there are enough of them."""
    rng = np.random.default_rng(2)
    true_prior = np.array([0.1, 0.1, 0.8])
    z = rng.normal(0, 2, size=(6000, 3))
    y = np.array([rng.choice(3, p=row) for row in softmax(z + np.log(true_prior))])
    champion = CalibrationPrior(temperature=1.0, class_bias=[0.3, 0.3, 0.3], sd=0.5)  # pinned: [0, 0, 0]
    free_few, prior_few = fit(z[:30], y[:30])[1], fit(z[:30], y[:30], prior=champion)[1]
    assert abs(prior_few[2]) < 0.5 * abs(free_few[2])  # a few reviews move it only part of the way
    assert prior_few[0] == 0.0
    many = fit(z, y, prior=champion)[1]
    assert many[2] - many[1] == pytest.approx(np.log(8.0), abs=0.35)  # thousands of reviews: the truth wins
    wide = CalibrationPrior(temperature=1.0, class_bias=[0.0, 0.0, 0.0], sd=1e3)
    assert fit(z[:30], y[:30], prior=wide)[1] == pytest.approx(free_few, abs=1e-2)


def test_ece_is_zero_for_perfect_confidence() -> None:
    probs = np.tile([0.0, 0.0, 1.0], (50, 1))
    assert reliability(probs, np.full(50, 2))[0] == pytest.approx(0.0)
    assert reliability(probs, np.zeros(50, dtype=int))[0] == pytest.approx(1.0)


def test_metrics_against_the_requirement_table() -> None:
    y = [0] * 10 + [1] * 10 + [2] * 10
    pred = [0] * 9 + [1] + [1] * 8 + [2] * 2 + [2] * 10
    m = metrics(y, pred)
    assert m.confusion == [[9, 1, 0], [0, 8, 2], [0, 0, 10]]
    assert m.per_class["negative"].precision == 1.0 and m.per_class["negative"].recall == 0.9
    assert m.per_class["negative"].meets  # P 1.0 >= 0.75, R 0.9 >= 0.85
    assert not m.per_class["positive"].meets  # P 10/12 < 0.90
    assert not m.meets_requirements


def test_risk_coverage_and_requirement_gate() -> None:
    # Confident answers are right, unsure ones wrong: raising the gate trades coverage for accuracy.
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 600)
    conf = rng.uniform(0.34, 1.0, 600)
    pred = np.where(conf > 0.7, y, (y + 1) % 3)
    probs = np.full((600, 3), 0.0)
    probs[np.arange(600), pred] = conf
    probs[np.arange(600), (pred + 1) % 3] = 1 - conf
    points = risk_coverage(y, probs)
    cov = [p.coverage for p in points]
    assert cov == sorted(cov, reverse=True) and cov[0] == 1.0
    gate = requirement_gate(points)
    # Answers above 0.70 are all right, so the table is met at or below 0.70, and it is the lowest such gate.
    assert gate is not None and 0.5 < gate.gate <= 0.70 and gate.coverage < 0.5
    assert all(not p.meets and p.failing for p in points if p.gate < gate.gate)
    assert next(p for p in points if p.gate >= 0.70).accuracy == 1.0
    polar = requirement_gate(points, ("negative", "positive"))
    assert polar is not None and polar.gate <= gate.gate
    assert not any(f.startswith(("negative", "positive")) for f in polar.failing)
    assert binary_accuracy(y, probs)["n"] == int(((y == 0) | (y == 2)).sum())


def test_chain_view_uses_the_real_gate_and_rules(settings, tmp_path: Path) -> None:
    texts = ["Excellent strings, love them", "Terrible, broke in a week", "It arrived on a Tuesday", "fine"]
    y = [2, 0, 1, 1]
    outputs = [
        ModelOutput(probs=[0.02, 0.03, 0.95], unk_rate=0, oov_rate=0),  # confident, right: tier 1
        ModelOutput(probs=[0.40, 0.35, 0.25], unk_rate=0, oov_rate=0),  # unsure: rules say negative
        ModelOutput(probs=[0.30, 0.40, 0.30], unk_rate=0, oov_rate=0),  # unsure, no keyword: human
        ModelOutput(probs=[0.10, 0.85, 0.05], unk_rate=0, oov_rate=0),
    ]
    view = chain_view(texts, y, outputs, settings.gates)
    assert {k: t.n for k, t in view.tiers.items()} == {"model": 2, "rules": 1, "human": 1}
    assert view.tiers["model"].accuracy == 1.0 and view.tiers["rules"].accuracy == 1.0
    assert view.tiers["human"].accuracy is None
    assert view.ok_metrics is not None and view.ok_metrics.n == 2
    assert not settings.paths.human_queue.exists()  # evaluation never writes to the service's queue
    m = metrics(y, [2, 0, 1, 1])
    assert plot_confusion(m, tmp_path / "cm.png", "t").exists()
    assert plot_risk_coverage(
        risk_coverage(np.array(y), np.array([o.probs for o in outputs])), 0.6, None, tmp_path / "rc.png", "t"
    ).exists()
    assert LABELS == ("negative", "neutral", "positive")
