"""How fast ``GET /trends`` answers over a month at a million answers a day, and what keeping the rollup costs.

Generates the rollup a month of traffic leaves (``--days`` days, ``--sources`` x ``--topics`` metadata pairs, two
model versions: one row per hour and key, as :class:`sentiment.rollup.Rollup` keeps it, its sums scaled to
``--per-day`` answers a day), then times the queries the endpoint runs: per hour, day and week, unfiltered and
filtered by source and topic. Also times adding one batch of 64 answers (what each request pays).

    python -m experiments.benchmark_trends [--out reports/estimation/trends_benchmark.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from sentiment.contract import LABELS
from sentiment.records import PredictionRecord
from sentiment.rollup import ALL, Rollup


def records(n: int, ts: str, seed: int, source: str = "s0", topic: str = "t0") -> list[PredictionRecord]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return [
        PredictionRecord(
            ts=ts,
            request_id=f"{seed}-{i}",
            text_len=100,
            label=LABELS[int(p[i].argmax())],
            confidence=float(p[i].max()),
            status="ok",
            reason="",
            tier="model",
            model_confidence=float(p[i].max()),
            probs=p[i].tolist(),
            model_tag="review-sentiment:v1",
            source=source,
            topic=topic,
        )
        for i in range(n)
    ]


def generate(rollup: Rollup, days: int, per_day: int, sources: int, topics: int) -> int:
    """The rows :meth:`Rollup.add` keeps: per hour and version, each source x topic slice and the totals over
    sources, topics and both (``*``); the sums of a sample batch scaled to each row's share of the hourly volume."""
    per_slice = per_day / 24 / 2 / (sources * topics)
    sample = rollup.sums(records(200, "2026-11-01T00:00:00Z", 0))
    keys = [
        (f"review-sentiment:v{v}", s, t, per_slice * (sources if s == ALL else 1) * (topics if t == ALL else 1))
        for v in (1, 2)
        for s in [*(f"s{i}" for i in range(sources)), ALL]
        for t in [*(f"t{i}" for i in range(topics)), ALL]
    ]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows: list[tuple[str | float, ...]] = [
        ((start + timedelta(hours=h)).strftime("%Y-%m-%dT%H"), tag, s, t, *(x * volume / 200 for x in sample))
        for h in range(days * 24)
        for tag, s, t, volume in keys
    ]
    rollup.insert(rows)
    return len(rows)


def timed(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=1_000_000)
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("reports/estimation/trends_benchmark.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rollup = Rollup(Path(tmp) / "trends.sqlite", gate=0.6)
        t = time.perf_counter()
        n_rows = generate(rollup, args.days, args.per_day, args.sources, args.topics)
        print(f"generated {n_rows:,} rollup rows in {time.perf_counter() - t:.1f} s", flush=True)
        size_mb = (Path(tmp) / "trends.sqlite").stat().st_size / 2**20
        queries = {
            f"{window}{'' if not flt else ' ' + '+'.join(flt)}": (window, flt)
            for window in ("hour", "day", "week")
            for flt in ((), ("source",), ("source", "topic"))
        }
        seconds = {}
        for name, (window, flt) in queries.items():
            kw = {"source": "s3" if "source" in flt else None, "topic": "t5" if "topic" in flt else None}
            found = rollup.query(window, "2026-11-01", "2026-12-01", **kw)  # type: ignore[arg-type]
            seconds[name] = round(timed(lambda w=window, k=kw: rollup.query(w, "2026-11-01", "2026-12-01", **k)), 4)
            print(f"{name}: {len(found)} windows in {seconds[name]:.3f} s", flush=True)
        batch = records(64, "2026-12-01T00:00:00Z", 1)
        add_s = timed(lambda: rollup.add(batch), repeats=20)
    result = {
        "days": args.days,
        "answers_per_day": args.per_day,
        "keys_per_hour": 2 * (args.sources + 1) * (args.topics + 1),
        "rows": n_rows,
        "store_mb": round(size_mb, 1),
        "query_seconds": seconds,
        "add_batch_of_64_seconds": round(add_s, 4),
        "target_s": 1.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
