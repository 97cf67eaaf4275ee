"""The fine-tune path of the labelling loop on one unseen product line, end to end as a user runs it:
``python -m experiments.evaluate_finetune --source FILE`` with the fold's champion in the store (trained without
that file: ``python -m scripts.train --profile quick --data <all the other files>``), ``BENTOML_HOME`` and
``SENTIMENT_PATHS__DATA_DIR`` pointing at that store and data dir.

1. The product line (at most ``--stream`` reviews at its natural class mix, in a fixed random order) goes through the
   in-process chain (:class:`fallback.chain.Chain`) with the labelling sample attached (the service's sampler, margin
   limit and random share set so that a daily cap of ``--labels`` fills with about ``--random-fraction`` random
   picks, as :func:`experiments.evaluate_adaptation.product_settings` sets them).
2. An operator labels every sampled review with its star label, through the dashboard's writer
   (:func:`dashboard.loaders.save_label`).
3. ``sentiment-retrain --from champion`` runs (``python -m scripts.retrain``, as its own process), timed.
4. The champion and the adapted challenger are scored on the rest of the line (never labelled), argmax plus the
   confidence gate as the other adaptation benchmarks read them, with paired bootstrap 95% intervals; the promotion
   check runs as ``sentiment-models gate --dry-run`` (its verdict, and the frozen base split's macro-F1 for both,
   which is the forgetting check).

Writes ``finetune_<source>.json`` to ``--out`` (default ``reports/adaptation``). Leaves the challenger registered and
the champion unchanged (dry run).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dashboard.loaders import save_label
from experiments.evaluate_adaptation import SHOWN, decide, product_settings
from fallback.chain import Chain
from fallback.guard import ResourceGuard
from fallback.label_sample import LabellingSample, margin
from sentiment.contract import LABELS
from sentiment.model.aliases import AliasRegistry
from sentiment.model.inference import SentimentModel
from sentiment.pii import text_masker
from sentiment.settings import GateSettings, Settings, load_settings
from training.data import LoadStats, Review, load_reviews
from training.loso import figures, natural_sample
from training.promotion import failed, run_gate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, required=True, help="the held-out product line's review file")
    p.add_argument("--labels", type=int, default=200, help="labels the operator gives (the sample's daily cap)")
    p.add_argument("--stream", type=int, default=1500, help="reviews of the line replayed (natural class mix)")
    p.add_argument("--random-fraction", type=float, default=0.2)
    p.add_argument("--budget-s", type=float, default=300.0, help="the fine-tune's --train-budget-s")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--out", type=Path, default=Path("reports/adaptation"))
    return p.parse_args(argv)


def replay_stream(source: Path, n: int, gates: GateSettings, rng: np.random.Generator) -> list[Review]:
    """The product line as the run replays it: at most ``n`` reviews at the file's class mix, in ``rng``'s order.
    The ``i``-th is sent as request ``review-<i>`` (:func:`review_index`)."""
    rows = natural_sample(load_reviews([source], gates, LoadStats()), n)
    return [rows[i] for i in rng.permutation(len(rows))]


def review_index(request_id: str) -> int:
    return int(request_id.removeprefix("review-"))


def stored_run(run_dir: Path) -> tuple[dict[str, Any], Settings]:
    """A finished run (its ``--out`` folder): the result it wrote, and settings pointing at its data dir, where its
    labels and labelling sample are, for experiments that look at the same run again."""
    (result_file,) = run_dir.glob("finetune_*.json")
    return json.loads(result_file.read_text()), load_settings(paths={"data_dir": run_dir / "data"})


def paired_intervals(
    y: np.ndarray, probs: dict[str, np.ndarray], gate: float, n_boot: int, rng: np.random.Generator
) -> dict[str, dict[str, dict[str, float]]]:
    """Each model's figures with a percentile 95% interval, and the challenger minus the champion, on the same
    resampled reviews."""
    point = {k: figures(y, p, *decide(p, gate)) for k, p in probs.items()}
    boots: dict[str, list[list[float]]] = {k: [] for k in probs}
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        for k, p in probs.items():
            f = figures(y[i], p[i], *decide(p[i], gate))
            boots[k].append([f[s] for s in SHOWN])
    arr = {k: np.array(v) for k, v in boots.items()}
    arr["difference"] = arr["challenger"] - arr["champion"]
    point["difference"] = {s: point["challenger"][s] - point["champion"][s] for s in SHOWN}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for k, a in arr.items():
        out[k] = {}
        for j, s in enumerate(SHOWN):
            lo, hi = np.nanpercentile(a[:, j], [2.5, 97.5])
            out[k][s] = {"mean": round(float(point[k][s]), 4), "lo": round(float(lo), 4), "hi": round(float(hi), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings()
    # The replay measures the model, not this shared box's load: the resource guard never sheds tier 1 here.
    settings = settings.model_copy(
        update={"gates": settings.gates.model_copy(update={"max_cpu_percent": 100.0, "max_memory_percent": 100.0})}
    )
    name = settings.model.name
    registry = AliasRegistry(name)
    champion = registry.resolve_serving_tag()
    if champion is None:
        print(
            f"no champion of {name} in {settings.paths.data_dir}'s store: train the fold model first", file=sys.stderr
        )
        return 2
    if settings.paths.human_labels.exists() or settings.paths.labelling_sample.exists():
        print(f"{settings.paths.data_dir} already holds labels or a sample: use an empty data dir", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    rows = replay_stream(args.source, args.stream, settings.gates, rng)
    texts = [r.text for r in rows]
    y = np.array([r.y for r in rows])
    print(
        f"{args.source.name}: {len(rows)} reviews, classes {np.bincount(y, minlength=3).tolist()}; champion {champion}"
    )

    model = SentimentModel.from_store(champion, num_threads=settings.model.scoring_threads)
    t0 = time.monotonic()
    served = model.predict(texts)
    cfg = product_settings(len(rows), args.labels, args.random_fraction, np.array([margin(p) for p in served]))
    sample = LabellingSample(
        settings.paths.labelling_sample, cfg, text_masker(settings.privacy), random.Random(args.seed)
    )
    chain = Chain(settings, model, guard=ResourceGuard(100.0, 100.0, 60.0), sample=sample)
    statuses: dict[str, int] = {}
    for start in range(0, len(rows), 64):
        ids = [f"review-{i}" for i in range(start, min(start + 64, len(rows)))]
        for t in chain.classify_many(texts[start : start + 64], ids):
            status = t.prediction.status.value
            statuses[status] = statuses.get(status, 0) + 1
    replay_s = time.monotonic() - t0
    picked = sample.read()
    print(f"replayed through the chain in {replay_s:.0f}s: {statuses}; sampled {len(picked)} ({cfg})")

    for rec in picked:  # the operator's label is the review's star label
        save_label(
            settings.paths.human_labels, rec.request_id, rec.text, LABELS[y[review_index(rec.request_id)]], "eval"
        )
    labelled = {review_index(rec.request_id) for rec in picked}
    selection = {s: sum(r.selection == s for r in picked) for s in ("margin", "random")}

    t1 = time.monotonic()
    retrain_argv = ["--from", "champion", "--train-budget-s", str(args.budget_s)]
    rc = subprocess.run([sys.executable, "-m", "scripts.retrain", *retrain_argv], check=False).returncode
    finetune_s = time.monotonic() - t1
    challenger = registry.state().challenger
    if rc != 0 or challenger is None:
        print(f"sentiment-retrain --from champion failed (exit {rc})", file=sys.stderr)
        return 1
    print(f"fine-tune: {finetune_s:.0f}s wall, challenger {challenger}")

    rest = np.array([i for i in range(len(rows)) if i not in labelled])
    adapted = SentimentModel.from_store(challenger, num_threads=settings.model.scoring_threads)
    gate = settings.gates.confidence_gate
    probs = {"champion": served[rest], "challenger": adapted.predict([texts[i] for i in rest])}
    on_rest = paired_intervals(y[rest], probs, gate, args.bootstrap, rng)
    report = run_gate(name, settings, dry_run=True, command="sentiment-models gate --dry-run")
    scores = {"champion": report.champion_score, "challenger": report.challenger_score}
    parts = {k: {p: v.model_dump() for p, v in s.parts.items()} for k, s in scores.items()}
    base = {k: s.parts["base"].macro_f1 for k, s in scores.items()}
    meta = adapted.metadata.adaptation
    missed = failed(report)
    verdict = "would promote" if report.passed else ("not enough evidence" if missed == ["evidence"] else "refused")
    result: dict[str, Any] = {
        "source": args.source.name,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "champion": champion,
        "challenger": challenger,
        "stream": {
            "reviews": len(rows),
            "classes": dict(zip(LABELS, np.bincount(y, minlength=3).tolist(), strict=True)),
        },
        "chain_statuses": statuses,
        "sample": {
            "labels": len(picked),
            "selection": selection,
            "max_margin": cfg.max_margin,
            "random_share": cfg.random_share,
        },
        "label_classes": dict(zip(LABELS, np.bincount(y[sorted(labelled)], minlength=3).tolist(), strict=True)),
        "fine_tune": {"command": "sentiment-retrain " + " ".join(retrain_argv), "wall_s": round(finetune_s, 1), **meta},
        "rest": {
            "reviews": len(rest),
            "classes": dict(zip(LABELS, np.bincount(y[rest], minlength=3).tolist(), strict=True)),
        },
        "on_rest": on_rest,
        "base_macro_f1": base | {"loss": round(base["champion"] - base["challenger"], 4)},
        "gate": {
            "mode": report.mode,
            "verdict": verdict,
            "failed": missed,
            "passed": report.passed,
            "action": report.action,
            "detail": report.action_detail,
            "checks": [c.model_dump() for c in report.checks],
            "parts": parts,
            "bootstrap": report.bootstrap.model_dump(),
            "report_dir": report.report_dir,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"finetune_{args.source.name.split('.')[0]}.json"
    path.write_text(json.dumps(result, indent=1))
    c, a, d = (on_rest[k]["macro_f1"] for k in ("champion", "challenger", "difference"))
    print(
        f"on the {len(rest)} unlabelled reviews: macro-F1 champion {c['mean']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}], "
        f"fine-tuned {a['mean']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}], difference {d['mean']:+.3f} "
        f"[{d['lo']:+.3f}, {d['hi']:+.3f}]; base macro-F1 {result['base_macro_f1']}; fine-tune {finetune_s:.0f}s; "
        f"gate (dry run): {verdict} {missed}\n-> {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
