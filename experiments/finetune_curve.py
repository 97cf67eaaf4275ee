"""The fine-tune path's learning curve: ``evaluate_finetune`` results at several label budgets on several folds,
gathered into one table and one plot.

    python -m experiments.finetune_curve RESULT.json [RESULT.json ...] --out reports/adaptation/finetune_curve

Each result is one fold at one budget (``python -m experiments.evaluate_finetune --source FILE --labels N``). The
plot has one panel per figure (macro-F1 on the never-labelled rest of the line, ``ok`` negative precision, neutral
recall, the frozen base split's macro-F1): per fold the fine-tuned challenger at the labels actually given, with
its bootstrap 95% interval, and the champion on the same reviews (dashed); the gate's verdict is in the table.
Writes ``<out>.json`` (the rows and their fold means per budget) and ``<out>.png``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

PANELS = (
    ("macro_f1", "macro-F1, rest of the line"),
    ("ok_negative_precision", "ok negative precision, rest of the line"),
    ("neutral_recall", "neutral recall, rest of the line"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path, nargs="+", help="evaluate_finetune JSON files")
    p.add_argument("--out", type=Path, default=Path("reports/adaptation/finetune_curve"))
    return p.parse_args(argv)


def row(result: dict[str, Any]) -> dict[str, Any]:
    """One fold at one budget: what was labelled, the figures before and after, the base split and the verdict."""
    on_rest = result["on_rest"]
    return {
        "fold": result["source"].split(".")[0],
        "cap": result["settings"]["labels"],
        "labels": result["sample"]["labels"],
        "label_classes": result["label_classes"],
        "trained_on": result["fine_tune"]["labels"],
        "wall_s": result["fine_tune"]["wall_s"],
        "champion": {k: on_rest["champion"][k] for k, _ in PANELS},
        "challenger": {k: on_rest["challenger"][k] for k, _ in PANELS},
        "difference": {k: on_rest["difference"][k] for k, _ in PANELS},
        "base_macro_f1": result["base_macro_f1"],
        "verdict": result["gate"]["verdict"],
        "commit": result["commit"],
    }


def by_cap(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Fold means per label budget: the figure the issue's targets are stated in, with how many folds moved."""
    out: dict[int, dict[str, Any]] = {}
    for cap in sorted({r["cap"] for r in rows}):
        mine = [r for r in rows if r["cap"] == cap]
        n = len(mine)
        diff = [r["difference"]["macro_f1"] for r in mine]
        out[cap] = {
            "folds": n,
            "labels_mean": round(sum(r["labels"] for r in mine) / n, 1),
            "champion_macro_f1": round(sum(r["champion"]["macro_f1"]["mean"] for r in mine) / n, 4),
            "fine_tuned_macro_f1": round(sum(r["challenger"]["macro_f1"]["mean"] for r in mine) / n, 4),
            "difference": round(sum(d["mean"] for d in diff) / n, 4),
            "folds_better": sum(d["lo"] > 0 for d in diff),  # the paired interval excludes zero
            "folds_worse": sum(d["hi"] < 0 for d in diff),
            "base_loss_max": max(r["base_macro_f1"]["loss"] for r in mine),
            "base_loss_over_0.01": sum(r["base_macro_f1"]["loss"] > 0.01 for r in mine),
            "verdicts": dict(Counter(r["verdict"] for r in mine)),
        }
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folds = sorted({r["fold"] for r in rows})
    fig, axes = plt.subplots(1, len(PANELS) + 1, figsize=(5 * (len(PANELS) + 1), 4))
    for fold in folds:
        mine = sorted((r for r in rows if r["fold"] == fold), key=lambda r: r["labels"])
        xs = [r["labels"] for r in mine]
        for ax, (key, title) in zip(axes, PANELS, strict=False):
            # the rest of the line shrinks as labels grow, so the champion is scored again at every budget (dashed)
            (line,) = ax.plot(xs, [r["challenger"][key]["mean"] for r in mine], marker="o", label=f"{fold} fine-tuned")
            ax.fill_between(
                xs,
                [r["challenger"][key]["lo"] for r in mine],
                [r["challenger"][key]["hi"] for r in mine],
                alpha=0.15,
                color=line.get_color(),
            )
            ax.plot(xs, [r["champion"][key]["mean"] for r in mine], ls="--", color=line.get_color(), label="champion")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("labels from the line")
        base = axes[-1]
        (line,) = base.plot(xs, [r["base_macro_f1"]["challenger"] for r in mine], marker="o", label=fold)
        base.plot(xs, [r["base_macro_f1"]["champion"] for r in mine], ls="--", color=line.get_color())
        base.set_title("macro-F1, frozen base split (forgetting)", fontsize=9)
        base.set_xlabel("labels from the line")
    axes[0].legend(fontsize=7)
    fig.suptitle("sentiment-retrain --from champion on unseen product lines (dashed: the champion, same reviews)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = sorted((row(json.loads(p.read_text())) for p in args.results), key=lambda r: (r["fold"], r["labels"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = by_cap(rows)
    args.out.with_suffix(".json").write_text(json.dumps({"by_cap": summary, "rows": rows}, indent=1))
    plot(rows, args.out.with_suffix(".png"))
    for r in rows:
        d, c = r["difference"]["macro_f1"], r["champion"]["macro_f1"]
        print(
            f"{r['fold']:<45} {r['labels']:>4} labels {r['label_classes']}: macro-F1 {c['mean']:.3f} -> "
            f"{r['challenger']['macro_f1']['mean']:.3f} ({d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]), "
            f"base loss {r['base_macro_f1']['loss']:+.3f}, {r['wall_s']:.0f}s, gate: {r['verdict']}"
        )
    for cap, m in summary.items():
        print(
            f"cap {cap}: {m['folds']} folds, {m['labels_mean']:.0f} labels, macro-F1 {m['champion_macro_f1']:.3f} -> "
            f"{m['fine_tuned_macro_f1']:.3f} ({m['difference']:+.3f}; better on {m['folds_better']}, worse on "
            f"{m['folds_worse']}), base loss max {m['base_loss_max']:+.3f}, gate {m['verdicts']}"
        )
    print(f"-> {args.out.with_suffix('.json')}, {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
