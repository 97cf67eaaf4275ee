"""The drift experiments on the real review data: temporal splits, and injected shifts with a control.

    python -m experiments.evaluate_drift            # writes reports/drift_experiments.{json,md,png}

Temporal: early against late windows of the two dated Amazon sets (Musical Instruments 2004-2012 vs 2014,
Blitzer 2004-2005 vs 2006). Injected: the 2013 Musical Instruments reviews split at random into two halves (same
distribution, the control), then one known shift applied to the current half per experiment; each lists the
signal meant to catch it, so the table shows hits, misses and side effects.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from drift.detector import DetectOptions, detect_windows, signal_inputs
from drift.features import load_vocab
from drift.inject import Record, broken_client, markup_leak, mix_in
from drift.report import SIGNAL_NAMES, DriftReport
from drift.windows import WindowSpec, read_windows, window_from_records
from sentiment.jsonl import iter_records
from sentiment.settings import Settings, load_settings

MUSIC = "amazon2014_musical_instruments_5core.jsonl"
BLITZER = "blitzer_multidomain_sentiment.jsonl"
FOREIGN = ("zh_online_shopping_10_cats.jsonl", "zh_waimai_10k.jsonl", "amazon_reviews_pds_sample_fr.jsonl")


class Experiment(BaseModel):
    name: str
    kind: str  # "temporal" | "injected"
    description: str
    expected: list[str]  # signals meant to fire ([] for the control)
    report: DriftReport

    @property
    def hit(self) -> bool:
        return all(s in self.report.drifted_signals for s in self.expected)


class Shift(BaseModel):
    name: str
    description: str
    expected: list[str]


def _load(settings: Settings, name: str) -> list[dict[str, Any]]:
    return list(iter_records(settings.paths.shared_data_dir / name))


def temporal(settings: Settings, options: DetectOptions, vocab: frozenset[str], note: str) -> list[Experiment]:
    out = []
    cases = (
        ("Musical Instruments 2004-2012 vs 2014", MUSIC, "2004..2012", "2014..2014"),
        ("Blitzer 2004-2005 vs 2006", BLITZER, "2004..2005", "2006..2006"),
    )
    for title, name, ref, cur in cases:
        path = settings.paths.shared_data_dir / name
        specs = []
        for rng_text in (ref, cur):
            lo, hi = rng_text.split("..")
            specs.append(WindowSpec(label=f"{name} {rng_text}", path=path, start=lo, end=hi))
        w_ref, w_cur = read_windows(specs, vocab, settings.drift, settings.gates.confidence_gate, options.progress)
        report = detect_windows(w_ref, w_cur, settings, options, note)
        out.append(
            Experiment(
                name=f"temporal: {title}",
                kind="temporal",
                description="real early window against real late window",
                expected=[],
                report=report,
            )
        )
    return out


def shifts(settings: Settings) -> list[tuple[Shift, Callable[[list[Record], random.Random], list[Record]]]]:
    """The injected shifts, each with the signals it is meant to trigger."""
    music = _load(settings, MUSIC)
    negatives = [r for r in music if (r.get("rating") or 5) <= 2 and not str(r.get("timestamp", "")).startswith("2013")]
    foreign = [r for name in FOREIGN for r in _load(settings, name)]
    other_category = [r for r in _load(settings, BLITZER) if r.get("category") in ("books", "dvd")]
    return [
        (
            Shift(name="control", description="no shift: two random halves of the same reviews", expected=[]),
            lambda recs, rng: recs,
        ),
        (
            Shift(
                name="review bombing",
                description="30% of reviews replaced by real 1-2 star reviews",
                expected=["label_distribution"],
            ),
            lambda recs, rng: mix_in(recs, negatives, 0.30, rng),
        ),
        (
            Shift(
                name="markup leak",
                description="a parser stops stripping HTML: every text arrives with tags and entities",
                expected=["oov_rate"],
            ),
            lambda recs, rng: markup_leak(recs, 1.0, rng),
        ),
        (
            Shift(
                name="non-English flood",
                description="10% of reviews replaced by real Chinese and French reviews",
                expected=["non_english_rate"],
            ),
            lambda recs, rng: mix_in(recs, foreign, 0.10, rng),
        ),
        (
            Shift(
                name="category change",
                description="40% of reviews replaced by book and DVD reviews, same labels",
                expected=["embedding"],
            ),
            lambda recs, rng: mix_in(recs, other_category, 0.40, rng, keep_label=True),
        ),
        (
            Shift(
                name="broken client",
                description="5% of bodies empty, cut to 3 characters or mis-decoded",
                expected=["rejected_rate"],
            ),
            lambda recs, rng: broken_client(recs, 0.05, rng),
        ),
    ]


def injected(settings: Settings, options: DetectOptions, vocab: frozenset[str], note: str) -> list[Experiment]:
    rng = random.Random(settings.drift.seed)
    base: list[Record] = [r for r in _load(settings, MUSIC) if str(r.get("timestamp", "")).startswith("2013")]
    rng.shuffle(base)
    half = len(base) // 2
    ref_records, cur_records = base[:half], base[half:]
    gate_cut = settings.gates.confidence_gate
    ref = window_from_records("Musical Instruments 2013, random half A", ref_records, vocab, settings.drift, gate_cut)
    ref_inputs = signal_inputs(ref, settings, options)
    out = []
    for shift, apply in shifts(settings):
        shifted = apply(cur_records, random.Random(settings.drift.seed + 1))
        cur = window_from_records(f"half B + {shift.name}", shifted, vocab, settings.drift, gate_cut)
        report = detect_windows(ref, cur, settings, options, note, ref_inputs)
        out.append(
            Experiment(
                name=shift.name, kind="injected", description=shift.description, expected=shift.expected, report=report
            )
        )
    return out


def _cell(report: DriftReport, name: str) -> str:
    s = report.signals[name]
    if s.skipped:
        return "skipped"
    mark = "**FIRED**" if s.drifted else "no"
    return f"{mark} ({s.statistic:.3g})"


def markdown(experiments: Sequence[Experiment]) -> str:
    head = "| experiment | windows (n) | " + " | ".join(f"`{n}`" for n in SIGNAL_NAMES) + " | meant to fire | result |"
    lines = [head, "|" + " --- |" * (len(SIGNAL_NAMES) + 4)]
    for e in experiments:
        w = e.report.windows
        n = f"{w['reference'].n:,} / {w['current'].n:,}"
        meant = ", ".join(e.expected) or "nothing"
        if e.kind == "temporal":
            result = "drift in " + (", ".join(e.report.drifted_signals) or "nothing")
        elif e.expected:
            result = "hit" if e.hit else "MISS"
        else:
            result = "false alarm" if e.report.drift_detected else "quiet"
        cells = " | ".join(_cell(e.report, s) for s in SIGNAL_NAMES)
        lines.append(f"| {e.name} | {n} | {cells} | {meant} | {result} |")
    return (
        "\n".join(lines) + "\n\nCells: verdict (statistic). Statistics: OOV delta, KS p, JS divergence, "
        "low-confidence growth, MMD p, non-English delta, rejected delta.\n"
    )


def plot(experiments: Sequence[Experiment], path: Path) -> None:
    """Experiments x signals grid: red fired, green quiet, grey skipped; a box marks the signal meant to fire."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(13, 0.6 * len(experiments) + 2))
    for i, e in enumerate(experiments):
        for j, name in enumerate(SIGNAL_NAMES):
            s = e.report.signals[name]
            color = "#bbbbbb" if s.skipped else ("#d9534f" if s.drifted else "#5cb85c")
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=color, edgecolor="white"))
            text = "skipped" if s.skipped else f"{s.statistic:.2g}"
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=8)
            if name in e.expected:
                ax.add_patch(Rectangle((j + 0.04, i + 0.06), 0.92, 0.88, fill=False, edgecolor="black", lw=2))
    ax.set_xlim(0, len(SIGNAL_NAMES))
    ax.set_ylim(len(experiments), 0)
    ax.set_xticks([j + 0.5 for j in range(len(SIGNAL_NAMES))], SIGNAL_NAMES, rotation=20)
    ax.set_yticks([i + 0.5 for i in range(len(experiments))], [e.name for e in experiments])
    ax.set_title("Drift signals per experiment: red fired, green quiet, grey skipped; box = signal meant to fire")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="stored model tag (scores confidences, gives the training vocabulary)")
    p.add_argument("--no-embedding", action="store_true")
    p.add_argument("--out-dir", type=Path)
    args = p.parse_args(argv)
    settings = load_settings()
    options = DetectOptions(model_tag=args.model, embedding=not args.no_embedding, progress=True)
    vocab, note = load_vocab(settings, args.model)
    experiments = temporal(settings, options, vocab, note) + injected(settings, options, vocab, note)
    out = args.out_dir or settings.paths.committed_reports_dir
    out.mkdir(parents=True, exist_ok=True)
    payload = {"experiments": [e.model_dump(mode="json") for e in experiments]}
    (out / "drift_experiments.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    table = markdown(experiments)
    (out / "drift_experiments.md").write_text("# Drift experiments\n\n" + table, encoding="utf-8")
    plot(experiments, out / "drift_experiments.png")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
