"""Measure the PII masker on the real review files; write ``reports/pii.json``.

- Real reviews (evenly spaced per English file): the share that masking changes at all, and every hit in its
  context (the hit itself only by its shape), since almost none of them should be personal data.
- A seeded synthetic sample (findings of every kind inserted into real reviews the masker leaves alone):
  exact-span precision and recall per kind.
- Cost: median microseconds of ``mask`` per real review.

    python experiments/evaluate_pii.py --per-file 2000 --synthetic 3000
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from experiments.pii_sample import score, synthetic_sample
from sentiment.jsonl import iter_records
from sentiment.pii import PiiKind, PiiMasker
from sentiment.settings import load_settings

ENGLISH = (
    "amazon2014_musical_instruments_5core.jsonl",
    "blitzer_multidomain_sentiment.jsonl",
    "amazon_reviews_us_gift_card_sample.jsonl",
    "amazon2018_fashion_5core.jsonl",
    "amazon_reviews_pds_sample_us.jsonl",
    "flipkart_product_reviews.jsonl.gz",
    "uci_amazon_cells_labelled.jsonl",
    "womens_ecommerce_clothing_reviews.jsonl.gz",
    "yelp_reviews_10k.jsonl.gz",
    "amazon_fine_food_reviews_first5000.jsonl.gz",
    "amazon2014_digital_music_5core_head.jsonl.gz",
    "zomato_hyderabad_restaurant_reviews.jsonl.gz",
)


def _sample(path: Path, n: int) -> list[str]:
    """Evenly spaced texts: a file's head over-represents its oldest reviews or first products."""
    texts = [t for r in iter_records(path) if isinstance(t := r.get("text"), str)]
    return texts[:: max(1, len(texts) // n)][:n]


def _context(text: str, start: int, end: int, width: int = 40) -> str:
    """The words around a finding, the finding itself only by its shape: the report must not repeat what it masks."""
    shape = re.sub(r"[^\W\d_]", "a", re.sub(r"\d", "9", text[start:end]))
    return f"{text[max(0, start - width) : start]}<<{shape}>>{text[end : end + width]}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-file", type=int, default=2000, help="real reviews per English file")
    ap.add_argument("--synthetic", type=int, default=3000, help="reviews with inserted findings")
    ap.add_argument("--timed", type=int, default=3000, help="real reviews timed one by one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=None, help="default: <reports_dir>/pii.json")
    args = ap.parse_args(argv)
    settings = load_settings()
    privacy = settings.privacy
    masker = PiiMasker(map(PiiKind, privacy.kinds), privacy.phone_regions)

    real: dict[str, list[str]] = {
        name: _sample(settings.paths.shared_data_dir / name, args.per_file) for name in ENGLISH
    }
    texts = [t for ts in real.values() for t in ts]
    hits: list[dict[str, str]] = []
    per_file: dict[str, int] = {}
    real_counts: Counter[str] = Counter()
    clean: list[str] = []
    for name, ts in real.items():
        changed = 0
        for t in ts:
            spans = masker.find(t)
            if not spans:
                clean.append(t)
                continue
            changed += 1
            for s in spans:
                real_counts[s.kind.value] += 1
                hits.append({"file": name, "kind": s.kind.value, "context": _context(t, s.start, s.end)})
        per_file[name] = changed

    timings = []
    for t in texts[:: max(1, len(texts) // args.timed)][: args.timed]:
        t0 = time.perf_counter_ns()
        masker.mask(t)
        timings.append((time.perf_counter_ns() - t0) / 1000)

    sample = synthetic_sample(clean, args.synthetic, seed=args.seed)
    scores = score(sample, masker)
    kinds = {
        k.value: {
            "tp": s.tp,
            "fp": s.fp,
            "fn": s.fn,
            "precision": s.precision,
            "recall": s.recall,
            "real_review_hits": real_counts[k.value],
        }
        for k, s in scores.items()
    }
    report = {
        "real_reviews": len(texts),
        "real_reviews_changed": sum(per_file.values()),
        "real_share_changed": sum(per_file.values()) / len(texts),
        "real_changed_per_file": per_file,
        "real_hits": hits,
        "synthetic_reviews": len(sample),
        "synthetic_seed": args.seed,
        "kinds": kinds,
        "mask_us_median": statistics.median(timings),
        "mask_us_p95": statistics.quantiles(timings, n=20)[-1],
        "timed_reviews": len(timings),
        "settings": privacy.model_dump(),
    }
    out = args.output or settings.paths.reports_dir / "pii.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    print(
        f"real reviews: {len(texts)}, changed by masking: {report['real_reviews_changed']} "
        f"({report['real_share_changed']:.3%})"
    )
    for h in hits:
        print(f"  {h['kind']:6} {h['file']}: {h['context']}")
    print(f"synthetic reviews: {len(sample)} (seed {args.seed})")
    print(f"{'kind':6} {'tp':>5} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7} {'real hits':>9}")
    for name, k in kinds.items():
        p = "-" if k["precision"] is None else f"{k['precision']:.4f}"
        r = "-" if k["recall"] is None else f"{k['recall']:.4f}"
        print(f"{name:6} {k['tp']:>5} {k['fp']:>4} {k['fn']:>4} {p:>9} {r:>7} {k['real_review_hits']:>9}")
    print(
        f"mask cost per real review: median {report['mask_us_median']:.1f} us, p95 {report['mask_us_p95']:.1f} us "
        f"({len(timings)} reviews)"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
