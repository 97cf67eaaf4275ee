"""Estimated against true accuracy and macro-F1 on every leave-one-source-out fold, without training anything.

Each fold's stored run holds the held-out product line's true labels and the served calibrated probabilities of
the fold's model: that is the stream an unseen product line would send (in a fixed random order: the stored one is
by class), scored in windows of 500 and as a whole, by CBPE and ATC (:mod:`sentiment.estimation`). Also:
- in-domain windows: 100 windows of 500 resampled from the fold's labelled validation split (what calibration and
  the ATC threshold were fitted on), to count how often ``performance_drop`` fires where nothing changed;
- a class-mix shift: windows resampled from the held-out stream at its natural mix, then at 50/20/30 (neg/neu/pos);
- ``performance_drop`` per fold against the in-domain reference (the estimate over the validation split);
- the correction: the stream's calibration refitted on 100 (and 300) random labelled answers, the rest estimated by
  CBPE, the labelled ones counted with their label (20 independent samples each, mean error reported);
- whether the fold truly dropped: its true macro-F1 more than the threshold below its stored in-domain test figure;
- NannyML's CBPE on the same probabilities and labels, run in its own environment (``--nannyml-python``) by
  :mod:`experiments.nannyml_anchor`.

    python -m experiments.evaluate_estimation [--report reports/model/loso/quick/loso.json]
        [--nannyml-python /tmp/nanny-venv/bin/python] [--out reports/estimation]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.contract import LABELS
from sentiment.estimation import (
    METHODS,
    AtcThreshold,
    PerformanceEstimate,
    count_windows,
    estimate,
    fit_atc,
    fit_recalibration,
    metrics_of,
    true_confusion,
)
from sentiment.settings import DriftSettings

WINDOW = 500
IN_DOMAIN_WINDOWS = 100
SHIFTED_MIX = (0.5, 0.2, 0.3)
RECAL_LABELS = (100, 300)
RECAL_REPEATS = 20
STREAM_SEED = 23
TARGETS = {"accuracy": 0.02, "macro_f1": 0.03}


def truth(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    m = metrics_of(true_confusion(y, probs.argmax(1)))
    return {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"])}


def figures(e: PerformanceEstimate, true: dict[str, float]) -> dict[str, Any]:
    return {
        "accuracy": round(e.accuracy.value, 4),
        "accuracy_ci": [round(e.accuracy.lo, 4), round(e.accuracy.hi, 4)],
        "macro_f1": round(e.macro_f1.value, 4),
        "macro_f1_ci": [round(e.macro_f1.lo, 4), round(e.macro_f1.hi, 4)],
        "accuracy_error": round(e.accuracy.value - true["accuracy"], 4),
        "macro_f1_error": round(e.macro_f1.value - true["macro_f1"], 4),
        "accuracy_inside": e.accuracy.contains(true["accuracy"]),
        "macro_f1_inside": e.macro_f1.contains(true["macro_f1"]),
    }


def both(probs: np.ndarray, y: np.ndarray, atc: AtcThreshold | None, seed: int = 0) -> dict[str, Any]:
    true = truth(y, probs)
    out: dict[str, Any] = {"n": len(y), "true": {k: round(v, 4) for k, v in true.items()}}
    for method in METHODS:
        if method == "atc" and atc is None:
            out[method] = None
            continue
        out[method] = figures(estimate(probs, method, atc, seed=seed), true)
    return out


def mix_resample(y: np.ndarray, mix: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    counts = rng.multinomial(n, mix)
    return np.concatenate([rng.choice(np.flatnonzero(y == k), c, replace=True) for k, c in enumerate(counts)])


def evaluate_fold(fold: dict[str, Any], drop: float, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    # the stored held-out sample is ordered by class (an artefact of sampling it per class): windows in that order
    # would each hold one class, so the stream is the same answers in a fixed random order
    order = np.random.default_rng(STREAM_SEED).permutation(len(fold["y"]))
    y, probs = np.asarray(fold["y"])[order], np.asarray(fold["probs"], dtype=np.float64)[order]
    val_y, val_probs = np.asarray(fold["val_y"], dtype=np.int64), np.asarray(fold["val_probs"], dtype=np.float64)
    has_val = len(val_y) > 0
    atc = fit_atc(val_probs, val_y) if has_val else None
    out: dict[str, Any] = {"source": fold["source"], "n": len(y), "atc": atc.model_dump() if atc else None}
    out["stream"] = both(probs, y, atc)
    out["windows"] = [both(probs[w], y[w], atc, i) for i, w in enumerate(count_windows(len(y), WINDOW))]

    # the in-domain reference: the estimate over the validation split, or (runs that kept none) its stored truth
    if has_val:
        ref = {m: estimate(val_probs, m, atc).macro_f1.value for m in METHODS}
        out["reference"] = {"from": "validation estimate", **{m: round(v, 4) for m, v in ref.items()}}
        in_domain = []
        for i in range(IN_DOMAIN_WINDOWS):
            idx = rng.choice(len(val_y), WINDOW, replace=True)
            in_domain.append(both(val_probs[idx], val_y[idx], atc, i))
        out["in_domain_windows"] = in_domain
        out["false_drop"] = {
            m: sum(ref[m] - w[m]["macro_f1"] > drop for w in in_domain) / IN_DOMAIN_WINDOWS for m in METHODS
        }
    else:
        ref = {"cbpe": float(fold["in_domain"]["macro_f1"])}
        out["reference"] = {"from": "stored in-domain test macro-F1 (this run kept no validation split)", **ref}
    out["drop"] = {
        m: {
            "stream": bool(ref[m] - out["stream"][m]["macro_f1"] > drop),
            "windows": sum(ref[m] - w[m]["macro_f1"] > drop for w in out["windows"]),
        }
        for m in ref
        if out["stream"][m] is not None
    }

    # class-mix shift: natural windows, then shifted ones, all resampled from the held-out stream
    natural = np.bincount(y, minlength=len(LABELS)) / len(y)
    shifted = []
    for i, mix in enumerate([tuple(natural)] * 3 + [SHIFTED_MIX] * 3):
        idx = mix_resample(y, mix, WINDOW, rng)
        shifted.append({"mix": [round(float(v), 3) for v in mix], **both(probs[idx], y[idx], atc, i)})
    out["mix_shift"] = shifted

    # the correction: refit the calibration on a random sample of labelled answers, estimate the rest; repeated over
    # independent samples, since a few hundred labels make a noisy fit
    true = truth(y, probs)
    out["recalibrated"] = {}
    for k in RECAL_LABELS:
        errors: dict[str, list[float]] = {"accuracy": [], "macro_f1": []}
        for _ in range(RECAL_REPEATS):
            known = rng.choice(len(y), k, replace=False)
            recal = fit_recalibration(probs[known], y[known])
            labels = np.full(len(y), -1)
            labels[known] = y[known]
            e = estimate(recal.apply(probs), "cbpe", labels=labels)  # labelled answers count with their label
            errors["accuracy"].append(e.accuracy.value - true["accuracy"])
            errors["macro_f1"].append(e.macro_f1.value - true["macro_f1"])
        out["recalibrated"][str(k)] = {
            **{f"{key}_error": round(float(np.mean(v)), 4) for key, v in errors.items()},
            **{f"{key}_abs_error": round(float(np.mean(np.abs(v))), 4) for key, v in errors.items()},
        }
    out["true_drop"] = bool(float(fold["in_domain"]["macro_f1"]) - true["macro_f1"] > drop)
    return out


def run_nannyml(python: str, folds: list[dict[str, Any]]) -> dict[str, Any]:
    """NannyML CBPE per fold, in its own environment; an error is kept and reported, never raised."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        payload = []
        for f in folds:
            if not f["val_y"]:
                continue
            order = np.random.default_rng(STREAM_SEED).permutation(len(f["y"]))
            payload.append(
                {
                    "source": f["source"],
                    "y": np.asarray(f["y"])[order].tolist(),
                    "probs": np.asarray(f["probs"])[order].tolist(),
                    "val_y": f["val_y"],
                    "val_probs": f["val_probs"],
                }
            )
        src.write_text(json.dumps({"window": WINDOW, "labels": list(LABELS), "folds": payload}))
        cmd = [python, "-m", "experiments.nannyml_anchor", str(src), str(dst)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout)[-2000:]}
        result: dict[str, Any] = json.loads(dst.read_text())
        return result


def summarise(folds: list[dict[str, Any]], nanny: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for method in METHODS:
        rows = [f for f in folds if f["stream"][method] is not None]
        met = {
            key: [f["source"] for f in rows if abs(f["stream"][method][f"{key}_error"]) <= tol]
            for key, tol in TARGETS.items()
        }
        both_met = [s for s in met["accuracy"] if s in met["macro_f1"]]
        win_err = {
            key: float(np.mean([abs(w[method][f"{key}_error"]) for f in rows for w in f["windows"]])) for key in TARGETS
        }
        inside = {
            key: float(np.mean([w[method][f"{key}_inside"] for f in rows for w in f["windows"]])) for key in TARGETS
        }
        dom = [w for f in rows for w in f.get("in_domain_windows", [])]
        summary[method] = {
            "folds": len(rows),
            "stream_targets_met": {k: len(v) for k, v in met.items()},
            "stream_both_met": len(both_met),
            "stream_missed": sorted({f["source"] for f in rows} - set(both_met)),
            "stream_mean_abs_error": {
                key: float(np.mean([abs(f["stream"][method][f"{key}_error"]) for f in rows])) for key in TARGETS
            },
            "stream_mean_error": {
                key: float(np.mean([f["stream"][method][f"{key}_error"] for f in rows])) for key in TARGETS
            },
            "window_mean_abs_error": win_err,
            "window_truth_inside_interval": inside,
            "in_domain_window_mean_abs_error": {
                key: float(np.mean([abs(w[method][f"{key}_error"]) for w in dom])) if dom else None for key in TARGETS
            },
            "in_domain_false_drop": {f["source"]: f["false_drop"][method] for f in rows if "false_drop" in f},
            "mix_shift_mean_error": {
                label: {
                    key: float(np.mean([w[method][f"{key}_error"] for f in rows for w in f["mix_shift"] if sel(w)]))
                    for key in TARGETS
                }
                for label, sel in (
                    ("natural", lambda w: w["mix"] != list(SHIFTED_MIX)),
                    ("shifted", lambda w: w["mix"] == list(SHIFTED_MIX)),
                )
            },
        }
    lowest = sorted(folds, key=lambda f: f["stream"]["true"]["macro_f1"])[:3]
    summary["lowest_true_macro_f1"] = {
        f["source"]: {
            "true": f["stream"]["true"]["macro_f1"],
            "flagged": {m: d["stream"] for m, d in f["drop"].items()},
        }
        for f in lowest
    }
    summary["flagged"] = {f["source"]: {m: d["stream"] for m, d in f["drop"].items()} for f in folds}
    summary["true_drop"] = {f["source"]: f["true_drop"] for f in folds}
    summary["recalibrated"] = {
        k: {
            "stream_both_met": sum(
                f["recalibrated"][k]["accuracy_abs_error"] <= TARGETS["accuracy"]
                and f["recalibrated"][k]["macro_f1_abs_error"] <= TARGETS["macro_f1"]
                for f in folds
            ),
            "stream_mean_abs_error": {
                key: float(np.mean([f["recalibrated"][k][f"{key}_abs_error"] for f in folds])) for key in TARGETS
            },
            "missed": [
                f["source"]
                for f in folds
                if f["recalibrated"][k]["accuracy_abs_error"] > TARGETS["accuracy"]
                or f["recalibrated"][k]["macro_f1_abs_error"] > TARGETS["macro_f1"]
            ],
        }
        for k in map(str, RECAL_LABELS)
    }
    if "folds" in nanny:
        rows = [f for f in folds if f["source"] in nanny["folds"]]
        summary["nannyml"] = {
            "folds": len(rows),
            "stream_mean_abs_error": {
                key: float(
                    np.mean([abs(nanny["folds"][f["source"]]["stream"][key] - f["stream"]["true"][key]) for f in rows])
                )
                for key in TARGETS
            },
            "window_mean_abs_error": {
                key: float(
                    np.mean(
                        [
                            abs(nw[key] - w["true"][key])
                            for f in rows
                            for nw, w in zip(nanny["folds"][f["source"]]["windows"], f["windows"], strict=False)
                        ]
                    )
                )
                for key in TARGETS
            },
        }
    return summary


def plot(folds: list[dict[str, Any]], nanny: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    x = np.arange(len(folds))
    names = [f["source"].replace("_reviews", "").replace("amazon", "amz")[:22] for f in folds]
    for ax, key in zip(axes, ("accuracy", "macro_f1"), strict=True):
        ax.plot(x, [f["stream"]["true"][key] for f in folds], "ko", ms=9, label="true")
        for method, marker, dx in (("cbpe", "s", -0.15), ("atc", "^", 0.0)):
            pts = [(i, f["stream"][method]) for i, f in enumerate(folds) if f["stream"][method] is not None]
            ax.errorbar(
                [i + dx for i, _ in pts],
                [e[key] for _, e in pts],
                yerr=np.array([[e[key] - e[f"{key}_ci"][0], e[f"{key}_ci"][1] - e[key]] for _, e in pts]).T,
                fmt=marker,
                capsize=3,
                label=f"{method} estimate (95% interval)",
            )
        k = str(RECAL_LABELS[-1])
        ax.plot(
            x + 0.15,
            [f["stream"]["true"][key] + f["recalibrated"][k][f"{key}_error"] for f in folds],
            "x",
            ms=8,
            label=f"cbpe recalibrated on {k} random labels (mean of {RECAL_REPEATS})",
        )
        if "folds" in nanny:
            pts2 = [
                (i, nanny["folds"][f["source"]]["stream"][key])
                for i, f in enumerate(folds)
                if f["source"] in nanny["folds"]
            ]
            ax.plot([i + 0.3 for i, _ in pts2], [v for _, v in pts2], "d", label="NannyML CBPE")
        ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
        ax.set_title(f"{key}: whole held-out stream, estimated vs true")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", type=Path, default=Path("reports/model/loso/quick/loso.json"))
    parser.add_argument("--out", type=Path, default=Path("reports/estimation"))
    parser.add_argument("--nannyml-python", default=None, help="a Python with nannyml installed (its own venv)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    drop = DriftSettings().performance_drop
    started = time.perf_counter()
    report = json.loads(args.report.read_text())
    folds = []
    for i, fold in enumerate(report["folds"]):
        folds.append(evaluate_fold(fold, drop, args.seed + i))
        s = folds[-1]["stream"]
        print(
            f"[{i + 1}/{len(report['folds'])}] {fold['source']}: true acc {s['true']['accuracy']:.3f} "
            f"F1 {s['true']['macro_f1']:.3f} | cbpe {s['cbpe']['accuracy']:.3f} / {s['cbpe']['macro_f1']:.3f}"
            + (f" | atc {s['atc']['accuracy']:.3f} / {s['atc']['macro_f1']:.3f}" if s["atc"] else " | atc n/a"),
            flush=True,
        )
    nanny: dict[str, Any] = {"skipped": "no --nannyml-python given"}
    if args.nannyml_python:
        print("NannyML CBPE ...", flush=True)
        nanny = run_nannyml(args.nannyml_python, report["folds"])
    summary = summarise(folds, nanny)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "source_report": str(args.report),
        "window": WINDOW,
        "drop_threshold": drop,
        "targets": TARGETS,
        "summary": summary,
        "nannyml": nanny,
        "folds": folds,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "estimation.json").write_text(json.dumps(result, indent=1))
    plot(folds, nanny, args.out / "estimation.png")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
