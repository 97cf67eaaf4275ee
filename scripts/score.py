"""Score a file (or folder) of reviews with Ray Data: every row keeps its columns and gains the service's answer.

    sentiment-score reviews.jsonl scored/                       # local Ray, 2 CPUs, 2 actors
    sentiment-score reviews.csv scored/ --text-column review_body --block-rows 2000
    sentiment-score s3://bucket/reviews/ s3://bucket/scored/ --format parquet --address ray://head:10001

Output: ``OUTPUT/part-NNNNN.<ext>`` in the input's format, one part per block of input rows, each row with
``label, confidence, status, reason, model_version`` added (the answer ``POST /predict`` gives for its text).
Run it again after a crash or a kill: finished parts are kept and only the missing blocks are scored.
Settings (gates, backend, data dir, the human queue) come from SENTIMENT_* like the service's; there is no latency
budget. Also ``python -m scripts.score``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from sentiment.settings import load_settings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="sentiment-score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("input", help="a .jsonl, .csv or .parquet file, or a folder of them; local path or URI")
    p.add_argument("output", help="output folder (local path or URI); reused to resume an interrupted job")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"], help="input format (default: by extension)")
    p.add_argument("--text-column", default="text", help="column holding the review (default: text)")
    p.add_argument("--block-rows", type=int, default=1000, help="input rows per block and output part")
    p.add_argument(
        "--num-cpus",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="CPUs of the local Ray instance (default: 2 or fewer)",
    )
    p.add_argument("--actors", type=int, help="model actors, one CPU each (default: --num-cpus)")
    p.add_argument("--address", help="an existing Ray cluster (e.g. ray://head:10001 or auto) instead of a local one")
    p.add_argument("--model", help="model tag to use instead of the serving one (champion or pinned)")
    p.add_argument("--json", action="store_true", help="print the job summary as JSON")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from batch.job import ray_session, resolve_model, run_job
    except ImportError as exc:  # ray is an optional dependency
        print(f"sentiment-score needs Ray Data: pip install 'review-sentiment[batch]' ({exc})", file=sys.stderr)
        return 2
    settings = load_settings()
    model = resolve_model(settings, args.model)
    with ray_session(num_cpus=args.num_cpus, address=args.address):
        result = run_job(
            args.input,
            args.output,
            settings,
            model,
            fmt=args.format,
            text_column=args.text_column,
            block_rows=args.block_rows,
            actors=args.actors or args.num_cpus,
        )
    if args.json:
        print(result.model_dump_json(indent=1))
    else:
        print(
            f"{result.rows} rows in {result.blocks_scored} blocks ({result.blocks_skipped} already done) in "
            f"{result.seconds:.1f} s: {result.rows_per_s:.1f} rows/s with {result.actors} actors; "
            f"ok {result.ok}, fallback {result.fallback}, rejected {result.rejected}, "
            f"queued for humans {result.escalated}; model {result.model_version}"
        )
        print(json.dumps({"output": result.output, "format": result.format}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
