"""Train, calibrate, evaluate and register the tier-1 model: ``python scripts/train.py --profile quick``.

Also installed as the console script ``sentiment-train``. ``--if-missing`` makes it a no-op when the store already
has a version of the model, which is what the set-up command uses.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentiment.settings import Settings
    from training.config import TrainConfig


def training_arguments() -> argparse.ArgumentParser:
    """The flags that make a training config (shared with ``scripts/retrain.py``)."""
    from training.config import add_lever_arguments

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--profile", choices=["quick", "full"], default="quick")
    p.add_argument("--data", type=Path, nargs="+", help="review JSONL(.gz) files (default: ../shared/data)")
    p.add_argument("--base-model", help="any HF checkpoint path or hub name (default: offline all-MiniLM-L6-v2)")
    p.add_argument("--device", help="cpu | cuda | cuda:0 ...")
    p.add_argument("--split", choices=["time", "stratified"])
    p.add_argument("--max-train", type=int, help="cap on training reviews (class-balanced); 0 = no cap")
    p.add_argument("--max-val", type=int, help="cap on validation reviews")
    p.add_argument("--max-test-per-source", type=int, help="cap on test reviews per source")
    p.add_argument("--eval-every", type=int, help="optimizer steps between validation checks (0 = per epoch)")
    p.add_argument("--max-length", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    add_lever_arguments(p)
    p.add_argument(
        "--student-of",
        metavar="TAG_OR_PATH",
        help="distil a student from this stored version or checkpoint: it is both the base (its layers "
        "--keep-layers) and the teacher whose softened predictions are the training targets",
    )
    p.add_argument("--keep-layers", type=int, nargs="+", help="encoder layers the student keeps, e.g. 0 2 4")
    p.add_argument("--distill-temperature", type=float, help="softening of the teacher's predictions (default 2)")
    p.add_argument("--threads", type=int, dest="num_threads", help="torch CPU threads")
    p.add_argument("--train-budget-s", type=float, help="stop training after this many seconds (0 = no budget)")
    p.add_argument(
        "--output-dir",
        type=Path,
        help="report folder, the profile name appended (default <reports_dir>/model, retraining "
        "/retrain; the committed reports: --output-dir reports/model)",
    )
    p.add_argument("--name", help="model name in the BentoML store (default from settings)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[training_arguments()]
    )
    p.add_argument("--no-register", action="store_true", help="evaluate only, do not save to the store")
    p.add_argument(
        "--loso-report",
        type=Path,
        help="loso.json of this profile (experiments.evaluate_loso): its summary is stored as metrics.loso",
    )
    p.add_argument(
        "--loso-variant",
        default="served",
        help="which decision variant of --loso-report this model serves (served | band | tuned_bias)",
    )
    p.add_argument("--if-missing", action="store_true", help="do nothing if the store already has this model")
    return p.parse_args(argv)


def make_train_config(args: argparse.Namespace, settings: Settings) -> TrainConfig:
    """Profile defaults, then the flags given."""
    from sentiment.model.registry import resolve
    from training.config import LEVER_FIELDS, make_config

    overrides = {
        k: getattr(args, k)
        for k in (
            "base_model",
            "device",
            "split",
            "max_val",
            "max_test_per_source",
            "eval_every",
            "max_length",
            "batch_size",
            "epochs",
            "lr",
            "seed",
            "num_threads",
            "keep_layers",
            "distill_temperature",
            *LEVER_FIELDS,
        )
    }
    if args.student_of:
        teacher = args.student_of if Path(args.student_of).exists() else str(resolve(args.student_of)[0])
        overrides |= {"base_model": args.base_model or teacher, "teacher": teacher}
    uci = settings.paths.shared_data_dir / "uci_amazon_cells_labelled.jsonl"
    overrides |= {
        "data": args.data,
        "name": args.name or settings.model.name,
        "binary_eval": [uci] if uci.exists() else [],
    }
    cfg = make_config(args.profile, **overrides)
    if args.max_train is not None:
        cfg.max_train = args.max_train or None
    if args.train_budget_s is not None:
        cfg.train_budget_s = args.train_budget_s or None
    return cfg


def _has_model(name: str) -> str | None:
    import bentoml

    try:
        return str(bentoml.models.get(f"{name}:latest").tag)
    except bentoml.exceptions.NotFound:
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from sentiment.settings import load_settings
    from training.chain_view import chain_view
    from training.pipeline import run

    logging.getLogger("transformers").setLevel(logging.ERROR)
    console = Console()
    settings = load_settings()
    name = args.name or settings.model.name
    if args.if_missing and (tag := _has_model(name)):
        console.print(f"model store already has [bold]{tag}[/]; nothing to do (drop --if-missing to retrain)")
        return 0
    cfg = make_train_config(args, settings)
    out = (args.output_dir or settings.paths.reports_dir / "model") / args.profile
    console.print(f"[bold]profile {cfg.profile}[/]: base {cfg.base_model}, device {cfg.device}, reports -> {out}")
    extra = {}
    if args.loso_report:
        from training.loso import LosoReport, metadata_summary

        loso = LosoReport.model_validate_json(args.loso_report.read_text())
        extra["loso"] = metadata_summary(loso, args.loso_variant)
    report = run(cfg, out, settings, chain_view, register=not args.no_register, log=console.print, extra_metrics=extra)

    table = Table(title=f"held-out test ({report.test.n} reviews) vs requirements")
    for col in ("class", "precision", "req", "recall", "req", "F1", "support", "meets"):
        table.add_column(col)
    for k, c in report.test.per_class.items():
        table.add_row(
            k,
            f"{c.precision:.3f}",
            f">={c.required_precision:.2f}",
            f"{c.recall:.3f}",
            f">={c.required_recall:.2f}",
            f"{c.f1:.3f}",
            str(c.support),
            "yes" if c.meets else "no",
        )
    console.print(table)
    gate = report.requirement_gate
    console.print(
        f"macro-F1 {report.test.macro_f1:.4f} (req >= 0.85), accuracy {report.test.accuracy:.4f}, "
        f"binary neg-vs-pos {report.test_binary['accuracy']:.4f}; ECE test {report.test_ece['before']:.4f} -> "
        f"{report.test_ece['after']:.4f} (T={report.calibration.temperature:.3f})\n"
        f"chain at gate {report.chain.gate:.2f}: "
        + ", ".join(f"{k} {t.share:.1%}" for k, t in report.chain.tiers.items())
        + "; requirement table met by ok answers from gate: "
        + (f"{gate.gate:.2f} (coverage {gate.coverage:.1%})" if gate else "never")
        + f"\ntotal {report.seconds['total']:.0f}s; tag {report.tag}; report {out / 'evaluation.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
