"""Would adapting the class prior to the stream fix negative precision on mostly-positive domains? A probe on a
stored leave-one-source-out run, not a serving feature.

Calibration fits the training sources' class mix (~17% negative); an unseen stream with 4-5% negatives gets the
same prior, so many of its "negative" answers are 4-5 star reviews. EM on the unlabelled predictions (Saerens,
Latinne and Decaestecker 2002) estimates the stream's mix and re-weights each probability by new prior / old
prior. This replays it on every fold's stored calibrated test probabilities, under the fold's stored decision bias
and the confidence gate, with the prior estimated from the whole held-out sample and from a 300-review window (what
a live replica would have seen), and from half-way between (geometric mean of the two priors). For comparison it
also replays a stricter confidence gate for negative answers alone. No training.

Decisions here are argmax plus the gate; the stored variant's own chain decisions are compared with them first,
and the share that agrees is reported (the chain also sends a few reviews to the rules or the human queue for
reasons other than confidence).

    .venv/bin/python -m experiments.probe_prior_shift [--report reports/model/loso/quick/loso.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.contract import LABELS
from training.decision import shift
from training.loso import LosoReport, figures

SHOWN = (
    "macro_f1",
    "coverage",
    "ok_negative_precision",
    "ok_negative_recall",
    "ok_neutral_precision",
    "ok_neutral_recall",
    "binary_accuracy",
    "ece",
)


def em_prior(probs: np.ndarray, prior: np.ndarray, steps: int = 200, tol: float = 1e-6) -> np.ndarray:
    """The stream's class mix that makes the re-weighted posteriors consistent with themselves (Saerens 2002)."""
    est = prior.copy()
    for _ in range(steps):
        new = reweight(probs, prior, est).mean(0)
        if np.abs(new - est).max() < tol:
            return new
        est = new
    return est


def reweight(probs: np.ndarray, prior: np.ndarray, new_prior: np.ndarray) -> np.ndarray:
    q = probs * (new_prior / np.clip(prior, 1e-12, None))
    return q / q.sum(1, keepdims=True)


def gated(probs: np.ndarray, gate: float, negative_gate: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """argmax, answered where confident enough; ``negative_gate``: a stricter gate for negative answers only."""
    pred = probs.argmax(1)
    gates = np.where(pred == LABELS.index("negative"), negative_gate or gate, gate)
    return pred, np.where(probs.max(1) >= gates, pred, -1)


def class_mix(y: list[int]) -> np.ndarray:
    return np.bincount(np.array(y), minlength=len(LABELS)) / len(y)


def probe(report: LosoReport, variant: str, window: int, seed: int, negative_gates: list[float]) -> dict[str, Any]:
    # The mix calibration was fitted at: each fold's validation labels; older runs did not store them, and their
    # folds get the average of the others.
    fallback = np.mean([class_mix(f.val_y) for f in report.folds if f.val_y], axis=0)
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in ("stored", "em_sample", f"em_window_{window}", "em_half")}
    rows |= {f"negative_gate_{g}": [] for g in negative_gates}
    priors: dict[str, dict[str, list[float]]] = {}
    agree = []
    rng = np.random.default_rng(seed)
    for f in report.folds:
        y, probs = np.array(f.y), np.array(f.probs)
        v = f.variants[variant]
        prior = class_mix(f.val_y) if f.val_y else fallback
        biased = shift(probs, v.bias)
        pred, answer = gated(biased, report.gate)
        agree.append(float((answer == np.array(v.answer)).mean()))
        est = em_prior(probs, prior)
        win = em_prior(probs[rng.choice(len(y), min(window, len(y)), replace=False)], prior)
        half = np.sqrt(est * prior) / np.sqrt(est * prior).sum()
        rows["stored"].append(figures(y, biased, pred, answer))
        for name, new in (("em_sample", est), (f"em_window_{window}", win), ("em_half", half)):
            q = shift(reweight(probs, prior, new), v.bias)
            rows[name].append(figures(y, q, *gated(q, report.gate)))
        for g in negative_gates:
            rows[f"negative_gate_{g}"].append(figures(y, biased, *gated(biased, report.gate, g)))
        priors[f.source] = {
            "calibration": prior.round(3).tolist(),
            "true": class_mix(f.y).round(3).tolist(),
            "em_sample": est.round(3).tolist(),
            "em_window": win.round(3).tolist(),
        }
    means = {k: {m: round(float(np.mean([r[m] for r in rs])), 3) for m in SHOWN} for k, rs in rows.items()}
    return {
        "variant": variant,
        "gate": report.gate,
        "window": window,
        "decisions_agree_with_stored": round(float(np.mean(agree)), 4),
        "fold_average": means,
        "priors": priors,
        "per_fold": {
            k: {f.source: {m: round(r[m], 3) for m in SHOWN} for f, r in zip(report.folds, rs, strict=True)}
            for k, rs in rows.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--report", type=Path, default=Path("reports/model/loso/quick/loso.json"))
    p.add_argument("--variant", default="tuned_bias", help="whose decision bias the replay keeps")
    p.add_argument("--window", type=int, default=300, help="reviews a live replica would estimate the mix from")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument(
        "--negative-gates",
        type=float,
        nargs="*",
        default=[0.7, 0.8, 0.9],
        help="also replay a stricter confidence gate for negative answers only (no prior shift)",
    )
    p.add_argument("--out", type=Path, help="default: prior_shift_probe.json beside the report")
    args = p.parse_args(argv)
    out = probe(
        LosoReport.model_validate_json(args.report.read_text()),
        args.variant,
        args.window,
        args.seed,
        args.negative_gates,
    )
    path = args.out or args.report.parent / "prior_shift_probe.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"argmax + gate agree with the stored chain decisions on {out['decisions_agree_with_stored']:.2%}")
    print("| run | " + " | ".join(SHOWN) + " |")
    for name, m in out["fold_average"].items():
        print(f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in SHOWN) + " |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
