"""Batch scoring throughput and memory: ``sentiment-score``'s engine (batch/job.py) on N real reviews.

    python -m experiments.benchmark_batch --rows 100000                 # reviews/s, per core, peak RSS
    python -m experiments.benchmark_batch --rows 100000 300000          # memory stays flat as the input grows
    python -m experiments.benchmark_batch --rows 20000 --model review-sentiment:VERSION
    python -m experiments.benchmark_batch --rows 1000000 --workdir var/bb --progress-log var/bb/progress.jsonl
    python -m experiments.benchmark_batch --rows 1000000 --workdir var/bb --progress-log var/bb/progress.jsonl --resume

The input is the shared English review files concatenated (about 167k rows; cycled when more are asked for),
written as JSON Lines with an id per row. Each size runs as a fresh job into a fresh output folder on a local Ray
of ``--num-cpus`` CPUs with one model actor per CPU. Memory: the driver's peak RSS (getrusage) and each actor's
(its own getrusage, reported with every block), plus the largest RSS sum of the whole Ray process tree seen by a
1 s sampler; ``--progress-log`` appends a line every ``--progress-every`` seconds (rows written so far, that tree's
RSS), so a long run that is stopped still leaves its figures. A run stopped with SIGINT or SIGTERM shuts its local
Ray down; ``--resume`` with the same ``--workdir`` keeps that input and the parts already written and scores the
rest (the job's own resume). Next to it, the HTTP service's capacity: *quoted* from ``reports/benchmark.json``, or
with ``--service-ladder`` measured in the same run, first, by ``experiments/benchmark.py --only service --ladder-only``
(its ladder of rates up to the p95 <= 200 ms bound; the service and the batch job never run at the same time).
Results: ``reports/benchmark_batch.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

from sentiment.settings import load_settings

REPO = Path(__file__).resolve().parent.parent

ENGLISH = (
    "amazon2014_musical_instruments_5core.jsonl",
    "amazon2018_fashion_5core.jsonl",
    "amazon_reviews_us_gift_card_sample.jsonl",
    "amazon_reviews_pds_sample_us.jsonl",
    "blitzer_multidomain_sentiment.jsonl",
    "uci_amazon_cells_labelled.jsonl",
    "amazon2014_digital_music_5core_head.jsonl.gz",
    "amazon_fine_food_reviews_first5000.jsonl.gz",
    "flipkart_product_reviews.jsonl.gz",
    "womens_ecommerce_clothing_reviews.jsonl.gz",
    "yelp_reviews_10k.jsonl.gz",
    "zomato_hyderabad_restaurant_reviews.jsonl.gz",
)


def reviews(shared: Path) -> Iterator[tuple[str, object]]:
    for name in ENGLISH:
        opener: Any = gzip.open if name.endswith(".gz") else open
        with opener(shared / name, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield name, json.loads(line).get("text")


def write_input(path: Path, n: int, shared: Path) -> int:
    distinct = sum(1 for _ in reviews(shared))
    with path.open("w", encoding="utf-8") as f:
        for i, (name, text) in enumerate(itertools.islice(itertools.cycle(reviews(shared)), n)):
            f.write(json.dumps({"id": i, "source": name, "text": text}, ensure_ascii=False) + "\n")
    return distinct


def rows_written(out: Path) -> int:
    """Rows in the finished parts of an output folder (a part appears whole or not at all)."""
    total = 0
    for part in out.glob("part-*.jsonl"):
        with part.open("rb") as f:
            total += sum(1 for _ in f)
    return total


class TreeSampler:
    """The largest RSS of this process and all its descendants (Ray's GCS, raylet, workers), summed; with a
    ``log``, one line every ``log_every_s`` with that RSS and the rows written so far to ``watch``."""

    def __init__(self, every_s: float = 1.0, log: Path | None = None, log_every_s: float = 60.0) -> None:
        self.every_s, self.peak_mb, self._stop = every_s, 0.0, threading.Event()
        self.log, self.log_every_s = log, log_every_s
        self.watch: Path | None = None  # the output folder of the run in progress
        self.target = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me, start, logged = psutil.Process(), time.monotonic(), -float("inf")
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak_mb = max(self.peak_mb, total / 2**20)
            now = time.monotonic()
            if self.log and self.watch and now - logged >= self.log_every_s:
                logged = now
                line = {
                    "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "elapsed_s": round(now - start),
                    "rows_target": self.target,
                    "rows_written": rows_written(self.watch),
                    "ray_tree_rss_mb": round(total / 2**20, 1),
                    "load_average": os.getloadavg()[0],
                }
                with self.log.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
            self._stop.wait(self.every_s)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def http_service(report_path: Path, source: str) -> dict[str, Any]:
    """The service's capacity (and, when the report has them, its first burst and steady CPU) from a benchmark."""
    report = json.loads(report_path.read_text())
    svc = report["service"]
    burst = (svc.get("bursts") or [{}])[0]
    return {
        "source": source,
        "when": report.get("when"),
        "machine": report.get("machine"),
        "model_tag": report.get("model_tag"),
        "capacity_rps_at_p95_200ms": svc.get("capacity_rps_at_p95_200ms"),
        "ladder": [
            {k: step.get(k) for k in ("target_rps", "achieved_rps", "p95_ms", "errors")}
            for step in svc.get("ladder") or []
        ],
        "burst_achieved_rps": burst.get("achieved_rps"),
        "steady_cpu_ms_per_request": (svc.get("steady_cpu_ms_per_request") or {}).get("total"),
    }


def service_ladder(work: Path, step_s: float) -> dict[str, Any]:
    """The HTTP service's ladder, run now on the same box (a separate entry point, started as a program)."""
    out = work / "service_ladder.json"
    cmd = [
        sys.executable,
        "-m",
        "experiments.benchmark",
        "--only",
        "service",
        "--ladder-only",
        "--step-s",
        str(step_s),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, cwd=REPO, check=True)
    return http_service(out, f"measured in this run, before the batch jobs: {' '.join(cmd[1:-2])}")


def _earlier(args: argparse.Namespace) -> list[dict[str, Any]]:
    if not (args.append and args.out.exists()):
        return []
    runs: list[dict[str, Any]] = json.loads(args.out.read_text())["batch"]
    return runs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[100_000])
    p.add_argument("--num-cpus", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--block-rows", type=int, default=1000)
    p.add_argument("--model", help="model tag (default: the serving one)")
    p.add_argument("--workdir", type=Path, help="where inputs and outputs go (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "benchmark_batch.json")
    p.add_argument("--append", action="store_true", help="keep the runs already in --out (same model and CPUs)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="with --workdir: keep its input and the parts already written, score only the rest",
    )
    p.add_argument("--progress-log", type=Path, help="append rows written and Ray tree RSS here, as JSON lines")
    p.add_argument("--progress-every", type=float, default=60.0, help="seconds between progress lines")
    p.add_argument(
        "--service-ladder",
        action="store_true",
        help="first measure the HTTP service's capacity (experiments/benchmark.py's ladder) in this run",
    )
    p.add_argument("--service-step-s", type=float, default=10.0, help="seconds per rung of that ladder")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resume and not args.workdir:
        raise SystemExit("--resume needs the --workdir of the run to continue")
    from batch.job import ray_session, resolve_model, run_job

    settings = load_settings()
    model = resolve_model(settings, args.model)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="benchmark-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        service = (
            service_ladder(work, args.service_step_s)
            if args.service_ladder
            else http_service(
                REPO / "reports" / "benchmark.json", "reports/benchmark.json (quoted, not measured in this run)"
            )
        )
        with (
            TreeSampler(log=args.progress_log, log_every_s=args.progress_every) as tree,
            ray_session(num_cpus=args.num_cpus),
        ):
            # After ray.init, whose own SIGTERM handler aborts the driver: a stop by pid shuts the local Ray down.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            for n in args.rows:
                src, out = work / f"reviews-{n}.jsonl", work / f"scored-{n}"
                if args.resume and src.exists():
                    distinct = sum(1 for _ in reviews(settings.paths.shared_data_dir))
                    rows_before = rows_written(out)
                else:
                    distinct = write_input(src, n, settings.paths.shared_data_dir)
                    shutil.rmtree(out, ignore_errors=True)
                    rows_before = 0
                tree.watch, tree.target = out, n
                load_before = os.getloadavg()
                tree.peak_mb = 0.0
                result = run_job(str(src), str(out), settings, model, block_rows=args.block_rows, actors=args.num_cpus)
                run = {
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "rows": result.rows,
                    "rows_written_before": rows_before,
                    "blocks_skipped": result.blocks_skipped,
                    "distinct_reviews_available": distinct,
                    "seconds": round(result.seconds, 1),
                    "reviews_per_s": round(result.rows_per_s, 1),
                    "reviews_per_s_per_core": round(result.rows_per_s / args.num_cpus, 1),
                    # one actor on one core, model loading and Ray start-up left out
                    "reviews_per_busy_actor_s": round(result.rows / max(result.actor_busy_s, 1e-9), 1),
                    "answers": {
                        "ok": result.ok,
                        "fallback": result.fallback,
                        "rejected": result.rejected,
                        "queued_for_humans": result.escalated,
                    },
                    "backends": result.backends,
                    "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                    "actor_peak_rss_mb": sorted(round(v, 1) for v in result.actor_peak_rss_mb.values()),
                    "ray_tree_peak_rss_mb": round(tree.peak_mb, 1),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                }
                runs.append(run)
                print(json.dumps(run), flush=True)
                shutil.rmtree(out, ignore_errors=True)
                src.unlink()
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "ray_num_cpus": args.num_cpus,
            "actors": args.num_cpus,
            "note": "shared machine; other developers' jobs ran at the same time (see load averages)",
        },
        "model_version": model.tag,
        "backend": settings.service.backend,
        "block_rows": args.block_rows,
        "latency_budget": "none (batch waits for the model)",
        "batch": _earlier(args) + runs,
        "http_service": service,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
