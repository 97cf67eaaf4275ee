"""How well tier 1 is doing without labels: accuracy, per-class precision and recall, macro-F1 and the class mix of
a window of answers, each with a 95% interval, estimated from the calibrated probabilities the log keeps.

Two methods, one confusion matrix each (rows: true class, columns: the model's top label):
- ``cbpe`` (confidence-based performance estimation, as NannyML's CBPE): a calibrated probability vector is the
  expected one-hot truth, so column ``j`` of the expected confusion matrix is the sum of the probability vectors of
  the answers whose top label is ``j``.
- ``atc`` (Average Thresholded Confidence, Garg et al. 2022): a threshold on the top probability, chosen on labelled
  validation data so that the share above it equals validation accuracy; an answer above it counts as correct. The
  errors of a column are spread over the other true classes as its probability vectors spread them.
Both assume the calibration made on validation data still holds on the stream; where it does not, the estimate is
biased by the calibration error, and operator labels are what corrects it: a labelled answer counts with its true
class instead of its estimate (``labelled`` says how many did).

Intervals are the 2.5 and 97.5 percentiles over confusion matrices drawn around the estimate (a normal
approximation per column of the multinomial the method implies): the spread of the realised figure the window
would show if the method's assumption holds, so a calibrated stream lands inside it 95% of the time. Nothing here
does I/O; every reader (the service's ``/stats``, the drift report, the dashboard, the evaluation) calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from sentiment.contract import LABELS

Method = Literal["cbpe", "atc"]
METHODS: tuple[Method, ...] = ("cbpe", "atc")
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
K = len(LABELS)
DRAWS = 1000


class Interval(BaseModel):
    value: float
    lo: float
    hi: float

    def contains(self, x: float) -> bool:
        return self.lo - 1e-12 <= x <= self.hi + 1e-12


class ClassEstimate(BaseModel):
    precision: Interval
    recall: Interval
    share: Interval  # the estimated share of this true class in the window (the class mix)


class PerformanceEstimate(BaseModel):
    """One window's estimate for one model version."""

    method: Method
    model_tag: str | None = None
    n: int
    accuracy: Interval
    macro_f1: Interval
    per_class: dict[str, ClassEstimate]
    predicted_mix: dict[str, float]  # share of each top label (what the model says, not an estimate)
    labelled: int = 0  # answers whose operator label replaced their estimate
    realised_accuracy: float | None = None  # over the labelled answers alone, where there are any
    realised_macro_f1: float | None = None
    # The blind estimate over those same labelled answers: what to hold the realised figures against, since
    # operators label a chosen few (the human queue holds the low-confidence answers), not a random sample.
    labelled_estimated_accuracy: float | None = None
    labelled_estimated_macro_f1: float | None = None
    note: str = ""


class AtcThreshold(BaseModel):
    """ATC's one fitted number, with the validation figures it came from."""

    threshold: float
    val_accuracy: float | None = None
    val_n: int = 0


def choose_method(method: Method, atc_threshold: float | None) -> tuple[Method, AtcThreshold | None, str]:
    """The method a setting asks for, or CBPE where ATC has no fitted threshold (and a note saying so)."""
    if method == "atc" and atc_threshold is None:
        return "cbpe", None, "ATC asked for without a fitted threshold (estimation.atc_threshold): estimated by CBPE"
    return method, AtcThreshold(threshold=atc_threshold) if atc_threshold is not None else None, ""


def fit_atc(val_probs: Floats, val_y: Sequence[int] | Ints) -> AtcThreshold:
    """The top-probability threshold whose share above it on validation data equals validation accuracy."""
    probs = np.asarray(val_probs, dtype=np.float64)
    y = np.asarray(val_y)
    conf = probs.max(1)
    acc = float((probs.argmax(1) == y).mean())
    # share above t == acc  <=>  t is the (1 - acc) quantile of the confidences
    t = float(np.quantile(conf, 1.0 - acc, method="linear")) if len(conf) else 1.0
    return AtcThreshold(threshold=t, val_accuracy=acc, val_n=len(y))


def metrics_of(conf: Floats) -> dict[str, Floats]:
    """Accuracy, precision, recall, F1, macro-F1 and class mix of confusion matrices ``(..., true, pred)``."""
    c = np.asarray(conf, dtype=np.float64)
    n = c.sum(axis=(-2, -1))
    diag = np.diagonal(c, axis1=-2, axis2=-1)
    pred_n, true_n = c.sum(-2), c.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_n > 0, diag / pred_n, 0.0)
        recall = np.where(true_n > 0, diag / true_n, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        accuracy = np.where(n > 0, diag.sum(-1) / n, 0.0)
        mix = np.where(n[..., None] > 0, true_n / n[..., None], 0.0)
    return {
        "accuracy": accuracy,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "macro_f1": f1.mean(-1),
        "mix": mix,
    }


def true_confusion(y: Sequence[int] | Ints, pred: Sequence[int] | Ints) -> Floats:
    c = np.zeros((K, K))
    np.add.at(c, (np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1.0)
    return c


def _columns(probs: Floats, pred: Ints, method: Method, atc: AtcThreshold | None) -> tuple[Floats, Floats]:
    """Expected confusion matrix (true, pred) and each column's covariance (pred, true, true)."""
    mean = np.zeros((K, K))
    cov = np.zeros((K, K, K))
    for j in range(K):
        p = probs[pred == j]
        if not len(p):
            continue
        if method == "cbpe":
            m = p.sum(0)
            cov[j] = np.diag(m) - p.T @ p  # sum over answers of a categorical's covariance
        else:
            assert atc is not None
            correct = float((p.max(1) > atc.threshold).sum())
            wrong = p.sum(0)
            wrong[j] = 0.0
            spread = wrong / wrong.sum() if wrong.sum() > 0 else np.full(K, 1.0 / (K - 1)) * (np.arange(K) != j)
            m = spread * (len(p) - correct)
            m[j] = correct
            pi = m / len(p)
            # twice a multinomial's: the count above the threshold is itself a draw, as noisy as the truth it
            # stands for, and the two are independent
            cov[j] = 2 * len(p) * (np.diag(pi) - np.outer(pi, pi))
        mean[:, j] = m
    return mean, cov


def estimate(
    probs: Floats,
    method: Method = "cbpe",
    atc: AtcThreshold | None = None,
    labels: Sequence[int] | Ints | None = None,
    model_tag: str | None = None,
    draws: int = DRAWS,
    seed: int = 0,
) -> PerformanceEstimate:
    """One window. ``labels``: the true class per answer where an operator gave one, -1 where not."""
    if method == "atc" and atc is None:
        raise ValueError("ATC needs a threshold fitted on labelled validation data (fit_atc)")
    p = np.asarray(probs, dtype=np.float64).reshape(-1, K)
    pred = p.argmax(1)
    y = np.full(len(p), -1, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    known = y >= 0
    mean, cov = _columns(p[~known], pred[~known], method, atc)
    mean += true_confusion(y[known], pred[known])
    n_known = int(known.sum())
    realised: dict[str, float] = {}
    if n_known:
        r = metrics_of(true_confusion(y[known], pred[known]))
        b = metrics_of(_columns(p[known], pred[known], method, atc)[0])
        realised = {
            "realised_accuracy": float(r["accuracy"]),
            "realised_macro_f1": float(r["macro_f1"]),
            "labelled_estimated_accuracy": float(b["accuracy"]),
            "labelled_estimated_macro_f1": float(b["macro_f1"]),
        }
    note = f"{method}; {n_known} of {len(p)} answers counted with their operator label" if n_known else method
    est = from_expected(mean, cov, method, model_tag, draws, seed)
    return est.model_copy(update={"labelled": n_known, "note": note, **realised})


def cbpe_sums(probs: Floats) -> tuple[Floats, Floats]:
    """CBPE's sufficient statistics of a set of answers: additive, so stored rollups can be summed (trends)."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1, K)
    return _columns(p, p.argmax(1), "cbpe", None)


def from_expected(
    mean: Floats,
    cov: Floats,
    method: Method = "cbpe",
    model_tag: str | None = None,
    draws: int = DRAWS,
    seed: int = 0,
) -> PerformanceEstimate:
    """Figures and intervals from an expected confusion matrix (true, pred) and its columns' covariances."""
    return many_from_expected(mean[None], cov[None], method, model_tag, draws, seed)[0]


def many_from_expected(
    means: Floats,
    covs: Floats,
    method: Method = "cbpe",
    model_tag: str | None = None,
    draws: int = DRAWS,
    seed: int = 0,
) -> list[PerformanceEstimate]:
    """:func:`from_expected` for many windows at once ``(W, true, pred)``, ``(W, pred, true, true)``: one
    vectorised draw for all of them, so a trends page of hundreds of windows costs one pass."""
    rng = np.random.default_rng(seed)
    w, v = np.linalg.eigh(covs)  # (W, pred, K), (W, pred, K, K)
    noise = rng.standard_normal((len(means), draws, K, K)) * np.sqrt(np.clip(w, 0.0, None))[:, None]
    # samples[w, d, :, j] = mean[w, :, j] + v[w, j] @ noise[w, d, j]
    samples = np.clip(means[:, None] + np.einsum("wjab,wdjb->wdaj", v, noise), 0.0, None)
    point, drawn = metrics_of(means), metrics_of(samples)
    bounds = {key: np.percentile(d, [2.5, 97.5], axis=1) for key, d in drawn.items()}  # (2, W, ...)

    def iv(key: str, at: tuple[int, ...]) -> Interval:
        value = float(point[key][at])
        lo, hi = float(bounds[key][(0, *at)]), float(bounds[key][(1, *at)])
        return Interval.model_construct(value=value, lo=min(lo, value), hi=max(hi, value))

    out = []
    for k in range(len(means)):
        n = float(means[k].sum())
        pred_n = means[k].sum(0)
        out.append(
            PerformanceEstimate.model_construct(
                method=method,
                model_tag=model_tag,
                n=round(n),
                accuracy=iv("accuracy", (k,)),
                macro_f1=iv("macro_f1", (k,)),
                per_class={
                    label: ClassEstimate.model_construct(
                        precision=iv("precision", (k, i)), recall=iv("recall", (k, i)), share=iv("mix", (k, i))
                    )
                    for i, label in enumerate(LABELS)
                },
                predicted_mix={label: float(pred_n[i] / n) if n else 0.0 for i, label in enumerate(LABELS)},
                labelled=0,
                realised_accuracy=None,
                realised_macro_f1=None,
                labelled_estimated_accuracy=None,
                labelled_estimated_macro_f1=None,
                note=method,
            )
        )
    return out


# --- log records -------------------------------------------------------------------------------------------------


class RecordArrays(BaseModel, arbitrary_types_allowed=True):
    """The part of the predictions log the estimate reads, as arrays: records where tier 1 ran and logged its
    probabilities (older records without them are skipped and counted)."""

    probs: Floats
    tags: list[str]
    ts: list[str]
    labels: Ints
    skipped: int = 0


def record_arrays(records: Iterable[Mapping[str, Any]], labels: Mapping[str, str] | None = None) -> RecordArrays:
    """``labels``: operator labels by request id (the latest per request, as the dashboard and training read them)."""
    index = {label: i for i, label in enumerate(LABELS)}
    rows: list[list[float]] = []
    tags: list[str] = []
    ts: list[str] = []
    ys: list[int] = []
    skipped = 0
    for r in records:
        p = r.get("probs")
        if not p or len(p) != K:
            skipped += int(r.get("model_confidence") is not None)
            continue
        rows.append(p)
        tags.append(str(r.get("model_tag") or ""))
        ts.append(str(r.get("ts") or ""))
        ys.append(index.get(labels.get(str(r.get("request_id")), ""), -1) if labels else -1)
    return RecordArrays(
        probs=np.asarray(rows, dtype=np.float64).reshape(-1, K),
        tags=tags,
        ts=ts,
        labels=np.asarray(ys, dtype=np.int64),
        skipped=skipped,
    )


def by_version(
    arrays: RecordArrays, method: Method = "cbpe", atc: AtcThreshold | None = None
) -> dict[str, PerformanceEstimate]:
    """One estimate per model version over all the records given (the rolling window of ``/stats``)."""
    tags = np.asarray(arrays.tags, dtype=object)
    out: dict[str, PerformanceEstimate] = {}
    for tag in dict.fromkeys(arrays.tags):
        mask = tags == tag
        out[tag] = estimate(arrays.probs[mask], method, atc, arrays.labels[mask], model_tag=tag or None)
    return out


def latest_labels(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """request id -> the operator's most recent label; the labels file is append-only, so later lines win."""
    out: dict[str, str] = {}
    for r in records:
        rid, label = r.get("request_id"), r.get("label")
        if isinstance(rid, str) and label in LABELS:
            out[rid] = str(label)
    return out


def count_windows(n: int, size: int) -> list[slice]:
    """Consecutive windows of ``size`` answers; a last partial window counts when it holds at least half of one."""
    edges = list(range(0, n, size))
    out = [slice(a, min(a + size, n)) for a in edges]
    if len(out) > 1 and out[-1].stop - out[-1].start < size // 2:
        out[-2] = slice(out[-2].start, n)
        out.pop()
    return out


# --- correcting the calibration with a few labels ------------------------------------------------------------------


class Recalibration(BaseModel):
    """Temperature and per-class bias on the log-probabilities (vector scaling), fitted on labelled answers."""

    temperature: float = 1.0
    bias: list[float] = [0.0] * K
    n: int = 0

    def apply(self, probs: Floats) -> Floats:
        z = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None)) / self.temperature + np.asarray(self.bias)
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        out: Floats = e / e.sum(1, keepdims=True)
        return out


def fit_recalibration(probs: Floats, y: Sequence[int] | Ints, l2: float = 0.1) -> Recalibration:
    """Vector scaling on a stream's labelled answers (a random sample: the human queue's would be biased).

    A light L2 pull towards no change keeps a fit on a few dozen labels from chasing their noise. It needs scipy,
    which the serving image does not ship: evaluations and training environments call it, the service does not.
    """
    from scipy.optimize import minimize

    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None))
    yy = np.asarray(y, dtype=np.int64)

    def nll(theta: Floats) -> float:
        z = logp * np.exp(theta[0]) + theta[1:]
        z -= z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1))
        return float((lse - z[np.arange(len(yy)), yy]).mean() + l2 * (theta**2).sum())

    res = minimize(nll, np.zeros(K + 1), method="L-BFGS-B")
    return Recalibration(temperature=float(np.exp(-res.x[0])), bias=[float(b) for b in res.x[1:]], n=len(yy))
