"""How the fine-tune's calibration decides what an adapted model answers: stored ``evaluate_finetune`` runs
re-scored with the same fine-tuned weights under each calibration policy.

``python -m experiments.probe_finetune_calibration RUN_DIR...`` with ``BENTOML_HOME`` at the fold's store. Each run dir
is an ``experiments.evaluate_finetune --out`` folder (its ``finetune_*.json`` and its ``data/`` dir with the labels and
the sample). The fine-tune's splits are rebuilt by the command's own function
(:func:`training.adapt_fine_tune.fine_tune_splits`, checked against the counts the run recorded), the challenger's
logits are taken on its early-stop split, on the never-labelled rest of the line and on the frozen base split, and
each policy calibrates them:

- ``as_run``: the temperature and class bias the run stored (the refit as it was made then);
- ``champion``: the champion's calibration, no refit;
- ``free``: the refit with no prior (what ``as_run`` was, recomputed: a check on the rebuild);
- ``prior_<sd>``: the MAP refit towards the champion's calibration with that prior width.

The champion's decision bias is added in every case, as the fine-tune serves it. Figures as ``evaluate_finetune``
reads them (argmax macro-F1 on the rest and on the base split, ``ok`` negative precision with the confidence gate).
Appends one JSON line per run to ``--out`` (default ``reports/adaptation/finetune_calibration.jsonl``), then
summarises the whole file per label budget and policy (fold means: the gain on the rest of the line, the loss on
the base split, how many folds lose more than the gate's 0.01 there) into ``<out>.summary.json`` and a plot
``<out>.png``. With no run dirs it only summarises.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from experiments.evaluate_adaptation import decide
from experiments.evaluate_finetune import replay_stream, review_index, stored_run
from sentiment.contract import LABELS
from sentiment.jsonl import iter_records
from sentiment.model.inference import SentimentModel, calibrated_probs
from sentiment.model.registry import resolve
from training.adapt_fine_tune import champion_calibration, fine_tune_splits
from training.adaptation import start
from training.calibrate import calibrate
from training.decision import macro_f1
from training.loso import figures

PRIOR_SDS = (0.25, 0.5, 1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="*", help="evaluate_finetune --out folders of one fold (one store)")
    p.add_argument("--out", type=Path, default=Path("reports/adaptation/finetune_calibration.jsonl"))
    return p.parse_args(argv)


def rescore(run_dir: Path) -> dict[str, Any]:
    recorded, settings = stored_run(run_dir)
    begun = start(settings, "re-score")
    _, meta, full = resolve(recorded["champion"])
    splits = fine_tune_splits(settings, begun, meta, full)
    ft = recorded["fine_tune"]
    rebuilt = {"labels": len(splits.train_labels), "early_stop_labels": len(splits.stop), "replay": len(splits.replay)}
    if any(ft[k] != v for k, v in rebuilt.items()):
        raise SystemExit(f"{run_dir}: rebuilt splits {rebuilt} differ from the run's {ft}")

    args = recorded["settings"]
    rows = replay_stream(Path(args["source"]), int(args["stream"]), settings.gates, np.random.default_rng(args["seed"]))
    labelled = {review_index(rec["request_id"]) for rec in iter_records(settings.paths.labelling_sample)}
    rest = [r for i, r in enumerate(rows) if i not in labelled]
    if len(rest) != recorded["rest"]["reviews"]:
        raise SystemExit(f"{run_dir}: rebuilt rest has {len(rest)} reviews, the run had {recorded['rest']['reviews']}")

    adapted = SentimentModel.from_store(recorded["challenger"], num_threads=settings.model.scoring_threads)
    ds = splits.dataset
    sets = {"val": ds.val, "rest": rest, "base": ds.test}
    logits = {k: adapted.logits([r.text for r in v])[0] for k, v in sets.items()}
    y = {k: np.array([r.y for r in v]) for k, v in sets.items()}
    decision = np.array(meta.decision_bias)
    centre = champion_calibration(meta, sd=1.0)  # the width plays no part in using it as it is
    own = adapted.metadata
    policies: dict[str, tuple[float, np.ndarray]] = {
        "as_run": (own.temperature, np.array(own.class_bias)),
        "champion": (centre.temperature, np.array(centre.class_bias) + decision),
    }
    priors = [("free", None)] + [(f"prior_{sd:g}", champion_calibration(meta, sd)) for sd in PRIOR_SDS]
    for name, prior in priors:
        cal = calibrate(logits["val"], y["val"], prior=prior)
        policies[name] = (cal.temperature, np.array(cal.class_bias) + decision)
    gate = settings.gates.confidence_gate
    out: dict[str, dict[str, Any]] = {}
    for name, (t, b) in policies.items():
        probs = calibrated_probs(logits["rest"], t, b)
        on_rest = figures(y["rest"], probs, *decide(probs, gate))
        base_pred = calibrated_probs(logits["base"], t, b).argmax(1)
        out[name] = {
            "temperature": round(float(t), 4),
            "class_bias": [round(float(v), 4) for v in b],
            "rest_macro_f1": round(on_rest["macro_f1"], 4),
            "rest_ok_negative_precision": round(on_rest["ok_negative_precision"], 4),
            "rest_ok_negative_recall": round(on_rest["ok_negative_recall"], 4),
            "base_macro_f1": round(macro_f1(y["base"], base_pred), 4),
        }
    champion_rest = recorded["on_rest"]["champion"]["macro_f1"]["mean"]
    champion_base = recorded["base_macro_f1"]["champion"]
    return {
        "run": str(run_dir),
        "source": recorded["source"],
        "cap": int(args["labels"]),
        "labels_sampled": recorded["sample"]["labels"],
        **rebuilt,
        "val": {
            "reviews": len(ds.val),
            "classes": dict(zip(LABELS, np.bincount(y["val"], minlength=3).tolist(), strict=True)),
        },
        "champion": {"rest_macro_f1": champion_rest, "base_macro_f1": round(champion_base, 4)},
        "recorded_challenger": {
            "rest_macro_f1": recorded["on_rest"]["challenger"]["macro_f1"]["mean"],
            "base_macro_f1": round(recorded["base_macro_f1"]["challenger"], 4),
        },
        "policies": out,
    }


def summarise(rows: list[dict[str, Any]], tolerance: float = 0.01) -> dict[int, dict[str, dict[str, float]]]:
    """Per label budget and policy, fold means of the change on the rest of the line and of the base split's loss."""
    out: dict[int, dict[str, dict[str, float]]] = {}
    for cap in sorted({r["cap"] for r in rows}):
        mine = [r for r in rows if r["cap"] == cap]
        out[cap] = {}
        for policy in mine[0]["policies"]:
            gain = [r["policies"][policy]["rest_macro_f1"] - r["champion"]["rest_macro_f1"] for r in mine]
            loss = [r["champion"]["base_macro_f1"] - r["policies"][policy]["base_macro_f1"] for r in mine]
            out[cap][policy] = {
                "folds": len(mine),
                "rest_gain_mean": round(sum(gain) / len(gain), 4),
                "rest_gain_min": round(min(gain), 4),
                "base_loss_mean": round(sum(loss) / len(loss), 4),
                "base_loss_max": round(max(loss), 4),
                "folds_base_loss_over_tolerance": sum(x > tolerance for x in loss),
            }
    return out


def plot(summary: dict[int, dict[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    caps = list(summary)
    policies = [p for p in summary[caps[0]] if p != "free"]  # ``free`` recomputes ``as_run``
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(policies)
    for j, policy in enumerate(policies):
        xs = [i + (j - (len(policies) - 1) / 2) * width for i in range(len(caps))]
        for ax, key in zip(axes, ("rest_gain_mean", "base_loss_mean"), strict=True):
            ax.bar(xs, [summary[c][policy][key] for c in caps], width, label=policy)
    for ax, title in zip(
        axes,
        ("macro-F1 change on the never-labelled rest of the line", "macro-F1 lost on the frozen base split"),
        strict=True,
    ):
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(caps)), [f"daily cap {c} ({summary[c][policies[0]]['folds']} folds)" for c in caps])
        ax.set_title(title, fontsize=9)
    axes[1].axhline(0.01, color="grey", ls="--", lw=0.8, label="gate tolerance")
    axes[0].legend(fontsize=7)
    fig.suptitle("The same fine-tuned weights under each calibration (fold means)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for run_dir in args.runs:
        row = rescore(run_dir)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        pol = row["policies"]
        print(
            f"{row['source']} cap {row['cap']}: champion rest {row['champion']['rest_macro_f1']:.3f} base "
            f"{row['champion']['base_macro_f1']:.3f}; "
            + "; ".join(f"{k} {v['rest_macro_f1']:.3f}/{v['base_macro_f1']:.3f}" for k, v in pol.items()),
            flush=True,
        )
    rows = [json.loads(line) for line in args.out.read_text().splitlines()]
    summary = summarise(rows)
    args.out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1))
    plot(summary, args.out.with_suffix(".png"))
    for cap, policies in summary.items():
        for policy, m in policies.items():
            print(
                f"cap {cap} {policy:<11} rest {m['rest_gain_mean']:+.3f} (worst {m['rest_gain_min']:+.3f}), base loss "
                f"{m['base_loss_mean']:+.3f} (max {m['base_loss_max']:+.3f}, {m['folds_base_loss_over_tolerance']} "
                f"of {m['folds']} folds over 0.01)"
            )
    print(f"-> {args.out.with_suffix('.summary.json')}, {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
