"""Temperature scaling: one scalar T, fitted by NLL on validation logits, so confidence means probability.

The chain's confidence gate compares a number to 0.60; that comparison only means something when, among
answers given with confidence ~0.6, about 60% are right. Temperature scaling keeps the argmax (accuracy is
unchanged) and fixes the over/under-confidence; ECE before/after and a reliability diagram show it did.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel
from scipy.optimize import minimize_scalar

from sentiment.model.inference import softmax


class Calibration(BaseModel):
    temperature: float
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    p = softmax(logits / temperature)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Minimise NLL over log T in [-3, 3] (T between 0.05 and 20): bounded, so it cannot run away."""
    res = minimize_scalar(lambda log_t: nll(logits, y, float(np.exp(log_t))), bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(res.x))


def reliability(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error (top-label, equal-width bins) and the per-bin table behind it."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece, bins = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if not m.any():
            continue
        acc, avg = float(correct[m].mean()), float(conf[m].mean())
        ece += m.mean() * abs(acc - avg)
        bins.append({"lo": float(lo), "hi": float(hi), "n": int(m.sum()), "accuracy": acc, "confidence": avg})
    return float(ece), bins


def calibrate(val_logits: np.ndarray, val_y: np.ndarray) -> Calibration:
    t = fit_temperature(val_logits, val_y)
    return Calibration(
        temperature=round(t, 4),
        nll_before=nll(val_logits, val_y),
        nll_after=nll(val_logits, val_y, t),
        ece_before=reliability(softmax(val_logits), val_y)[0],
        ece_after=reliability(softmax(val_logits / t), val_y)[0],
    )


def plot_reliability(logits: np.ndarray, y: np.ndarray, temperature: float, path: Path, title: str) -> Path:
    """Reliability diagram, before vs after temperature scaling, on the given split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
    for ax, (name, t) in zip(axes, (("uncalibrated (T=1)", 1.0), (f"temperature T={temperature:.2f}", temperature)),
                             strict=True):
        ece, bins = reliability(softmax(logits / t), y)
        centers = [(b["lo"] + b["hi"]) / 2 for b in bins]
        ax.bar(centers, [b["accuracy"] for b in bins], width=1 / 15, edgecolor="black", alpha=0.7, label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.plot(centers, [b["confidence"] for b in bins], "o", color="tab:red", label="mean confidence")
        ax.set(title=f"{name}: ECE {ece:.3f}", xlabel="top-class confidence", xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("accuracy in bin")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
