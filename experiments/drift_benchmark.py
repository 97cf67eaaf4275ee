"""Scale check: one million review records through the drift detector's statistical signals.

Builds a 1M-line JSONL file from the real English reviews (shuffled, cycled, timestamps spread over 2013-2014, so
the split at 2014-01-01 gives two windows of 500k from the same mix), then times the detector on it and records
the peak memory. The embedding signal is off by default (it samples anyway; ``--embedding`` turns it on).

    python experiments/drift_benchmark.py            # writes reports/drift_benchmark.json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from tqdm import tqdm

from drift.detector import DetectOptions, detect_windows
from drift.features import load_vocab
from drift.windows import WindowSpec, read_windows
from sentiment.jsonl import iter_records
from sentiment.settings import load_settings

SOURCES = (
    "amazon2014_musical_instruments_5core.jsonl",
    "blitzer_multidomain_sentiment.jsonl",
    "flipkart_product_reviews.jsonl.gz",
)


def build_file(path: Path, n: int, data_dir: Path) -> int:
    """Write ``n`` records cycling through the real reviews; returns the file size in bytes."""
    pool = [
        {"text": r["text"], "rating": r.get("rating")}
        for name in SOURCES
        for r in iter_records(data_dir / name)
        if r.get("rating")
    ]
    random.Random(0).shuffle(pool)  # both windows then hold the same mix: a quiet report is the right answer
    start = date(2013, 1, 1)
    with open(path, "w", encoding="utf-8") as fh:
        for i in tqdm(range(n), desc="writing benchmark file", unit=" rec", mininterval=2):
            day = start + timedelta(days=(i * 730) // n)
            rec = {**pool[i % len(pool)], "timestamp": f"{day.isoformat()}T00:00:00Z"}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--embedding", action="store_true", help="also run the (sampled) embedding signal")
    p.add_argument("--output", type=Path, help="results file (default: reports/drift_benchmark.json)")
    args = p.parse_args(argv)
    settings = load_settings()
    out = args.output or settings.paths.committed_reports_dir / "drift_benchmark.json"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "reviews_1m.jsonl"
        size = build_file(data, args.records, settings.paths.shared_data_dir)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        specs = [
            WindowSpec(label="2013", path=data, start="2013", end="2013"),
            WindowSpec(label="2014", path=data, start="2014", end="2014"),
        ]
        options = DetectOptions(embedding=args.embedding, progress=True)
        t0 = time.perf_counter()
        vocab, note = load_vocab(settings, None)
        ref, cur = read_windows(specs, vocab, settings.drift, settings.gates.confidence_gate)
        t_read = time.perf_counter() - t0
        rss_read = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = detect_windows(ref, cur, settings, options, note)
        wall = time.perf_counter() - t0
    result = {
        "records": args.records,
        "file_mb": round(size / 2**20, 1),
        "wall_s": round(wall, 2),
        "records_per_s": round(args.records / wall),
        "peak_rss_mb_before_detect": round(rss_before / 1024, 1),
        "peak_rss_mb_after_streaming_read": round(rss_read / 1024, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "windows": {k: v.n for k, v in report.windows.items()},
        "timings_s": {"read": round(t_read, 2), **report.timings_s},
        "gate_sample_per_window": settings.drift.gate_sample,
        "embedding": args.embedding,
        "drifted_signals": report.drifted_signals,
        "generated_at": report.generated_at,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
