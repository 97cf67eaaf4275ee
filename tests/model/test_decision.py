"""The decision bias: chosen on validation for macro-F1, within the coverage it is asked to keep."""

from __future__ import annotations

import numpy as np

from sentiment.model.inference import softmax
from training.decision import macro_f1, shift, tune_bias


def _calibrated_rare_neutral(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A natural mix (5% neutral) whose calibrated probabilities rarely make neutral the top class."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.15, 0.05, 0.80])
    logits = rng.normal(size=(n, 3)) + np.array([[3.0, 0.0, 0.0], [0.8, 1.2, 0.8], [0.0, 0.0, 3.0]])[y]
    return softmax(logits + np.log([0.15, 0.05, 0.80])), y


def test_tuned_bias_keeps_the_coverage_it_is_asked_for() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    probs = softmax(rng.normal(size=(300, 3)) + 3.0 * np.eye(3)[y])
    bias = tune_bias(probs, y, gate=0.6, min_coverage=0.8, grid=[-1.0, -0.5, 0.0, 0.5, 1.0])
    assert (shift(probs, bias).max(1) >= 0.6).mean() >= 0.8 and bias[2] == 0.0


def test_a_rare_class_gets_answered_and_macro_f1_rises_on_unseen_reviews() -> None:
    val_p, val_y = _calibrated_rare_neutral(3000, seed=1)
    test_p, test_y = _calibrated_rare_neutral(3000, seed=2)
    bias = tune_bias(val_p, val_y, gate=0.6, min_coverage=0.6)
    assert bias[1] > 0  # towards neutral
    before, after = test_p.argmax(1), shift(test_p, bias).argmax(1)
    assert (after == 1).sum() > (before == 1).sum()
    assert macro_f1(test_y, after) > macro_f1(test_y, before) + 0.02


def test_no_bias_when_no_grid_point_keeps_the_coverage() -> None:
    probs, y = _calibrated_rare_neutral(500, seed=3)
    assert tune_bias(probs, y, gate=0.99, min_coverage=0.99) == [0.0, 0.0, 0.0]
