"""The behaviour suite (training.behaviour) on a stored version, through the whole chain as serving runs it:
``python -m experiments.evaluate_behaviour --model review-sentiment:TAG``.

Loads the version the way the transformer runner does (backend, threads), runs every case through the in-process
:class:`fallback.chain.Chain` (gates, language and nonsense check, tier 1, confidence gate, rules, human queue in
a temporary folder), prints pass rates per category against the targets and writes
``reports/behaviour/<name>.json``. Unless ``--no-store``, the pass rates are stored in the version's metadata as
``metrics.behaviour`` (``/model/info`` and the promotion report show them). ``SENTIMENT_GATES__*`` settings apply,
so a gate lever is measured by running it again with the variable set.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="stored version (name:version); default: the champion of the settings' model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-template", type=int, default=40, help="cases per template (the suite's size)")
    p.add_argument("--run-name", help="report file name (default: the model's version)")
    p.add_argument("--output-dir", type=Path, help="default: reports/behaviour (the committed figures)")
    p.add_argument("--no-store", action="store_true", help="do not write the pass rates into the version's metadata")
    p.add_argument(
        "--real-per-file",
        type=int,
        default=0,
        help="also run this many real English reviews per file (with stars) through the same chain: what a gate "
        "lever costs on real reviews (share answered ok, accuracy of those answers)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from fallback.chain import Chain
    from fallback.guard import ResourceGuard
    from sentiment.model.aliases import AliasRegistry
    from sentiment.model.registry import attach_metric
    from sentiment.model.serving import store_loader
    from sentiment.settings import PathSettings, load_settings
    from training.behaviour import TARGETS, generate, score

    console = Console()
    settings = load_settings()
    tag = args.model or AliasRegistry(settings.model.name).resolve_serving_tag()
    if tag is None:
        console.print(f"no stored version of {settings.model.name}: train one or pass --model")
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        # The human queue and the ONNX cache of this run stay out of the service's data folder.
        run_settings = settings.model_copy(update={"paths": PathSettings(data_dir=Path(scratch))})
        model = store_loader(run_settings)(tag)
        # Never shed to the rules for load: the suite measures behaviour, and this box is shared.
        chain = Chain(run_settings, model, guard=ResourceGuard(100.0, 100.0, 60.0))
        cases = generate("suite", args.seed, args.per_template)
        console.print(f"{len(cases)} cases through the chain on {model.tag} ({settings.service.backend})")
        t0 = time.perf_counter()
        report = score(
            lambda texts: [t.prediction for t in chain.classify_many(texts)],
            cases,
            model.tag,
            args.seed,
            run_settings.gates.confidence_gate,
        )
        report.seconds = time.perf_counter() - t0
        real = real_reviews(chain, settings, args.real_per_file) if args.real_per_file else None
    out_dir = args.output_dir or settings.paths.committed_reports_dir / "behaviour"
    out = out_dir / f"{args.run_name or model.tag.replace(':', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**report.model_dump(mode="json"), "real_reviews": real}, indent=1, ensure_ascii=False))

    table = Table(title=f"behaviour suite v{report.suite_version} on {report.model} ({report.seconds:.0f} s)")
    for col in ("category", "cases", "pass rate", "target", "met", "answers"):
        table.add_column(col)
    for cat, s in report.categories.items():
        table.add_row(
            cat,
            str(s.n),
            f"{s.pass_rate:.1%}",
            f">={TARGETS[cat]:.0%}" if cat in TARGETS else "-",
            {True: "yes", False: "NO", None: "-"}[s.met],
            ", ".join(f"{k} {v}" for k, v in sorted(s.statuses.items(), key=lambda kv: -kv[1])[:3]),
        )
    console.print(table)
    for cat, s in report.categories.items():
        console.print(f"[bold]{cat}[/] by subtype: " + ", ".join(f"{k} {v:.0%}" for k, v in s.by_subtype.items()))
    if real:
        console.print(
            f"real reviews ({real['n']}): ok {real['ok_share']:.1%}, accuracy of ok answers {real['ok_accuracy']:.1%}, "
            f"macro-F1 of ok answers {real['ok_macro_f1']:.3f}; "
            + ", ".join(f"{k} {v}" for k, v in sorted(real["statuses"].items(), key=lambda kv: -kv[1])[:5])
        )
        mx = real["mixed_sentiment"]
        console.print(
            f"sent down the chain as mixed_sentiment: {mx['n']} ({mx['n'] / max(1, real['n']):.1%}); tier 1's "
            f"label for them was right {mx['tier1_label_accuracy']:.1%}; answered {mx['answers']}"
        )
    if not args.no_store:
        attach_metric(model.tag, "behaviour", report.metadata_summary())
        console.print(f"stored as metrics.behaviour of {model.tag}")
    console.print(f"wrote {out}")
    return 0


def real_reviews(chain: Any, settings: Any, per_file: int) -> dict[str, Any]:
    """Evenly spaced English reviews with stars (as the gates' evaluation samples them) through the chain."""
    from collections import Counter

    from experiments.evaluate_gates import ENGLISH, _sample
    from fallback.decide import top
    from sentiment.contract import LABELS, Reason, Status, star_to_label
    from training.evaluate import metrics

    rows = [
        (text, truth)
        for name in ENGLISH
        for text, rating in _sample(settings.paths.shared_data_dir / name, per_file, settings)
        if (truth := star_to_label(rating)) is not None
    ]
    traced = [t for i in range(0, len(rows), 64) for t in chain.classify_many([r[0] for r in rows[i : i + 64]])]
    answers = [t.prediction for t in traced]
    ok = [(a.label, truth) for a, (_, truth) in zip(answers, rows, strict=True) if a.status is Status.ok and a.label]
    m = metrics([LABELS.index(t.value) for _, t in ok], [LABELS.index(p.value) for p, _ in ok]) if ok else None
    # What the clause check took from tier 1: how often its confident label was right, and what was answered instead.
    mixed = [
        (t, truth)
        for t, (_, truth) in zip(traced, rows, strict=True)
        # the trigger: a person's queue record keeps it, a rules answer carries it as its reason code
        if (t.escalation.reason_code if t.escalation else t.prediction.reason_code) == Reason.mixed_sentiment
    ]
    return {
        "n": len(rows),
        "ok_share": len(ok) / max(1, len(rows)),
        "ok_accuracy": sum(p is t for p, t in ok) / max(1, len(ok)),
        "ok_macro_f1": m.macro_f1 if m else 0.0,
        "statuses": dict(Counter(f"{a.status.value}:{a.reason_code.value if a.reason_code else '-'}" for a in answers)),
        "mixed_sentiment": {
            "n": len(mixed),
            "tier1_label_accuracy": sum(
                bool(t.trace.model and top(t.trace.model)[0] == truth.value) for t, truth in mixed
            )
            / max(1, len(mixed)),
            "answers": dict(
                Counter(
                    f"{t.prediction.reason_code.value if t.prediction.reason_code else '-'}:"
                    f"{'right' if t.prediction.label is truth else 'wrong' if t.prediction.label else 'person'}"
                    for t, truth in mixed
                )
            ),
        },
    }


if __name__ == "__main__":
    raise SystemExit(main())
