"""The learning curve of the adaptation loop on unseen product lines: how many operator labels it takes, and how far
recalibration gets. ``python -m experiments.evaluate_adaptation`` (seconds; no training).

For each leave-one-source-out fold of a stored run (``reports/model/loso/quick/loso.json``: the held-out product
line's labels and the fold model's calibrated probabilities, plus its validation split, which stands in for the
frozen base set), the product line is replayed as a stream in a random order, several times:
1. the labelling sample picks N labels (:func:`fallback.label_sample.choose`, the served function): every answer whose
   top-two margin is under a limit, and a random share of the rest, until the cap N. The limit and the share are
   set so that about ``--random-fraction`` of the N picks are random. A second policy, ``random``, picks N at random.
2. the labels split as retraining splits them: ``lifecycle.human_holdout_share`` held out for the gate;
3. the recalibration path (:func:`training.adaptation.refit`, the served fit) adapts the champion on the rest;
4. the promotion gate's product-line checks (:func:`training.promotion.product_line_checks`, same statistics and
   settings) judge it on the held-out labels and the base split; a refused challenger leaves the champion serving.
Figures are measured on the reviews of the line that were never labelled, with the chain's decisions read as
argmax plus the confidence gate (as ``experiments.probe_prior_shift``); the champion is each fold's model as the
quick profile serves it today (calibration plus its decision bias: the stored ``tuned_bias`` variant). 95% intervals:
reviews resampled within each fold and replay, folds and replays averaged.

Writes ``adaptation.json`` and ``adaptation.png`` to ``--out`` (default ``reports/adaptation``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fallback.label_sample import choose, margin
from sentiment.contract import LABELS
from sentiment.settings import LabellingSettings, LifecycleSettings
from training.adaptation import apply, refit
from training.decision import macro_f1, shift
from training.loso import FoldResult, LosoReport, figures
from training.promotion import paired_bootstrap, product_line_checks, score

BUDGETS = (0, 50, 100, 200, 400)
# On the same unlabelled reviews: the champion unadapted, the recalibrated version, and what serves after the gate.
KINDS = ("champion", "adapted", "gated")
SHOWN = (
    "macro_f1",
    "ok_negative_precision",
    "ok_negative_recall",
    "neutral_precision",
    "neutral_recall",
    "coverage",
)
# Issue 22's targets at 200 labels (fold means): figure -> (comparison, threshold); macro_f1 is relative.
TARGETS = {
    "macro_f1_gain": (">=", 0.08),
    "ok_negative_precision": (">=", 0.75),
    "ok_negative_recall": (">=", 0.80),
    "neutral_precision": (">=", 0.50),
    "neutral_recall": (">=", 0.50),
    "base_macro_f1_loss": ("<=", 0.01),
}


def product_settings(n_stream: int, budget: int, random_fraction: float, margins: np.ndarray) -> LabellingSettings:
    """The margin limit and random share an operator would set so that a cap of ``budget`` fills with about
    ``random_fraction`` random picks on this stream."""
    share = random_fraction * budget / n_stream
    q = (1 - random_fraction) * budget / n_stream / max(1 - share, 1e-9)
    limit = float(np.quantile(margins, min(q, 1.0))) if q > 0 else 0.0
    return LabellingSettings(max_margin=limit, random_share=min(share, 1.0), daily_cap=budget)


def pick(served: np.ndarray, budget: int, policy: str, random_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the reviews labelled, in stream order."""
    order = rng.permutation(len(served))
    if budget == 0:
        return np.array([], dtype=int)
    if policy == "random":
        return order[:budget]
    m = np.array([margin(p) for p in served[order]])
    cfg = product_settings(len(order), budget, random_fraction, m)
    picks = choose(m.tolist(), cfg, rng.random(len(order)).tolist())
    return order[[i for i, _ in picks]]


def replay(
    fold: FoldResult,
    served: np.ndarray,
    val_served: np.ndarray | None,
    budget: int,
    policy: str,
    args: argparse.Namespace,
    lifecycle: LifecycleSettings,
    gate: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """One replay of one fold at one budget: the picks, the adapted probabilities, the gate's verdict."""
    y = np.array(fold.y)
    labelled = pick(served, budget, policy, args.random_fraction, rng)
    held = labelled[rng.random(len(labelled)) < lifecycle.human_holdout_share]
    fitted = np.setdiff1d(labelled, held)
    rest = np.setdiff1d(np.arange(len(y)), labelled)
    out: dict[str, Any] = {"rest": rest, "adapted": served, "gated": served, "passed": False, "fit_s": 0.0}
    out |= {"val_adapted": val_served, "n_fit": len(fitted), "n_held": len(held), "verdict": "no labels"}
    if len(fitted) < lifecycle.adapt_min_labels:
        out["verdict"] = "too few labels to adapt"
        return out
    t0 = time.perf_counter()
    r = refit(served[fitted], y[fitted], gate, args.min_coverage)
    out["fit_s"] = time.perf_counter() - t0
    adapted = apply(served, r)
    val_adapted = apply(val_served, r) if val_served is not None else None
    # The gate, as training.promotion runs it: held-out labels ("human") and the base split.
    val_y = np.array(fold.val_y)
    y_gate = np.concatenate([y[held], val_y if val_served is not None else []]).astype(int)
    parts = np.array(["human"] * len(held) + (["base"] * len(val_y) if val_served is not None else []))
    champ_p = np.concatenate([served[held], *([val_served] if val_served is not None else [])])
    chall_p = np.concatenate([adapted[held], *([val_adapted] if val_adapted is not None else [])])
    champ, chall = score("champion", champ_p, y_gate, parts, gate), score("challenger", chall_p, y_gate, parts, gate)
    human = parts == "human"
    boot, _ = paired_bootstrap(
        y_gate[human],
        champ_p[human].argmax(1),
        chall_p[human].argmax(1),
        lifecycle.bootstrap_resamples,
        lifecycle.bootstrap_seed,
        lifecycle.alpha,
    )
    found = product_line_checks(champ, chall, boot, lifecycle)
    passed = all(c.passed for c in found)
    failed = [c.name for c in found if not c.passed]
    verdict = "promoted" if passed else ("not enough evidence" if failed == ["evidence"] else "refused")
    out |= {"adapted": adapted, "val_adapted": val_adapted, "passed": passed, "verdict": verdict}
    out["gated"] = adapted if passed else served
    return out


def decide(p: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:
    pred = p.argmax(1)
    return pred, np.where(p.max(1) >= gate, pred, -1)


def evaluate(report: LosoReport, args: argparse.Namespace) -> dict[str, Any]:
    lifecycle = LifecycleSettings(bootstrap_resamples=args.gate_resamples)
    gate = report.gate
    rng = np.random.default_rng(args.seed)
    curves: dict[str, dict[str, dict[str, Any]]] = {}
    per_fold: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    fit_seconds: list[float] = []
    for policy in args.policies:
        for budget in args.budgets:
            key = f"{policy}:{budget}"
            runs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in KINDS}
            base: dict[str, list[float]] = {"champion": [], "adapted": [], "gated": []}
            verdicts: list[str] = []
            folds: dict[str, dict[str, dict[str, float]]] = {}
            for f in report.folds:
                bias = f.variants[args.variant].bias
                served = shift(np.array(f.probs), bias)
                val_served = shift(np.array(f.val_probs), bias) if f.val_y else None
                y = np.array(f.y)
                fold_rows: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
                for _ in range(args.replays if budget else 1):
                    r = replay(f, served, val_served, budget, policy, args, lifecycle, gate, rng)
                    verdicts.append(r["verdict"])
                    fit_seconds.append(r["fit_s"])
                    rest = r["rest"]
                    r["champion"] = served
                    for kind in KINDS:
                        runs[kind].append((y[rest], r[kind][rest]))
                        fold_rows[kind].append(figures(y[rest], r[kind][rest], *decide(r[kind][rest], gate)))
                    if val_served is not None:
                        vy = np.array(f.val_y)
                        base["champion"].append(macro_f1(vy, val_served.argmax(1)))
                        ra = r["val_adapted"]
                        base["adapted"].append(macro_f1(vy, ra.argmax(1)))
                        base["gated"].append(macro_f1(vy, (ra if r["passed"] else val_served).argmax(1)))
                folds[f.source] = {
                    kind: {k: round(float(np.mean([row[k] for row in rows])), 4) for k in SHOWN}
                    for kind, rows in fold_rows.items()
                }
            curves[key] = {kind: intervals(runs[kind], gate, args.bootstrap, rng) for kind in KINDS}
            curves[key]["base_macro_f1"] = {k: round(float(np.mean(v)), 4) for k, v in base.items()}
            curves[key]["gate_verdicts"] = {v: verdicts.count(v) for v in sorted(set(verdicts))}
            per_fold[key] = folds
            c, g = curves[key]["champion"]["macro_f1"], curves[key]["gated"]["macro_f1"]
            print(
                f"{policy:>7} {budget:>4} labels, on the unlabelled rest: macro-F1 unadapted {c['mean']:.3f}, adapted "
                f"{curves[key]['adapted']['macro_f1']['mean']:.3f}, after the gate {g['mean']:.3f} "
                f"[{g['lo']:.3f}, {g['hi']:.3f}]; gate {curves[key]['gate_verdicts']}"
            )
    return {
        "report": str(args.report),
        "variant": args.variant,
        "confidence_gate": gate,
        "folds": [f.source for f in report.folds],
        "base_folds": [f.source for f in report.folds if f.val_y],
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "lifecycle": lifecycle.model_dump(mode="json"),
        "fit_seconds_max": round(max(fit_seconds), 4),
        "curves": curves,
        "per_fold": per_fold,
        "targets_at_200": targets(curves, args.policies, per_fold),
    }


def intervals(
    runs: list[tuple[np.ndarray, np.ndarray]], gate: float, n_boot: int, rng: np.random.Generator
) -> dict[str, dict[str, float]]:
    """Fold mean of each figure (replays averaged within a fold) with a percentile 95% interval."""
    rows = [figures(y, p, *decide(p, gate)) for y, p in runs]
    boots = np.zeros((n_boot, len(SHOWN)))
    for b in range(n_boot):
        vals = []
        for y, p in runs:
            i = rng.integers(0, len(y), len(y))
            f = figures(y[i], p[i], *decide(p[i], gate))
            vals.append([f[k] for k in SHOWN])
        boots[b] = np.mean(vals, axis=0)
    out = {}
    for j, k in enumerate(SHOWN):
        lo, hi = np.percentile(boots[:, j], [2.5, 97.5])
        out[k] = {"mean": round(float(np.mean([r[k] for r in rows])), 4), "lo": round(float(lo), 4)}
        out[k]["hi"] = round(float(hi), 4)
    return out


def worse_folds(per_fold: dict[str, dict[str, dict[str, dict[str, float]]]], policy: str) -> dict[str, list[str]]:
    """Per budget, the folds whose served model after the gate has a lower macro-F1 than the unadapted champion on
    the same unlabelled reviews (replays averaged)."""
    out = {}
    for key, folds in per_fold.items():
        if key.startswith(f"{policy}:"):
            out[key.split(":")[1]] = [s for s, f in folds.items() if f["gated"]["macro_f1"] < f["champion"]["macro_f1"]]
    return out


def targets(
    curves: dict[str, dict[str, Any]], policies: list[str], per_fold: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    out = {}
    for policy in policies:
        if f"{policy}:200" not in curves:
            continue
        at = curves[f"{policy}:200"]
        got = {k: at["gated"][k]["mean"] for k in SHOWN if k in TARGETS}
        # against the unadapted champion on the same unlabelled reviews (the labelled ones differ by policy)
        got["macro_f1_gain"] = round(at["gated"]["macro_f1"]["mean"] - at["champion"]["macro_f1"]["mean"], 4)
        b = at["base_macro_f1"]
        got["base_macro_f1_loss"] = round(b["champion"] - b["gated"], 4) if b else 0.0
        met = {k: (got[k] >= t if op == ">=" else got[k] <= t) for k, (op, t) in TARGETS.items()}
        out[policy] = {"figures": got, "met": met, "folds_worse_after_the_gate": worse_folds(per_fold, policy)}
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = result["settings"]["budgets"]
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    panels = [*SHOWN, "base_macro_f1", "gate"]
    colors = {"product": "tab:blue", "random": "tab:orange"}
    for ax, name in zip(axes.ravel(), panels, strict=True):
        for policy in result["settings"]["policies"]:
            c = [result["curves"][f"{policy}:{n}"] for n in budgets]
            if name == "base_macro_f1":
                ax.plot(budgets, [x["base_macro_f1"]["gated"] for x in c], "o-", color=colors[policy], label=policy)
                ax.plot(budgets, [x["base_macro_f1"]["adapted"] for x in c], "x--", color=colors[policy], alpha=0.6)
                ax.set_title(f"base split macro-F1 ({len(result['base_folds'])} folds)")
                continue
            if name == "gate":
                promoted = [x["gate_verdicts"].get("promoted", 0) / max(sum(x["gate_verdicts"].values()), 1) for x in c]
                ax.plot(budgets, promoted, "o-", color=colors[policy], label=policy)
                ax.set(title="share of replays the gate promotes", ylim=(0, 1))
                continue
            mean = [x["gated"][name]["mean"] for x in c]
            ax.fill_between(
                budgets,
                [x["gated"][name]["lo"] for x in c],
                [x["gated"][name]["hi"] for x in c],
                color=colors[policy],
                alpha=0.15,
            )
            ax.plot(budgets, mean, "o-", color=colors[policy], label=f"{policy}, after the gate")
            ax.plot(budgets, [x["adapted"][name]["mean"] for x in c], "x--", color=colors[policy], alpha=0.6)
            ax.plot(budgets, [x["champion"][name]["mean"] for x in c], ":", color=colors[policy], alpha=0.8)
            ax.set_title(name.replace("_", " ") + " (never-labelled reviews)")
        target = {"macro_f1": None, "ok_negative_precision": 0.75, "ok_negative_recall": 0.80}
        target |= {"neutral_precision": 0.5, "neutral_recall": 0.5}
        if target.get(name) is not None:
            ax.axhline(target[name], color="red", lw=1, ls="--", label="target")
        if name == "macro_f1":
            zero = result["curves"][f"{result['settings']['policies'][0]}:0"]["champion"]["macro_f1"]["mean"]
            ax.axhline(zero + 0.08, color="red", lw=1, ls="--", label="target (+0.08 over 0 labels)")
        ax.set_xlabel("labels from the product line")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Recalibration on operator labels, {len(result['folds'])} LOSO folds (quick profile), "
        f"{result['settings']['replays']} replays each. Solid: what serves after the gate (95% interval); "
        "dashed: the recalibrated version; dotted: unadapted, same reviews"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--report", type=Path, default=Path("reports/model/loso/quick/loso.json"))
    p.add_argument("--variant", default="tuned_bias", help="the stored variant that is the champion as served")
    p.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    p.add_argument("--policies", nargs="+", default=["product", "random"], choices=["product", "random"])
    p.add_argument("--random-fraction", type=float, default=0.2, help="share of the product's picks drawn at random")
    p.add_argument("--min-coverage", type=float, default=0.8, help="the decision-bias search keeps this coverage")
    p.add_argument("--replays", type=int, default=5, help="stream orders per fold and budget")
    p.add_argument("--bootstrap", type=int, default=100)
    p.add_argument("--gate-resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("reports/adaptation"))
    args = p.parse_args(argv)
    t0 = time.monotonic()
    result = evaluate(LosoReport.model_validate_json(args.report.read_text()), args)
    result["seconds"] = round(time.monotonic() - t0, 1)
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    result["commit"] = result["commit"].strip()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "adaptation.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, args.out / "adaptation.png")
    for policy, t in result["targets_at_200"].items():
        print(
            f"targets at 200 labels ({policy}): "
            + ", ".join(f"{k} {v} {'met' if t['met'][k] else 'MISSED'}" for k, v in t["figures"].items())
        )
    print(f"labels order {LABELS}; fit at most {result['fit_seconds_max']}s; wrote {args.out}/adaptation.json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
