"""The seven drift signals. Each compares a reference and a current window and gives its own verdict.

Pure functions over arrays, so the specificity tests can run hundreds of random splits in seconds.
Three kinds of rule, chosen per signal:
- effect size over a threshold (OOV delta, JS divergence): never fires on noise once windows hold a few
  hundred records, but says nothing about significance;
- a test's p-value under a threshold (KS on length, MMD on embeddings): the false-alarm rate is the threshold;
- rates (low confidence, non-English, rejected): the change must exceed its threshold AND be significant in a
  one-sided two-proportion z-test, so a 15% growth of a 2% share measured on 300 records does not page anyone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from drift.embedding import mmd_test
from drift.features import GateCode
from drift.report import SignalResult
from sentiment.contract import LABELS
from sentiment.settings import DriftSettings

DESCRIPTIONS: dict[str, str] = {
    "oov_rate": "Training-serving skew: words and markup the model never saw (a parser that stopped stripping "
    "HTML, new slang, a new product vocabulary).",
    "text_length": "Input-shape change: reviews got longer or shorter (a new review form, truncation upstream, "
    "a surge of detailed complaints).",
    "label_distribution": "Prior shift: the sentiment mix changed (review bombing, a recall), so the class "
    "priors the model learned are off and per-class F1 moves.",
    "low_confidence": "The model grows unsure: more inputs it was not trained for, visible before accuracy drops "
    "(spec 004: retrain when the low-confidence bucket grows by more than 15%).",
    "embedding": "Semantic or topic shift: new products, categories or ways of writing, even when vocabulary, "
    "lengths and labels look unchanged.",
    "non_english_rate": "Market or locale change: a flood of reviews in languages the model does not serve "
    "(they are rejected, so coverage silently drops).",
    "rejected_rate": "Upstream breakage: empty, too short, over-long or mis-encoded inputs from a broken client "
    "or ingestion pipeline.",
}


@dataclass
class SignalInputs:
    """Per-window arrays the signals read. ``-1`` / NaN mark records a signal cannot use.

    Each signal reads only its own array, so they may differ in length (gate outcomes and confidences often come
    from a text sample); :meth:`subset` is for inputs whose arrays are aligned per record, as the tests build them.
    """

    length: np.ndarray
    oov: np.ndarray
    label: np.ndarray
    low_conf: np.ndarray
    gate: np.ndarray
    embeddings: np.ndarray | None = None
    notes: dict[str, str] = field(default_factory=dict)  # signal name -> why it has no input

    def subset(self, idx: np.ndarray) -> SignalInputs:
        """The same features for a subset of records (embeddings, when aligned, go along)."""
        emb = self.embeddings[idx] if self.embeddings is not None and len(self.embeddings) == len(self.length) else None
        return replace(
            self,
            length=self.length[idx],
            oov=self.oov[idx],
            label=self.label[idx],
            low_conf=self.low_conf[idx],
            gate=self.gate[idx],
            embeddings=emb,
        )


def _skipped(name: str, threshold: float, why: str, fires_when: str = "above") -> SignalResult:
    return SignalResult(
        drifted=False,
        statistic=None,
        threshold=threshold,
        description=DESCRIPTIONS[name],
        detail=f"skipped: {why}",
        fires_when=fires_when,
        skipped=True,
    )


def _note(ref: SignalInputs, cur: SignalInputs, name: str) -> str | None:
    return ref.notes.get(name) or cur.notes.get(name)


def oov_signal(ref: SignalInputs, cur: SignalInputs, threshold: float, context: str = "") -> SignalResult:
    a, b = ref.oov[np.isfinite(ref.oov)], cur.oov[np.isfinite(cur.oov)]
    if not len(a) or not len(b):
        return _skipped("oov_rate", threshold, _note(ref, cur, "oov_rate") or "no text and no logged OOV rate")
    r, c = float(a.mean()), float(b.mean())
    delta = c - r
    detail = f"delta {delta:+.2%} (reference {r:.2%}, current {c:.2%})"
    if context:
        detail += f"; {context}"
    return SignalResult(
        drifted=delta > threshold,
        statistic=delta,
        threshold=threshold,
        reference=r,
        current=c,
        description=DESCRIPTIONS["oov_rate"],
        detail=detail,
        statistic_name="OOV-rate delta",
        n_reference=len(a),
        n_current=len(b),
    )


def _length_stats(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(x.mean()), "std": float(x.std()), "median": float(np.median(x))}


def length_signal(ref: SignalInputs, cur: SignalInputs, pvalue: float) -> SignalResult:
    if not len(ref.length) or not len(cur.length):
        return _skipped("text_length", pvalue, "empty window", "below")
    ks = stats.ks_2samp(ref.length, cur.length)
    return SignalResult(
        drifted=bool(ks.pvalue < pvalue),
        statistic=float(ks.pvalue),
        threshold=pvalue,
        reference=_length_stats(ref.length),
        current=_length_stats(cur.length),
        description=DESCRIPTIONS["text_length"],
        detail=f"KS D = {ks.statistic:.4f}; lengths in characters",
        fires_when="below",
        statistic_name="KS p-value",
        p_value=float(ks.pvalue),
        n_reference=len(ref.length),
        n_current=len(cur.length),
    )


def _shares(codes: np.ndarray) -> tuple[np.ndarray, int]:
    counts = np.bincount(codes[codes >= 0], minlength=len(LABELS)).astype(np.float64)
    total = int(counts.sum())
    return (counts / total if total else counts), total


def label_signal(ref: SignalInputs, cur: SignalInputs, threshold: float) -> SignalResult:
    p, n_p = _shares(ref.label)
    q, n_q = _shares(cur.label)
    if not n_p or not n_q:
        return _skipped("label_distribution", threshold, "no ratings or labels in a window")
    distance = float(jensenshannon(p, q, base=2))
    js = distance**2
    return SignalResult(
        drifted=js > threshold,
        statistic=js,
        threshold=threshold,
        reference=dict(zip(LABELS, map(float, p), strict=True)),
        current=dict(zip(LABELS, map(float, q), strict=True)),
        description=DESCRIPTIONS["label_distribution"],
        detail=f"JS divergence, base 2 (the square of scipy's JS distance {distance:.4f})",
        statistic_name="JS divergence",
        n_reference=n_p,
        n_current=n_q,
    )


def _proportion_test(x_ref: int, n_ref: int, x_cur: int, n_cur: int) -> float:
    """One-sided p-value that the current share is larger (pooled two-proportion z-test)."""
    pooled = (x_ref + x_cur) / (n_ref + n_cur)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    diff = x_cur / n_cur - x_ref / n_ref
    if se == 0:
        return 0.0 if diff > 0 else 1.0
    return float(stats.norm.sf(diff / se))


def _rate_signal(
    name: str,
    flags_ref: np.ndarray,
    flags_cur: np.ndarray,
    threshold: float,
    alpha: float,
    relative: bool,
    statistic_name: str,
    why_missing: str,
    context: str = "",
) -> SignalResult:
    if not len(flags_ref) or not len(flags_cur):
        return _skipped(name, threshold, why_missing)
    x_r, n_r, x_c, n_c = int(flags_ref.sum()), len(flags_ref), int(flags_cur.sum()), len(flags_cur)
    r, c = x_r / n_r, x_c / n_c
    # Relative growth of a zero share is taken against one record's worth, so it stays finite (JSON has no inf).
    stat = (c - r) / max(r, 1 / n_r) if relative else c - r
    p = _proportion_test(x_r, n_r, x_c, n_c)
    detail = f"{x_r}/{n_r} -> {x_c}/{n_c}; one-sided two-proportion p = {p:.2e} (must be < {alpha})"
    if context:
        detail += f"; {context}"
    return SignalResult(
        drifted=bool(stat > threshold and p < alpha),
        statistic=stat,
        threshold=threshold,
        reference=r,
        current=c,
        description=DESCRIPTIONS[name],
        detail=detail,
        statistic_name=statistic_name,
        p_value=p,
        n_reference=n_r,
        n_current=n_c,
    )


def low_confidence_signal(
    ref: SignalInputs, cur: SignalInputs, drift: DriftSettings, context: str = ""
) -> SignalResult:
    a, b = ref.low_conf[ref.low_conf >= 0], cur.low_conf[cur.low_conf >= 0]
    why = _note(ref, cur, "low_confidence") or "no confidences (pass --model TAG or use predictions records)"
    return _rate_signal(
        "low_confidence",
        a,
        b,
        drift.low_confidence_growth,
        drift.rate_pvalue,
        True,
        "relative growth of the low-confidence share",
        why,
        context,
    )


def gate_signal(
    name: str, code: GateCode, ref: SignalInputs, cur: SignalInputs, threshold: float, alpha: float, context: str = ""
) -> SignalResult:
    a, b = ref.gate[ref.gate >= 0], cur.gate[cur.gate >= 0]
    why = _note(ref, cur, name) or "no gate outcomes"
    return _rate_signal(
        name,
        (a == code).astype(np.int8),
        (b == code).astype(np.int8),
        threshold,
        alpha,
        False,
        "absolute increase of the share",
        why,
        context,
    )


def embedding_signal(ref: SignalInputs, cur: SignalInputs, drift: DriftSettings, context: str = "") -> SignalResult:
    if ref.embeddings is None or cur.embeddings is None or not len(ref.embeddings) or not len(cur.embeddings):
        return _skipped("embedding", drift.embedding_pvalue, _note(ref, cur, "embedding") or "no embeddings", "below")
    res = mmd_test(ref.embeddings, cur.embeddings, drift.embedding_permutations, drift.seed)
    detail = (
        f"MMD² = {res.mmd2:.5f}, RBF bandwidth {res.bandwidth:.3f} (median heuristic), {res.permutations} permutations"
    )
    if context:
        detail += f"; {context}"
    sample: dict[str, Any] = {"sampled": res.n_reference}
    return SignalResult(
        drifted=res.p_value < drift.embedding_pvalue,
        statistic=res.p_value,
        threshold=drift.embedding_pvalue,
        reference=sample,
        current={"sampled": res.n_current},
        description=DESCRIPTIONS["embedding"],
        detail=detail,
        fires_when="below",
        statistic_name="MMD permutation p-value",
        p_value=res.p_value,
        n_reference=res.n_reference,
        n_current=res.n_current,
    )


def evaluate(
    ref: SignalInputs, cur: SignalInputs, drift: DriftSettings, context: Mapping[str, str] | None = None
) -> dict[str, SignalResult]:
    """All seven signals, in the report's order. ``context`` adds a line of detail per signal."""
    ctx = context or {}
    return {
        "oov_rate": oov_signal(ref, cur, drift.oov_threshold, ctx.get("oov_rate", "")),
        "text_length": length_signal(ref, cur, drift.length_pvalue),
        "label_distribution": label_signal(ref, cur, drift.js_threshold),
        "low_confidence": low_confidence_signal(ref, cur, drift, ctx.get("low_confidence", "")),
        "embedding": embedding_signal(ref, cur, drift, ctx.get("embedding", "")),
        "non_english_rate": gate_signal(
            "non_english_rate",
            GateCode.non_english,
            ref,
            cur,
            drift.non_english_threshold,
            drift.rate_pvalue,
            ctx.get("non_english_rate", ""),
        ),
        "rejected_rate": gate_signal(
            "rejected_rate",
            GateCode.rejected,
            ref,
            cur,
            drift.rejected_threshold,
            drift.rate_pvalue,
            ctx.get("rejected_rate", ""),
        ),
    }
