"""Does a running image answer as the chain does in this process, with the same model? Real English reviews.

    BENTOML_HOME=var/image/bentoml python -m tools.image_check --url http://127.0.0.1:3111 [--n 300]
        [--output var/image/image_check.json]

The in-process side loads the store's champion (``BENTOML_HOME``: the store the Bento was built from, so the
version the image packs) with the serving settings' backend and runs the tier sequence the service runs
(language gate, model, confidence gate, rules, human-queue escalation into a temporary folder), without the
resource guard or a latency budget, like ``sentiment-score``. The image gets the same reviews one ``/predict`` at a
time. Prints the counts and the first mismatches; exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import urllib.request
from pathlib import Path

from fallback.queue import HumanQueue
from fallback.sequence import TierSequence
from fallback.tiers import LocalTiers
from sentiment.contract import Prediction
from sentiment.jsonl import iter_records
from sentiment.model.aliases import require_serving_tag
from sentiment.model.inference import SentimentModel
from sentiment.settings import load_settings

SOURCES = (
    "amazon2014_musical_instruments_5core.jsonl",
    "amazon_reviews_pds_sample_us.jsonl",
    "uci_amazon_cells_labelled.jsonl",
    "blitzer_multidomain_sentiment.jsonl",
)


def reviews(shared: Path, n: int) -> list[str]:
    """``n`` English reviews, taken in turn from each source (every source's last ones: the newest)."""
    per_source = []
    for name in SOURCES:
        texts = [str(r["text"]) for r in iter_records(shared / name) if r.get("text") and r.get("lang", "en") == "en"]
        per_source.append(texts[-n:][::-1])
    mixed = [t for group in itertools.zip_longest(*per_source) for t in group if t is not None]
    return mixed[:n]


def in_process(texts: list[str], data_dir: Path) -> tuple[str, str, list[Prediction]]:
    settings = load_settings(paths={"data_dir": data_dir})
    tag = require_serving_tag(settings.model)
    model = SentimentModel.from_store(
        tag, settings.service.inference_threads, backend=settings.service.backend, onnx_cache=data_dir / "onnx"
    )
    sequence = TierSequence(LocalTiers(model, settings.gates), settings.gates, overlap=False)
    traced = HumanQueue.from_settings(settings).escalate(
        asyncio.run(sequence.run(texts, [f"check-{i}" for i in range(len(texts))]))
    )
    return tag, str(model.backend), [t.prediction for t in traced]


def served(url: str, texts: list[str]) -> list[Prediction]:
    out = []
    for text in texts:
        req = urllib.request.Request(
            f"{url}/predict", data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            out.append(Prediction.model_validate_json(resp.read()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--output", type=Path)
    args = p.parse_args(argv)
    settings = load_settings()
    texts = reviews(settings.paths.shared_data_dir, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        tag, backend, local = in_process(texts, Path(tmp))
    with urllib.request.urlopen(f"{args.url}/model/info", timeout=30) as resp:
        info = json.loads(resp.read())
    remote = served(args.url, texts)
    mismatches = [
        {"text": t[:120], "in_process": a.model_dump(), "image": b.model_dump()}
        for t, a, b in zip(texts, local, remote, strict=True)
        if a != b
    ]
    by_status: dict[str, int] = {}
    for pred in remote:
        by_status[pred.status.value] = by_status.get(pred.status.value, 0) + 1
    result = {
        "reviews": len(texts),
        "identical": len(texts) - len(mismatches),
        "mismatches": mismatches[:20],
        "in_process": {"tag": tag, "backend": backend},
        "image": {"tag": info.get("tag"), "backend": info.get("backend")},
        "image_status": by_status,
    }
    print(
        f"{result['identical']}/{len(texts)} answers identical (label, confidence, status, reason); "
        f"in-process {tag} on {backend}, image {info.get('tag')} on {info.get('backend')}; image statuses "
        f"{by_status}"
    )
    for m in mismatches[:5]:
        print(json.dumps(m))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0 if not mismatches and info.get("tag") == tag else 1


if __name__ == "__main__":
    sys.exit(main())
