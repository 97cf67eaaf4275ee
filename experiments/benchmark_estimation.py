"""How long the performance estimate takes on a predictions log of a million answers, end to end.

Writes a log of ``--records`` answers (two model versions, a share labelled by operators) under a temporary folder,
then times each step as a reader runs it: reading the JSONL back (:func:`sentiment.jsonl.iter_records`), the
arrays the estimate reads (:func:`sentiment.estimation.record_arrays`), and the estimate per version, CBPE and ATC.

    python -m experiments.benchmark_estimation [--records 1000000] [--out reports/estimation/benchmark.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sentiment.contract import LABELS
from sentiment.estimation import AtcThreshold, by_version, latest_labels, record_arrays
from sentiment.jsonl import iter_records


def write_log(path: Path, n: int, seed: int) -> dict[str, str]:
    """A log as the service writes it (every field a real record has), and operator labels for 1% of it."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, 3))
    p = np.round(np.exp(z) / np.exp(z).sum(1, keepdims=True), 6)
    labels: dict[str, str] = {}
    with path.open("w") as fh:
        for i in range(n):
            row = p[i].tolist()
            top = int(np.argmax(row))
            rid = f"{i:032x}"
            record = {
                "ts": f"2026-11-{1 + i * 30 // n:02d}T10:00:00.000Z",
                "request_id": rid,
                "text_len": 120,
                "label": LABELS[top],
                "confidence": row[top],
                "status": "ok",
                "reason": "",
                "reason_code": "",
                "tier": "model",
                "oov_rate": 0.01,
                "unk_rate": 0.0,
                "model_confidence": row[top],
                "probs": row,
                "had_markup": False,
                "lang": "en",
                "latency_ms": 12.3,
                "model_tag": "review-sentiment:v1" if i < n // 2 else "review-sentiment:v2",
                "text": None,
            }
            fh.write(json.dumps(record) + "\n")
            if i % 100 == 0:
                labels[rid] = LABELS[int(rng.choice(3, p=p[i] / p[i].sum()))]
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("reports/estimation/benchmark.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "predictions.jsonl"
        t = time.perf_counter()
        labels = write_log(log, args.records, 0)
        written = time.perf_counter() - t
        print(f"wrote {args.records:,} records in {written:.1f} s", flush=True)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        records = list(iter_records(log))
        timings["read_jsonl"] = time.perf_counter() - t
        t = time.perf_counter()
        labels = latest_labels({"request_id": k, "label": v} for k, v in labels.items())
        arrays = record_arrays(records, labels)
        timings["arrays"] = time.perf_counter() - t
        t = time.perf_counter()
        cbpe = by_version(arrays, "cbpe")
        timings["estimate_cbpe"] = time.perf_counter() - t
        t = time.perf_counter()
        by_version(arrays, "atc", AtcThreshold(threshold=0.7))
        timings["estimate_atc"] = time.perf_counter() - t
    timings["total_cbpe"] = timings["read_jsonl"] + timings["arrays"] + timings["estimate_cbpe"]
    result = {
        "records": args.records,
        "labelled": int((arrays.labels >= 0).sum()),
        "versions": len(cbpe),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "target_s": 30.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
