"""Decision bias: an extra class bias on top of calibration, chosen on validation to maximise macro-F1.

Calibration makes the probabilities honest at the natural class mix, and at that mix the most likely class is
almost never neutral (3-star reviews are a few percent of a stream, and the hardest to read). That is right for
accuracy and wrong for macro-F1, which weighs the rare classes as much as the common one. A small bias per class,
searched on the validation split while the confidence gate still lets ``min_coverage`` of reviews through, moves
the decisions; it is served as part of ``class_bias``, so the model's confidence is the biased probability.
Leave-one-source-out measures it as the ``tuned_bias`` variant (``training.loso``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentiment.contract import LABELS
from sentiment.model.inference import softmax

GRID: tuple[float, ...] = tuple(float(x) for x in np.round(np.arange(-2.0, 2.01, 0.1), 2))


def shift(probs: np.ndarray, bias: Sequence[float]) -> np.ndarray:
    """softmax(log p + bias): an extra class bias on top of calibration."""
    return softmax(np.log(np.clip(probs, 1e-12, None)) + np.asarray(bias))


def prf(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall (0 where a class is never predicted or never true)."""
    k = len(LABELS)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k) if len(y) else np.zeros((k, k), int)
    tp = np.diag(cm).astype(float)
    return tp / np.maximum(cm.sum(0), 1), tp / np.maximum(cm.sum(1), 1)


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    p, r = prf(y, pred)
    return float(np.mean(np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)))


def tune_bias(
    probs: np.ndarray, y: np.ndarray, gate: float, min_coverage: float, grid: Sequence[float] = GRID
) -> list[float]:
    """Negative and neutral bias (positive pinned to 0) maximising validation macro-F1, coverage kept (none if no
    point of the grid keeps it)."""
    logp = np.log(np.clip(probs, 1e-12, None))
    best, best_bias = -1.0, [0.0, 0.0, 0.0]
    for bn in grid:
        for bu in grid:
            p = softmax(logp + np.array([bn, bu, 0.0]))
            if (p.max(1) >= gate).mean() < min_coverage:
                continue
            f1 = macro_f1(y, p.argmax(1))
            if f1 > best + 1e-9:
                best, best_bias = f1, [float(bn), float(bu), 0.0]
    return best_bias
