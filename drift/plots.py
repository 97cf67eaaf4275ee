"""The picture next to the drift report: how the two windows differ on the statistical signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drift.report import DriftReport
from drift.windows import Window
from sentiment.contract import LABELS


def _verdict(report: DriftReport, name: str) -> str:
    s = report.signals[name]
    if s.skipped:
        return "skipped"
    return ("DRIFTED" if s.drifted else "no drift") + f" ({s.statistic_name} {s.statistic:.3g})"


def plot_windows(ref: Window, cur: Window, report: DriftReport, path: Path) -> None:
    """Length ECDFs, OOV-rate histograms and label shares of the reference (early) and current (late) windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = (f"early: {ref.info.label} (n={ref.info.n:,})", f"late: {cur.info.label} (n={cur.info.n:,})")
    ax = axes[0]
    for w, name in zip((ref, cur), names, strict=True):
        x = np.sort(w.length[w.length > 0])
        if len(x):
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("review length (characters, log scale)")
    ax.set_ylabel("share of reviews at most this long")
    ax.set_title("text_length: " + _verdict(report, "text_length"), fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    bins = np.linspace(0, 0.5, 26)
    for w, name in zip((ref, cur), names, strict=True):
        v = w.oov[np.isfinite(w.oov)]
        if len(v):
            ax.hist(np.clip(v, 0, 0.5), bins=bins, alpha=0.5, density=True, label=name)
    ax.set_xlabel("word-level OOV rate per review (clipped at 0.5)")
    ax.set_ylabel("density")
    ax.set_title("oov_rate: " + _verdict(report, "oov_rate"), fontsize=9)
    ax = axes[2]
    xs = np.arange(len(LABELS))
    for k, (w, name) in enumerate(zip((ref, cur), names, strict=True)):
        counts = np.bincount(w.label[w.label >= 0], minlength=len(LABELS)).astype(float)
        shares = counts / counts.sum() if counts.sum() else counts
        ax.bar(xs + (k - 0.5) * 0.4, shares, width=0.4, label=name)
    ax.set_xticks(xs, LABELS)
    ax.set_ylabel("share of labelled reviews")
    ax.set_title("label_distribution: " + _verdict(report, "label_distribution"), fontsize=9)
    verdict = "DRIFT in " + ", ".join(report.drifted_signals) if report.drift_detected else "no drift"
    fig.suptitle(f"Drift report: {verdict}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
