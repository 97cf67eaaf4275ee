"""Retrain on the base data plus the operators' labels and register the result as ``challenger``:
``python -m scripts.retrain --profile quick`` (console script ``sentiment-retrain``).

``--when-drifted REPORT.json`` retrains only when that drift report (``sentiment-drift``'s JSON) says drifted,
overall or on the low-confidence signal, or its estimated performance dropped (``performance_drop``); either way
it exits 0 and its last line is JSON with the decision.
Then ``sentiment-models gate`` decides whether the challenger replaces the champion.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from pydantic import BaseModel, ValidationError

from drift.report import DriftReport
from scripts.train import make_train_config, training_arguments


class DriftDecision(BaseModel):
    """Whether a drift report calls for retraining, and why (printed as a JSON line)."""

    decision: str  # "retrain" | "skip"
    reason: str
    report: str
    drifted_signals: list[str]
    generated_at: str
    performance_drop: bool = False


def drift_decision(path: Path) -> DriftDecision:
    """Retrain when the report's overall verdict is drift, its low-confidence signal fired on its own, or the
    estimated macro-F1 dropped (``performance_drop``: the answers likely got worse, whatever the inputs did)."""
    report = DriftReport.model_validate_json(path.read_text(encoding="utf-8"))
    low = report.signals.get("low_confidence")
    low_fired = low is not None and low.drifted
    dropped = report.performance is not None and report.performance.performance_drop
    reasons = []
    if report.drift_detected:
        reasons.append(f"drift detected in {', '.join(report.drifted_signals) or 'the overall verdict'}")
    elif low_fired:
        reasons.append("the low-confidence share grew past its threshold")
    if dropped and report.performance is not None:
        reasons.append(f"performance_drop: {report.performance.detail}")
    reason = "; ".join(reasons) or "no drift: every signal is within its threshold and no performance drop"
    return DriftDecision(
        decision="retrain" if report.drift_detected or low_fired or dropped else "skip",
        performance_drop=dropped,
        reason=reason,
        report=str(path),
        drifted_signals=report.drifted_signals,
        generated_at=report.generated_at,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="sentiment-retrain",
        description=__doc__,
        parents=[training_arguments()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--when-drifted",
        type=Path,
        metavar="REPORT.json",
        help="retrain only if this drift report says drifted (overall, or low confidence) or performance_drop",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    drift: dict[str, object] = {}
    if args.when_drifted is not None:
        try:
            decision = drift_decision(args.when_drifted)
        except (OSError, ValidationError) as exc:
            print(f"cannot read the drift report {args.when_drifted}: {exc}", file=sys.stderr)
            return 2
        print(f"{decision.decision}: {decision.reason} ({decision.report}, generated {decision.generated_at})")
        if decision.decision == "skip":
            print(json.dumps(decision.model_dump(mode="json")))
            return 0
        drift = {"drift": decision.model_dump(mode="json")}

    from sentiment.settings import load_settings
    from training.chain_view import chain_view
    from training.retrain import retrain

    logging.getLogger("transformers").setLevel(logging.ERROR)
    settings = load_settings()
    cfg = make_train_config(args, settings)
    out = (args.output_dir or settings.paths.reports_dir / "retrain") / args.profile
    print(f"profile {cfg.profile}: base {cfg.base_model}, device {cfg.device}, reports -> {out}")
    result, _ = retrain(cfg, out, settings, chain_view, command=shlex.join(["sentiment-retrain", *argv]))
    summary = result.model_dump(mode="json", include={"tag", "alias", "champion", "test_macro_f1", "report_dir"})
    print(
        json.dumps(
            {
                "decision": "retrained",
                **summary,
                "human_train": result.data.human_train,
                "human_holdout": result.data.human_holdout,
                "conflicts": result.data.human_labels.conflicts,
                **drift,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
