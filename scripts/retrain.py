"""Retrain on the base data plus the operators' labels and register the result as ``challenger``:
``python -m scripts.retrain --profile quick`` (console script ``sentiment-retrain``).

``--when-drifted REPORT.json`` retrains only when that drift report (``sentiment-drift``'s JSON) says drifted,
overall or on the low-confidence signal, or its estimated performance dropped (``performance_drop``); either way
it exits 0 and its last line is JSON with the decision.
Then ``sentiment-models gate`` decides whether the challenger replaces the champion.

``--recalibrate`` adapts the champion to the product line without training: its temperature and class bias refitted
on the operators' labels (seconds), registered as a new version and set as challenger (:mod:`training.adaptation`).
``--from champion`` continues training the champion on the labels mixed with a replay sample of the base data
(lower learning rate, early stop on product-line labels, recalibrated; ``--train-budget-s``, default 300 s).
``--auto`` chooses by label count (nothing, recalibrate, or continue from the champion) and prints why.
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
from sentiment.settings import Settings


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
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--recalibrate",
        action="store_true",
        help="refit the champion's calibration on the labels (no training, seconds) and register it as challenger",
    )
    how.add_argument(
        "--from",
        dest="from_",
        choices=["champion"],
        help="continue training the champion on the labels plus a replay sample of the base data",
    )
    how.add_argument("--auto", action="store_true", help="choose by label count and say why")
    return p.parse_args(argv)


def adapt(args: argparse.Namespace, command: str) -> int:
    """``--recalibrate``, ``--from champion`` or ``--auto``: the exit status."""
    from sentiment.settings import load_settings
    from training.adaptation import AdaptError, plan_for, recalibrate

    settings = load_settings()
    chosen, _ = plan_for(settings)
    if args.auto:
        print(f"--auto: {chosen.path}: {chosen.why}")
        if chosen.path == "none":
            print(json.dumps({"decision": "skip", **chosen.model_dump(mode="json")}))
            return 0
    if args.from_ == "champion" or (args.auto and chosen.path == "fine_tune"):
        return continue_champion(args, settings, command)
    try:
        result = recalibrate(settings, command=command)
    except AdaptError as exc:
        print(f"cannot recalibrate: {exc}", file=sys.stderr)
        return 2
    a = result.adaptation
    print(
        json.dumps(
            {
                "decision": "recalibrated",
                "tag": result.tag,
                "alias": result.alias,
                "champion": result.champion,
                "labels": a.labels,
                "held_out": a.held_out,
                "seconds": a.seconds,
                "nll_before": round(a.nll_before, 4),
                "nll_after": round(a.nll_after, 4),
            }
        )
    )
    return 0


def continue_champion(args: argparse.Namespace, settings: Settings, command: str) -> int:
    from training.adapt_fine_tune import fine_tune_from_champion
    from training.adaptation import AdaptError
    from training.chain_view import chain_view

    logging.getLogger("transformers").setLevel(logging.ERROR)
    out = (args.output_dir or settings.paths.reports_dir / "retrain") / "from-champion"
    try:
        result = fine_tune_from_champion(
            settings, chain_view, out, budget_s=args.train_budget_s or 300.0, command=command
        )
    except AdaptError as exc:
        print(f"cannot continue from the champion: {exc}", file=sys.stderr)
        return 2
    a = result.adaptation
    summary = {"decision": "fine_tuned", "tag": result.tag, "alias": result.alias, "champion": result.champion}
    keep = ("labels", "early_stop_labels", "held_out", "replay", "steps", "stopped", "seconds")
    print(json.dumps(summary | a.model_dump(include=set(keep)) | {"report_dir": str(out)}))
    return 0


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

    if args.recalibrate or args.auto or args.from_:
        return adapt(args, shlex.join(["sentiment-retrain", *argv]))

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
