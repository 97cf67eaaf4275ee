"""Drift report between a reference and a current window; writes ``reports/drift.json`` and the boxed text report.

Windows, one of:
  (a) a dated review file split at a date or by two ranges:
      --data amazon2014_musical_instruments_5core.jsonl --reference-range 2004..2012 --current-range 2014..2014
      --data FILE --split-date 2013-01-01
  (b) two files:  --reference A.jsonl --current B.jsonl
  (c) the service's predictions log by time range:  --predictions [PATH] --reference-range ... --current-range ...
      with --replicas-root DIR (or SENTIMENT_PATHS__REPLICAS_ROOT) and no PATH: every replica's log under DIR
With no window flags: the Musical Instruments reviews, 2004-2012 against 2014 (the real temporal experiment).
Thresholds map onto ``Settings.drift`` (env ``SENTIMENT_DRIFT__...`` works too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from drift.detector import DetectOptions, detect
from drift.plots import plot_windows
from drift.report import render_text
from drift.windows import WindowSpec, parse_range
from sentiment.replicas import replica_logs
from sentiment.settings import Settings, load_settings

DEFAULT_DATA = "amazon2014_musical_instruments_5core.jsonl"

_THRESHOLDS = {
    "oov_threshold": "OOV-rate delta above which the OOV signal fires (spec: 0.05)",
    "length_pvalue": "KS p-value below which text length has drifted (spec: 0.05)",
    "js_threshold": "Jensen-Shannon divergence (base 2) above which labels have drifted (spec: 0.05)",
    "low_confidence_growth": "relative growth of the low-confidence share that fires (spec 004: 0.15)",
    "embedding_pvalue": "MMD permutation p-value below which embeddings have drifted",
    "non_english_threshold": "absolute increase of the non-English share that fires",
    "rejected_threshold": "absolute increase of the rejected-input share that fires",
    "rate_pvalue": "significance the three rate signals also need (one-sided two-proportion z-test)",
    "performance_drop": "fall of estimated macro-F1 below the reference that raises performance_drop",
}

_SAMPLING = {
    "embedding_sample": "texts embedded per window for the MMD test",
    "embedding_permutations": "permutations for the MMD p-value",
    "gate_sample": "texts per window run through the service's input and language gates",
    "score_sample": "texts per window scored by --model for the low-confidence share",
    "max_values": "per-record values kept per window before reservoir sampling (bounds memory)",
    "seed": "seed for every random sample",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    w = p.add_argument_group("windows")
    w.add_argument("--data", help="dated review file (path, or a name under the shared data folder)")
    w.add_argument("--split-date", help="with --data: reference before this date, current from it on")
    w.add_argument("--reference-range", help="START..END, inclusive prefixes (2004..2012, 2014-01..2014-06)")
    w.add_argument("--current-range", help="START..END")
    w.add_argument("--reference", type=Path, help="reference JSONL file")
    w.add_argument("--current", type=Path, help="current JSONL file")
    w.add_argument(
        "--predictions", nargs="?", const="", default=None, help="predictions.jsonl (default: the service's)"
    )
    w.add_argument(
        "--replicas-root",
        type=Path,
        help="with --predictions: read predictions.jsonl of every replica folder under this shared root "
        "(default: SENTIMENT_PATHS__REPLICAS_ROOT)",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--output-json", type=Path, help="JSON report (default: <reports_dir>/drift.json, where the dashboard reads it)"
    )
    o.add_argument("--output-text", type=Path, help="boxed text report (default: drift_report.txt beside the JSON)")
    o.add_argument("--plot", type=Path, help="PNG of the two windows (default: drift_windows.png beside the JSON)")
    o.add_argument("--quiet", action="store_true", help="no progress bars, no report on stdout")
    t = p.add_argument_group("thresholds")
    for name, help_text in _THRESHOLDS.items():
        t.add_argument("--" + name.replace("_", "-"), type=float, help=help_text)
    s = p.add_argument_group("sampling and models")
    s.add_argument("--model", help="stored model tag: its training vocabulary for OOV, and it scores confidences")
    s.add_argument("--no-embedding", action="store_true", help="skip the embedding signal (statistical ones only)")
    for name, help_text in _SAMPLING.items():
        s.add_argument("--" + name.replace("_", "-"), type=int, help=help_text)
    return p


def _resolve_data(name: str, settings: Settings) -> Path:
    path = Path(name)
    return path if path.exists() else settings.paths.shared_data_dir / name


def _two_files(args: argparse.Namespace) -> list[WindowSpec]:
    """``--reference`` and ``--current``: one window per file, each optionally cut to its own range."""
    if not (args.reference and args.current):
        raise SystemExit("--reference and --current go together")
    ref_range = parse_range(args.reference_range) if args.reference_range else (None, None)
    cur_range = parse_range(args.current_range) if args.current_range else (None, None)
    return [
        WindowSpec(label=str(args.reference), path=args.reference, start=ref_range[0], end=ref_range[1]),
        WindowSpec(label=str(args.current), path=args.current, start=cur_range[0], end=cur_range[1]),
    ]


def window_specs(args: argparse.Namespace, settings: Settings) -> list[WindowSpec]:
    """The two windows the flags describe (see the module docstring)."""
    if args.reference or args.current:
        return _two_files(args)
    if args.replicas_root and args.predictions:
        raise SystemExit("--replicas-root reads every replica's log: give --predictions without a PATH")
    if args.replicas_root and args.predictions is None:
        raise SystemExit("--replicas-root goes with --predictions")
    replicas = False
    if args.predictions is not None:
        root = None if args.predictions else args.replicas_root or settings.paths.replicas_root
        replicas = root is not None
        name = settings.paths.predictions_log.name
        path = Path(args.predictions) if args.predictions else root / name if root else settings.paths.predictions_log
        if not (args.reference_range and args.current_range):
            raise SystemExit("--predictions needs --reference-range and --current-range")
    else:
        path = _resolve_data(args.data or DEFAULT_DATA, settings)
        if args.split_date:
            args.reference_range, args.current_range = f"..{_day_before(args.split_date)}", f"{args.split_date}.."
        elif not (args.reference_range and args.current_range):
            if args.data:
                raise SystemExit("--data needs --split-date or --reference-range and --current-range")
            args.reference_range, args.current_range = "2004..2012", "2014..2014"
    specs = []
    for text in (args.reference_range, args.current_range):
        lo, hi = parse_range(text)
        name = f"{path.name} of every replica" if replicas else path.name
        specs.append(
            WindowSpec(label=f"{name} {lo or 'start'}..{hi or 'end'}", path=path, start=lo, end=hi, replicas=replicas)
        )
    return specs


def _day_before(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day[:10]) - timedelta(days=1)).isoformat()


def settings_from_args(args: argparse.Namespace) -> Settings:
    drift = {n: getattr(args, n) for n in [*_THRESHOLDS, *_SAMPLING] if getattr(args, n) is not None}
    return load_settings(drift=drift)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    specs = window_specs(args, settings)
    for spec in specs:
        if spec.replicas and not replica_logs(spec.path, replicas=True):
            raise SystemExit(f"no replica folder under {spec.path.parent} holds {spec.path.name}")
        if not spec.replicas and not spec.path.exists():
            raise SystemExit(f"no such file: {spec.path}")
    options = DetectOptions(model_tag=args.model, embedding=not args.no_embedding, progress=not args.quiet)
    report, ref, cur = detect(specs, settings, options)
    out_json = args.output_json or settings.paths.drift_report
    out_text = args.output_text or out_json.with_name("drift_report.txt")
    plot_windows(ref, cur, report, args.plot or out_json.with_name("drift_windows.png"))
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    text = render_text(report)
    out_text.write_text(text, encoding="utf-8")
    if not args.quiet:
        print(text)
        print(f"wrote {out_json}, {out_text} and the plot", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
