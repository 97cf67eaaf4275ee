"""The promotion gate of today on stored ``evaluate_finetune`` runs: the same champion, fine-tuned challenger,
labels and labelling sample, judged again (dry run: nothing moves).

``python -m experiments.regate_finetune RUN_DIR...`` with ``BENTOML_HOME`` at the fold's store. Each run dir is an
``experiments.evaluate_finetune --out`` folder (its ``finetune_*.json`` names both versions; its ``data/`` holds the
labels and the sample). Appends one JSON line per run to ``--out``: the verdict the run recorded, the verdict now,
the checks that failed, the product-line difference the gate sees and what its labels are worth in the stream,
beside the difference on the never-labelled rest of the line that the run measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.evaluate_finetune import stored_run
from training.promotion import evaluate, failed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="evaluate_finetune --out folders of one fold (one store)")
    p.add_argument("--out", type=Path, default=Path("reports/adaptation/finetune_regate.jsonl"))
    return p.parse_args(argv)


def verdict(passed: bool, missed: list[str]) -> str:
    return "would promote" if passed else ("not enough evidence" if missed == ["evidence"] else "refused")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for run_dir in args.runs:
        recorded, settings = stored_run(run_dir)
        report, _ = evaluate(recorded["champion"], recorded["challenger"], settings)
        missed = failed(report)
        row = {
            "run": str(run_dir),
            "source": recorded["source"],
            "cap": recorded["settings"]["labels"],
            "rest_difference": recorded["on_rest"]["difference"]["macro_f1"],
            "recorded": {"verdict": recorded["gate"]["verdict"], "failed": recorded["gate"]["failed"]},
            "now": {
                "verdict": verdict(report.passed, missed),
                "failed": missed,
                "held_out": report.evaluation.n_human,
                "effective_n": report.bootstrap.effective_n,
                "difference": round(report.bootstrap.difference, 4),
                "p_value": round(report.bootstrap.p_value, 4),
            },
        }
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        now = row["now"]
        print(
            f"{row['source']} cap {row['cap']}: rest {row['rest_difference']['mean']:+.3f}; recorded "
            f"{row['recorded']['verdict']} {row['recorded']['failed']}; now {now['verdict']} {missed} "
            f"({now['held_out']} held out, worth {now['effective_n']}; {now['difference']:+.3f}, p {now['p_value']})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
