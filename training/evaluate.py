"""Held-out evaluation: the spec's requirement table, per source, and the view from the whole chain.

Model-level: per-class precision/recall/F1 next to the requirement, macro-F1, confusion matrix, binary
negative-vs-positive accuracy. Chain-level: every test review goes through :meth:`fallback.chain.Chain.resolve`
(the real confidence gate, neutral band, keyword rules and human queue, with the queue in a scratch file), so
the tier shares and per-tier accuracy are the ones the service would produce, plus the risk-coverage curve
over the gate and the lowest gate at which the ``ok`` answers meet the requirement table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from sentiment.contract import LABELS

if TYPE_CHECKING:
    from sentiment.model.inference import Floats

LabelIds = Sequence[int] | NDArray[np.integer[Any]]  # class indices into LABELS

# Spec, "Model quality requirements": (precision, recall) per class, and macro-F1.
REQUIREMENTS: dict[str, tuple[float, float]] = {
    "negative": (0.75, 0.85),
    "neutral": (0.80, 0.80),
    "positive": (0.90, 0.70),
}
MACRO_F1_REQUIREMENT = 0.85


class ClassMetrics(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int
    required_precision: float
    required_recall: float
    meets: bool


class Metrics(BaseModel):
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]  # rows = true label, columns = predicted, order of LABELS
    meets_requirements: bool


class GatePoint(BaseModel):
    gate: float
    coverage: float
    accuracy: float
    macro_f1: float
    meets: bool
    failing: list[str]


class TierStats(BaseModel):
    share: float
    n: int
    accuracy: float | None  # None for the human tier: no automatic label


class ChainView(BaseModel):
    gate: float
    neutral_band: float | None
    tiers: dict[str, TierStats]  # model | rules | human
    ok_metrics: Metrics | None
    automatic_accuracy: float  # model + rules answers


def metrics(y: LabelIds, pred: LabelIds) -> Metrics:
    labels = list(range(len(LABELS)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    per_class = {}
    for i, name in enumerate(LABELS):
        req_p, req_r = REQUIREMENTS[name]
        per_class[name] = ClassMetrics(
            precision=float(p[i]),
            recall=float(r[i]),
            f1=float(f[i]),
            support=int(s[i]),
            required_precision=req_p,
            required_recall=req_r,
            meets=bool(p[i] >= req_p and r[i] >= req_r),
        )
    macro = float(np.mean(f))
    return Metrics(
        n=len(y),
        accuracy=float(np.mean(np.asarray(y) == np.asarray(pred))) if len(y) else 0.0,
        macro_f1=macro,
        per_class=per_class,
        confusion=confusion_matrix(y, pred, labels=labels).tolist(),
        meets_requirements=all(c.meets for c in per_class.values()) and macro >= MACRO_F1_REQUIREMENT,
    )


def binary_accuracy(y: LabelIds, probs: Floats) -> dict[str, float]:
    """Negative vs positive only (3-star reviews left out), argmax over the two: comparable to polarity benchmarks."""
    y = np.asarray(y)
    neg, pos = LABELS.index("negative"), LABELS.index("positive")
    m = (y == neg) | (y == pos)
    pred = np.where(probs[m, pos] >= probs[m, neg], pos, neg)
    return {"n": int(m.sum()), "accuracy": float((pred == y[m]).mean()) if m.any() else 0.0}


def failing(m: Metrics) -> list[str]:
    """Which cells of the requirement table are missed, e.g. ``["neutral P", "neutral R", "macro-F1"]``."""
    out = []
    for k, c in m.per_class.items():
        out += [f"{k} P"] if c.precision < c.required_precision else []
        out += [f"{k} R"] if c.recall < c.required_recall else []
    return out + (["macro-F1"] if m.macro_f1 < MACRO_F1_REQUIREMENT else [])


def risk_coverage(
    y: LabelIds, probs: Floats, gates: Sequence[float] | NDArray[np.floating[Any]] | None = None
) -> list[GatePoint]:
    """For each gate: the share of reviews tier 1 answers (``ok``) and how good those answers are."""
    y = np.asarray(y)
    conf, pred = probs.max(1), probs.argmax(1)
    gates = gates if gates is not None else np.round(np.arange(0.34, 0.996, 0.01), 2)
    points = []
    for g in gates:
        m = conf >= g
        if not m.any():
            break
        mm = metrics(y[m], pred[m])
        points.append(
            GatePoint(
                gate=float(g),
                coverage=float(m.mean()),
                accuracy=mm.accuracy,
                macro_f1=mm.macro_f1,
                meets=mm.meets_requirements,
                failing=failing(mm),
            )
        )
    return points


def requirement_gate(points: Sequence[GatePoint], classes: Sequence[str] | None = None) -> GatePoint | None:
    """Lowest gate whose ``ok`` answers meet the whole table, or only the rows of ``classes``."""
    if classes is None:
        return next((p for p in points if p.meets), None)
    return next((p for p in points if not any(f.split()[0] in classes for f in p.failing)), None)


def per_source(sources: Sequence[str], y: LabelIds, probs: Floats) -> dict[str, dict[str, object]]:
    y, pred = np.asarray(y), probs.argmax(1)
    out: dict[str, dict[str, object]] = {}
    for source in sorted(set(sources)):
        m = np.asarray([s == source for s in sources])
        mm = metrics(y[m], pred[m])
        out[source] = {
            "n": mm.n,
            "labels": dict(sorted(Counter(LABELS[i] for i in y[m]).items())),
            "accuracy": mm.accuracy,
            "macro_f1": mm.macro_f1,
            "f1": {k: c.f1 for k, c in mm.per_class.items()},
            "binary": binary_accuracy(y[m], probs[m]),
        }
    return out


# --- plots -------------------------------------------------------------------------------------------------------


def _plt() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(m: Metrics, path: Path, title: str) -> Path:
    plt = _plt()
    cm = np.asarray(m.confusion)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            ax.text(
                j,
                i,
                f"{cm[i, j]}\n{norm[i, j]:.0%}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set(
        xticks=range(len(LABELS)),
        yticks=range(len(LABELS)),
        xticklabels=LABELS,
        yticklabels=LABELS,
        xlabel="predicted",
        ylabel="true (stars)",
        title=f"{title}\nmacro-F1 {m.macro_f1:.3f}, n={m.n}",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_risk_coverage(points: Sequence[GatePoint], gate: float, req: GatePoint | None, path: Path, title: str) -> Path:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    cov = [p.coverage for p in points]
    a1.plot(cov, [1 - p.accuracy for p in points], "-", label="error rate of ok answers")
    a1.plot(cov, [1 - p.macro_f1 for p in points], "-", label="1 - macro-F1 of ok answers")
    a1.set(xlabel="coverage (share answered by tier 1)", ylabel="risk", title="risk vs coverage", xlim=(0, 1.02))
    gates = [p.gate for p in points]
    a2.plot(gates, cov, label="coverage")
    a2.plot(gates, [p.accuracy for p in points], label="accuracy of ok answers")
    a2.plot(gates, [p.macro_f1 for p in points], label="macro-F1 of ok answers")
    a2.axvline(gate, color="grey", ls="--", label=f"configured gate {gate:.2f}")
    if req is not None:
        a2.axvline(req.gate, color="tab:green", ls=":", label=f"meets requirements from {req.gate:.2f}")
    a2.set(xlabel="confidence gate", title="coverage and quality over the gate", ylim=(0, 1.02))
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_per_source(table: dict[str, dict[str, object]], path: Path, title: str) -> Path:
    """Horizontal grouped bars, one group per test source: the held-out figures the README quotes per source."""
    plt = _plt()
    names = list(table)
    y = np.arange(len(names))
    series = {
        "macro-F1": [float(table[n]["macro_f1"]) for n in names],  # type: ignore[arg-type]
        "accuracy": [float(table[n]["accuracy"]) for n in names],  # type: ignore[arg-type]
        "binary neg-vs-pos accuracy": [float(table[n]["binary"]["accuracy"]) for n in names],  # type: ignore[index]
    }
    h = 0.27
    fig, ax = plt.subplots(figsize=(9, 1.1 * len(names) + 1.5))
    for k, (label, values) in enumerate(series.items()):
        ax.barh(y + (k - 1) * h, values, h, label=label)
    ax.axvline(MACRO_F1_REQUIREMENT, color="grey", ls="--", label="macro-F1 requirement")
    ax.set_yticks(y, [f"{n} (n={table[n]['n']})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), title=title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_class_risk_coverage(y: LabelIds, probs: Floats, gate: float, path: Path, title: str) -> Path:
    """Per class, over the gate: precision and recall of the ``ok`` answers against the share answered, with the
    requirement lines, so an operator sees which class a gate setting sacrifices."""
    plt = _plt()
    y = np.asarray(y)
    conf, pred = probs.max(1), probs.argmax(1)
    gates = np.round(np.arange(0.34, 0.996, 0.01), 2)
    fig, axes = plt.subplots(1, len(LABELS), figsize=(13, 4.2), sharey=True)
    for k, (ax, name) in enumerate(zip(axes, LABELS, strict=True)):
        cov, prec, rec = [], [], []
        for g in gates:
            m = conf >= g
            if not m.any():
                break
            said, true = pred[m] == k, y[m] == k
            cov.append(m.mean())
            prec.append((said & true).sum() / max(said.sum(), 1))
            rec.append((said & true).sum() / max(true.sum(), 1))
        ax.plot(cov, prec, label="precision of ok answers")
        ax.plot(cov, rec, label="recall among ok answers")
        req_p, req_r = REQUIREMENTS[name]
        ax.axhline(req_p, color="tab:blue", ls=":", lw=1, label=f"required precision {req_p:.2f}")
        ax.axhline(req_r, color="tab:orange", ls=":", lw=1, label=f"required recall {req_r:.2f}")
        at = float((conf >= gate).mean())
        ax.axvline(at, color="grey", ls="--", lw=1, label=f"gate {gate:.2f} (coverage {at:.0%})")
        ax.set(title=name, xlabel="coverage (share answered by tier 1)", xlim=(0, 1.02), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
