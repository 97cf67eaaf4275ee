"""Is a distilled student worth serving? Its cost per text against its teacher's, on the served runtime, and its
held-out figures against the teacher's model report (issue 14: keep macro-F1 and neg-vs-pos within 0.01).

Make the student first (``sentiment-train --student-of TEACHER --keep-layers 0 2 4 --name review-sentiment-student``);
both are read from the store. Timing: ONNX Runtime int8, one thread, one unpadded text per run (what the
transformer runner does), teacher and student alternating over ``--rounds`` passes so both see the same box; the
median pass counts. Quality: each version's stored test figures, comparable only when both were evaluated on the
same split (same data fingerprint; the probe says if not).

    .venv/bin/python -m experiments.probe_student --teacher review-sentiment:TAG \
        --student review-sentiment-student:latest
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmark import load_texts
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import resolve
from sentiment.settings import load_settings

KEEP = 0.01  # issue 14: a student may lose at most this much macro-F1 and neg-vs-pos accuracy


def ms_per_text(model: SentimentModel, texts: list[str]) -> float:
    start = time.perf_counter()
    model.predict_outputs(texts, batch_size=1)
    return (time.perf_counter() - start) * 1000.0 / len(texts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True)
    p.add_argument("--student", required=True)
    p.add_argument("--texts", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    settings = load_settings()
    texts = load_texts(settings.paths.shared_data_dir, args.texts, seed=1)
    models = {
        role: SentimentModel.from_store(
            tag, num_threads=1, backend="onnx-int8", onnx_cache=settings.paths.data_dir / "onnx"
        )
        for role, tag in (("teacher", args.teacher), ("student", args.student))
    }
    for m in models.values():
        if m.backend != "onnx-int8":
            raise SystemExit(f"{m.tag} runs on {m.backend}, not onnx-int8: {m.backend_error}")
        m.predict_outputs(texts[:8], batch_size=1)  # lazy initialisation is not the model's cost
    times: dict[str, list[float]] = {role: [] for role in models}
    for r in range(args.rounds):
        for role, m in models.items():
            times[role].append(ms_per_text(m, texts))
            print(f"round {r + 1}: {role} {times[role][-1]:.2f} ms/text")
    labels = {role: m.predict(texts).argmax(1) for role, m in models.items()}
    out: dict[str, Any] = {"texts": len(texts), "backend": "onnx-int8", "threads": 1, "rounds": args.rounds}
    for role, m in models.items():
        meta = m.metadata
        out[role] = {
            "tag": m.tag,
            "layers": _layers(m.tag),
            "ms_per_text": round(statistics.median(times[role]), 2),
            "passes_ms_per_text": [round(t, 2) for t in times[role]],
            "data_fingerprint": meta.data_fingerprint,
            **{k: meta.metrics.get(k) for k in ("test_macro_f1", "test_binary_accuracy")},
        }
    t, s = out["teacher"], out["student"]
    out["same_test_split"] = t["data_fingerprint"] == s["data_fingerprint"]
    out["speedup"] = round(t["ms_per_text"] / s["ms_per_text"], 2)
    out["label_agreement"] = round(float(np.mean(labels["teacher"] == labels["student"])), 4)
    out["delta"] = {
        k: round(s[k] - t[k], 4)
        for k in ("test_macro_f1", "test_binary_accuracy")
        if s[k] is not None and t[k] is not None
    }
    out["keeps_quality"] = out["same_test_split"] and len(out["delta"]) == 2 and min(out["delta"].values()) >= -KEEP
    path = args.out or settings.paths.committed_reports_dir / "model" / "student_probe.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("speedup", "label_agreement", "delta", "same_test_split", "keeps_quality")}))
    print(f"wrote {path}")
    return 0


def _layers(tag: str) -> int:
    cfg = json.loads((resolve(tag)[0] / "config.json").read_text())
    return int(cfg.get("num_hidden_layers", cfg.get("n_layers")))


if __name__ == "__main__":
    sys.exit(main())
