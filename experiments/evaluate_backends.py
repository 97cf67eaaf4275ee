"""Is the faster forward pass still the same model? Each tier-1 backend on the registered model's held-out test split.

For ``torch``, ``onnx`` and ``onnx-int8`` (see ``sentiment.model.runtime``): macro-F1, accuracy, per-class F1,
agreement with PyTorch's labels, largest probability change, share above the confidence gate and accuracy there,
and milliseconds per text on one thread, one text per call (how the service runs int8). Writes
``reports/model/backends.json``.

    .venv/bin/python experiments/evaluate_backends.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from sentiment.model.aliases import require_serving_tag
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import resolve
from sentiment.settings import Backend, load_settings
from training.config import TrainConfig
from training.data import build_dataset
from training.evaluate import metrics

console = Console(width=140)
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8")


def score(
    name: str,
    model: SentimentModel,
    texts: list[str],
    y: np.ndarray,
    reference: np.ndarray | None,
    gate: float,
    timing_n: int,
) -> tuple[dict[str, Any], np.ndarray]:
    probs = model.predict(texts, batch_size=32)
    pred = probs.argmax(1)
    m = metrics(y, pred)
    kept = probs.max(1) >= gate
    start = time.perf_counter()
    model.predict(texts[:timing_n], batch_size=1)
    ms = (time.perf_counter() - start) * 1000.0 / timing_n
    row: dict[str, Any] = {
        "backend": model.backend,
        "requested": name,
        "macro_f1": round(m.macro_f1, 4),
        "accuracy": round(m.accuracy, 4),
        "f1": {label: round(c.f1, 4) for label, c in m.per_class.items()},
        "coverage_at_gate": round(float(kept.mean()), 4),
        "accuracy_at_gate": round(float((pred[kept] == y[kept]).mean()), 4),
        "ms_per_text_1_thread": round(ms, 2),
    }
    if reference is not None:
        row["label_agreement_with_torch"] = round(float((pred == reference.argmax(1)).mean()), 4)
        row["max_prob_change_vs_torch"] = round(float(np.abs(probs - reference).max()), 4)
    return row, probs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tag", help="model in the BentoML store (default: the serving version, the champion)")
    p.add_argument("--timing-texts", type=int, default=200)
    p.add_argument("--out", type=Path, help="default reports/model/backends.json")
    args = p.parse_args(argv)
    settings = load_settings()
    path, meta, tag = resolve(args.tag or require_serving_tag(settings.model))
    ds = build_dataset(TrainConfig.model_validate(meta.train_config), settings.gates, settings.paths.shared_data_dir)
    texts, y = [r.text for r in ds.test], np.array([r.y for r in ds.test])
    console.print(f"{tag}: {len(texts)} held-out test reviews")
    rows: list[dict[str, Any]] = []
    reference = None
    for name in BACKENDS:
        model = SentimentModel(
            path, meta, tag, num_threads=1, backend=name, onnx_cache=settings.paths.data_dir / "onnx"
        )
        row, probs = score(name, model, texts, y, reference, settings.gates.confidence_gate, args.timing_texts)
        reference = probs if reference is None else reference
        rows.append(row)
    table = Table("backend", "macro-F1", "accuracy", "agree w/ torch", "max Δp", "coverage@gate", "acc@gate", "ms/text")
    for r in rows:
        table.add_row(
            r["backend"],
            f"{r['macro_f1']:.4f}",
            f"{r['accuracy']:.4f}",
            f"{r.get('label_agreement_with_torch', 1.0):.4f}",
            f"{r.get('max_prob_change_vs_torch', 0.0):.4f}",
            f"{r['coverage_at_gate']:.3f}",
            f"{r['accuracy_at_gate']:.4f}",
            f"{r['ms_per_text_1_thread']:.2f}",
        )
    console.print(table)
    out = args.out or settings.paths.committed_reports_dir / "model" / "backends.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"tag": tag, "test_reviews": len(texts), "gate": settings.gates.confidence_gate, "backends": rows}, indent=1
        )
        + "\n"
    )
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
