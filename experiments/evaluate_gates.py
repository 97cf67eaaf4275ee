"""Measure the language gate and the keyword rules on the real review files; write ``reports/gates.json``.

Language gate: false rejection on English sources, rejection rate on non-English ones (evenly spaced sample
per file, after the same validation the service runs), and how many of each were rejected as not language at all
(``not_language``: the nonsense check inside the language gate); the English false-reject rate over all English
files together. Rules: on every English review with stars, how many
they resolve (coverage) and how often the label they give agrees with the star label (precision), per class.

    python -m experiments.evaluate_gates --per-file 3000
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fallback.keywords import KeywordRules
from sentiment.contract import star_to_label
from sentiment.jsonl import iter_records
from sentiment.language_id import detect_language
from sentiment.settings import Settings, load_settings
from sentiment.validation import Validated, validate

ENGLISH = (
    "amazon2014_musical_instruments_5core.jsonl",
    "blitzer_multidomain_sentiment.jsonl",
    "amazon_reviews_us_gift_card_sample.jsonl",
    "amazon2018_fashion_5core.jsonl",
    "amazon_reviews_pds_sample_us.jsonl",
    "flipkart_product_reviews.jsonl.gz",
    "uci_amazon_cells_labelled.jsonl",
)
FOREIGN = ("amazon_reviews_pds_sample_fr.jsonl", "zh_online_shopping_10_cats.jsonl", "zh_waimai_10k.jsonl")


def _sample(path: Path, n: int, settings: Settings) -> list[tuple[str, int | None]]:
    """Evenly spaced validated texts (with stars): head-of-file samples would over-represent the oldest reviews."""
    rows = [(r.get("text"), r.get("rating")) for r in iter_records(path)]
    step = max(1, len(rows) // n)
    out = []
    for text, rating in rows[::step][:n]:
        v = validate(text, settings.gates)
        if isinstance(v, Validated):
            out.append((v.text, rating))
    return out


def language_gate(settings: Settings, per_file: int) -> dict[str, dict[str, str | float | int | list[str]]]:
    g = settings.gates
    result: dict[str, dict[str, str | float | int | list[str]]] = {}
    for name in ENGLISH + FOREIGN:
        texts = [t for t, _ in _sample(settings.paths.shared_data_dir / name, per_file, settings)]
        verdicts = [detect_language(t, g) for t in tqdm(texts, desc=name, leave=False)]
        rejected = [t for t, v in zip(texts, verdicts, strict=True) if not v.accepted]
        result[name] = {
            "language": "en" if name in ENGLISH else "foreign",
            "n": len(texts),
            "rejected": len(rejected),
            "rejection_rate": len(rejected) / max(1, len(texts)),
            "rescued_by_wordfreq": sum(v.method == "wordfreq" for v in verdicts),
            "not_language": sum(v.method == "nonsense" for v in verdicts),
            "examples_rejected": [t[:80] for t in rejected[:12]],
            "examples_not_language": [t[:80] for t, v in zip(texts, verdicts, strict=True) if v.method == "nonsense"][
                :12
            ],
        }
    return result


def english_false_reject(gate: dict[str, dict[str, Any]]) -> dict[str, float | int]:
    """All English files together: any language-gate rejection, and the nonsense check's share of it."""
    english = [r for r in gate.values() if r["language"] == "en"]
    n = sum(r["n"] for r in english)
    return {
        "n": n,
        "rejected": sum(r["rejected"] for r in english),
        "rejection_rate": sum(r["rejected"] for r in english) / max(1, n),
        "not_language": sum(r["not_language"] for r in english),
        "not_language_rate": sum(r["not_language"] for r in english) / max(1, n),
    }


def rules_precision(settings: Settings, per_file: int) -> dict[str, object]:
    rules = KeywordRules()
    seen: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for name in ENGLISH:
        for text, rating in _sample(settings.paths.shared_data_dir / name, per_file, settings):
            truth = star_to_label(rating)
            if truth is None:
                continue
            seen[truth.value] += 1
            verdict = rules.match(text)
            if verdict.label is not None:
                resolved[verdict.label.value] += 1
                correct[verdict.label.value] += verdict.label is truth
    total, res, cor = sum(seen.values()), sum(resolved.values()), sum(correct.values())
    return {
        "reviews": total,
        "coverage": res / max(1, total),
        "precision": cor / max(1, res),
        "per_label": {
            lab: {"resolved": resolved[lab], "precision": correct[lab] / max(1, resolved[lab]), "true_count": seen[lab]}
            for lab in ("negative", "neutral", "positive")
        },
        "lexicon_sizes": rules.counts(),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-file", type=int, default=3000, help="evenly spaced reviews per file")
    ap.add_argument("--output", type=Path, default=None, help="default: reports/gates.json (the committed figures)")
    args = ap.parse_args(argv)
    settings = load_settings()
    gate = language_gate(settings, args.per_file)
    report: dict[str, Any] = {
        "language_gate": gate,
        "english_false_reject": english_false_reject(gate),
        "rules": rules_precision(settings, args.per_file),
    }
    out = args.output or settings.paths.committed_reports_dir / "gates.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    for name, r in report["language_gate"].items():
        print(
            f"{name:45s} {r['language']:8s} n={r['n']:5d} rejected={r['rejection_rate']:.2%} "
            f"not_language={r['not_language']}"
        )
    fr = report["english_false_reject"]
    print(
        f"English false rejects: {fr['rejection_rate']:.2%} of {fr['n']} (not_language {fr['not_language_rate']:.2%})"
    )
    rp = report["rules"]
    print(f"rules: coverage {rp['coverage']:.1%}, precision {rp['precision']:.1%} over {rp['reviews']} reviews")
    for lab, r in rp["per_label"].items():
        print(f"  {lab:8s} resolved={r['resolved']:5d} precision={r['precision']:.1%}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
