"""Leave-one-source-out evaluation of a training profile: ``python -m experiments.evaluate_loso --profile quick``.

Every fold trains a model (nothing is registered), so a full run costs folds x training time; ``--folds``,
``--max-train`` and ``--train-budget-s`` make a reduced run; folds run as separate processes are joined with
``--merge``. Writes ``loso.json``, ``summary.md`` and ``loso.png``
to ``<reports_dir>/model/loso/<run-name>`` (``--output-dir reports/model/loso`` for the committed copy).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.loso import LosoReport


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from training.config import add_lever_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=["quick", "full"], default="quick")
    p.add_argument("--run-name", default="baseline", help="sub-folder of the output folder (one per lever)")
    p.add_argument("--data", type=Path, nargs="+", help="review JSONL(.gz) files (default: the shared data folder)")
    p.add_argument("--folds", nargs="+", help="held-out sources (default: every source with enough 3-star reviews)")
    p.add_argument("--max-train", type=int, help="training reviews per fold (class-balanced cap)")
    p.add_argument("--max-val", type=int)
    p.add_argument(
        "--train-budget-s",
        type=float,
        help="training seconds per fold (0 = none: on a shared CPU a fixed --max-train compares fairer)",
    )
    p.add_argument("--max-length", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    add_lever_arguments(p)
    p.add_argument(
        "--neutral-noise",
        choices=["keep", "drop_rules_polar"],
        help="drop 3-star training reviews the keyword rules read as clearly polar",
    )
    p.add_argument(
        "--keep-layers",
        type=int,
        nargs="+",
        help="train a shallower model: only these encoder layers of the base (e.g. 0 2 4)",
    )
    p.add_argument("--threads", type=int, dest="num_threads")
    p.add_argument("--test-cap", type=int, default=1500, help="held-out reviews per fold (natural mix)")
    p.add_argument("--in-domain-cap", type=int, default=1000, help="in-domain test reviews per fold")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--output-dir", type=Path, help="default <reports_dir>/model/loso")
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="RUN",
        help="train nothing: one report (--run-name) over the folds of runs made with the same settings",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="train nothing: tabulate the named runs of the output folder into levers.json / levers.md",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from fallback.keywords import KeywordRules
    from sentiment.settings import load_settings
    from training.chain_view import chain_decisions
    from training.config import LEVER_FIELDS, make_config
    from training.data import LoadStats, default_files, load_reviews
    from training.loso import (
        LosoConfig,
        LosoReport,
        lever_rows,
        merge_reports,
        render_levers,
        run_loso,
    )

    logging.getLogger("transformers").setLevel(logging.ERROR)
    settings = load_settings()
    root = args.output_dir or settings.paths.reports_dir / "model" / "loso"
    out = root / args.run_name
    if args.compare:
        runs = {n: LosoReport.model_validate_json((root / n / "loso.json").read_text()) for n in args.compare}
        rows = lever_rows(runs)
        (root / "levers.json").write_text(json.dumps(rows, indent=1))
        (root / "levers.md").write_text(render_levers(rows))
        print(render_levers(rows))
        return 0
    if args.merge:
        merged = merge_reports(
            [LosoReport.model_validate_json((root / n / "loso.json").read_text()) for n in args.merge]
        )
        write_report(merged, out)
        return 0
    overrides = {
        k: getattr(args, k)
        for k in (
            "max_train",
            "max_val",
            "train_budget_s",
            "max_length",
            "batch_size",
            "eval_every",
            "lr",
            "seed",
            "num_threads",
            "neutral_noise",
            "keep_layers",
            *LEVER_FIELDS,
        )
    }
    train = make_config(args.profile, **overrides)
    if args.train_budget_s == 0:
        train.train_budget_s = None
    cfg = LosoConfig(
        train=train,
        folds=args.folds or [],
        test_cap=args.test_cap,
        in_domain_cap=args.in_domain_cap,
        bootstrap=args.bootstrap,
    )
    t0 = time.monotonic()
    reviews = load_reviews(args.data or default_files(settings.paths.shared_data_dir), settings.gates, LoadStats())
    print(f"loaded {len(reviews)} star-rated reviews in {time.monotonic() - t0:.0f}s; reports -> {out}")
    report = run_loso(cfg, reviews, settings.gates, chain_decisions, reads_polar=KeywordRules().reads_polar)
    write_report(report, out)
    return 0


def write_report(report: LosoReport, out: Path) -> None:
    """loso.json, loso.png and summary.md of one run (or merge)."""
    from training.loso import plot_folds, render_markdown

    out.mkdir(parents=True, exist_ok=True)
    (out / "loso.json").write_text(json.dumps(report.model_dump(mode="json")))
    plot_folds(report, out / "loso.png")
    (out / "summary.md").write_text(render_markdown(report))
    print(render_markdown(report))


if __name__ == "__main__":
    raise SystemExit(main())
