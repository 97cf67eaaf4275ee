"""Could any calibration-level adaptation do better than the one served? A probe on a stored leave-one-source-out
run, beside ``experiments.evaluate_adaptation``; not a serving feature.

Per fold, N labels are drawn at random from the held-out product line (70% fitted on, as retraining keeps 30% for
the gate), and each variant adapts the champion (the fold's model with its decision bias, as the quick profile serves
it); figures on the reviews never labelled, argmax plus the confidence gate, fold means over several draws:
- ``recalibrate``: the served refit (:func:`training.adaptation.refit`): temperature and class bias by NLL, then a
  decision bias tuned on the same labels;
- ``nll_only``: the NLL refit without a decision bias;
- ``nll_keep_decision``: the NLL refit of the calibration under the champion's decision bias, which is kept;
- ``prior`` / ``prior_half``: Saerens prior correction to the labels' class mix (add-one smoothed), in full or half
  way (geometric), the champion's decision bias kept;
- ``decision_only`` / ``decision_half``: only a decision bias tuned on the labels (in full, or halved).

    python -m experiments.probe_adaptation_variants [--report reports/model/loso/quick/loso.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sentiment.model.inference import softmax
from training.adaptation import apply, refit
from training.calibrate import fit
from training.decision import shift, tune_bias
from training.loso import LosoReport, figures

SHOWN = ("macro_f1", "ok_negative_precision", "ok_negative_recall", "neutral_precision", "neutral_recall", "coverage")
Variant = Callable[[np.ndarray, np.ndarray, np.ndarray, list[float], np.ndarray], np.ndarray]


def variants(gate: float, min_coverage: float) -> dict[str, Variant]:
    """Each: (served, fitted labels' indices, labels, champion decision bias, calibration class mix) -> probs."""

    def recalibrate(p: np.ndarray, i: np.ndarray, y: np.ndarray, d: list[float], mix: np.ndarray) -> np.ndarray:
        return apply(p, refit(p[i], y[i], gate, min_coverage))

    def nll_only(p: np.ndarray, i: np.ndarray, y: np.ndarray, d: list[float], mix: np.ndarray) -> np.ndarray:
        return apply(p, refit(p[i], y[i], gate, min_coverage, decision=False))

    def nll_keep_decision(p: np.ndarray, i: np.ndarray, y: np.ndarray, d: list[float], mix: np.ndarray) -> np.ndarray:
        cal = np.log(np.clip(p, 1e-12, None)) - np.asarray(d)
        t, b = fit(cal[i], y[i])
        return shift(softmax(cal / t + np.asarray(b)), d)

    def prior(scale: float) -> Variant:
        def run(p: np.ndarray, i: np.ndarray, y: np.ndarray, d: list[float], mix: np.ndarray) -> np.ndarray:
            target = (np.bincount(y[i], minlength=3) + 1) / (len(i) + 3)
            cal = np.log(np.clip(p, 1e-12, None)) - np.asarray(d)
            return shift(softmax(cal + scale * np.log(target / mix)), d)

        return run

    def decision(scale: float) -> Variant:
        def run(p: np.ndarray, i: np.ndarray, y: np.ndarray, d: list[float], mix: np.ndarray) -> np.ndarray:
            return shift(p, [scale * b for b in tune_bias(p[i], y[i], gate, min_coverage)])

        return run

    return {
        "recalibrate": recalibrate,
        "nll_only": nll_only,
        "nll_keep_decision": nll_keep_decision,
        "prior": prior(1.0),
        "prior_half": prior(0.5),
        "decision_only": decision(1.0),
        "decision_half": decision(0.5),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--report", type=Path, default=Path("reports/model/loso/quick/loso.json"))
    p.add_argument("--variant", default="tuned_bias", help="the stored variant that is the champion as served")
    p.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 200, 400])
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--min-coverage", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("reports/adaptation/variants.json"))
    args = p.parse_args(argv)
    report = LosoReport.model_validate_json(args.report.read_text())
    gate = report.gate
    fns = variants(gate, args.min_coverage)
    mixes = [np.bincount(f.val_y, minlength=3) / len(f.val_y) for f in report.folds if f.val_y]
    rng = np.random.default_rng(args.seed)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for n in args.budgets:
        rows: dict[str, list[dict[str, float]]] = {k: [] for k in ("champion", *fns)}
        for f in report.folds:
            d = f.variants[args.variant].bias
            served, y = shift(np.array(f.probs), d), np.array(f.y)
            mix = np.bincount(f.val_y, minlength=3) / len(f.val_y) if f.val_y else np.mean(mixes, axis=0)
            for _ in range(args.draws):
                order = rng.permutation(len(y))
                fitted, rest = order[: int(n * 0.7)], order[n:]
                for name, probs in (
                    ("champion", served),
                    *((k, fn(served, fitted, y, d, mix)) for k, fn in fns.items()),
                ):
                    q = probs[rest]
                    pred = q.argmax(1)
                    rows[name].append(figures(y[rest], q, pred, np.where(q.max(1) >= gate, pred, -1)))
        table[str(n)] = {k: {m: round(float(np.mean([r[m] for r in v])), 4) for m in SHOWN} for k, v in rows.items()}
        print(f"{n} labels: " + ", ".join(f"{k} {v['macro_f1']:.3f}" for k, v in table[str(n)].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"report": str(args.report), "variant": args.variant, "draws": args.draws, "seed": args.seed, "table": table}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
