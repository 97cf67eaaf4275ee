"""Leave-one-source-out (LOSO) evaluation: how the model does on a product domain it has never seen.

Each fold holds out one source that has 3-star reviews, trains on all the others (Blitzer and the tiny sources
included), calibrates on the training side's validation split (natural mix of the training sources, never the
held-out one) and tests on the held-out source at its natural class mix (evenly sampled, capped). An in-domain
test slice of the training sources is scored next to it, so the domain gap is visible.

The same trained fold is read under several decision variants, all as the chain would serve them
(:func:`training.chain_view.chain_decisions` through ``decide``):
- ``served``: calibrated probabilities, the configured confidence gate, no neutral band;
- ``band``: the same with the spec's neutral band (a confident-but-not-very answer becomes neutral);
- ``tuned_bias``: an extra per-class bias on top of calibration, chosen on validation to maximise macro-F1 while
  the gate still lets ``min_coverage`` of reviews through (servable as it is: it is a ``class_bias``).

Fold-averaged figures carry bootstrap 95% intervals: reviews are resampled within each fold, the folds averaged.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from sentiment.contract import LABELS
from sentiment.language_id import detect_language
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import ModelMetadata
from sentiment.outputs import ModelOutput
from sentiment.settings import GateSettings
from training.calibrate import Calibration, calibrate, reliability
from training.config import TrainConfig
from training.data import (
    Review,
    balanced_cap,
    behaviour_examples,
    cap_source_share,
    cap_val,
    drop_polar_neutral,
    split_stratified,
)
from training.decision import GRID, macro_f1, prf, shift, tune_bias
from training.fine_tune import TrainResult, fine_tune

NEG, NEU, POS = range(len(LABELS))
# Per review: the tier that answered ("model" | "rules" | "human") and its label (None for the human queue).
DecideFn = Callable[[Sequence[str], Sequence[ModelOutput], GateSettings], Sequence[tuple[str, str | None, str]]]

# The targets the LOSO average must meet for unseen domains: (figure, comparison, threshold).
TARGETS: dict[str, tuple[str, float]] = {
    "macro_f1": (">=", 0.70),
    "ok_negative_precision": (">=", 0.75),
    "ok_negative_recall": (">=", 0.85),
    "coverage": (">=", 0.80),
    "ok_neutral_recall": (">=", 0.50),
    "ok_neutral_precision": (">=", 0.50),
    "binary_accuracy": (">=", 0.95),
    "ece": ("<=", 0.03),
}


class LosoConfig(BaseModel):
    train: TrainConfig  # per-fold training (max_train / train_budget_s make a reduced budget)
    folds: list[str] = []  # held-out sources; empty = every eligible one
    min_test_neutral: int = 20  # a source needs this many 3-star reviews to be a fold (PDS US has 5)
    test_cap: int = 1500  # held-out reviews per fold, evenly sampled at the source's natural mix
    in_domain_frac: float = 0.05
    in_domain_cap: int = 1000
    neutral_band: float = 0.75  # the spec's band, for the ``band`` variant
    min_coverage: float = 0.80  # the ``tuned_bias`` search keeps at least this share above the gate on validation
    bias_grid: list[float] = list(GRID)
    bootstrap: int = 1000


class VariantResult(BaseModel):
    bias: list[float]  # added to the calibrated log-probabilities
    band: float | None
    pred: list[int]  # label for every test review (band applied)
    answer: list[int]  # tier-1 label where the model tier answered, -1 where rules or the human queue did


class FoldResult(BaseModel):
    source: str
    train_sources: dict[str, int]
    val_n: int
    test_labels: dict[str, int]
    training: TrainResult
    calibration: Calibration
    y: list[int]
    probs: list[list[float]]  # calibrated test probabilities
    # Validation labels and calibrated probabilities, so decision rules can be compared again without training.
    val_y: list[int] = []
    val_probs: list[list[float]] = []
    variants: dict[str, VariantResult]
    in_domain: dict[str, float]
    seconds: float


class Interval(BaseModel):
    mean: float
    lo: float
    hi: float


class LosoReport(BaseModel):
    config: dict[str, object]
    gate: float
    excluded: dict[str, str]
    folds: list[FoldResult]
    summary: dict[str, dict[str, Interval]]  # variant -> figure -> fold average with 95% CI
    per_fold: dict[str, dict[str, dict[str, float]]]  # variant -> source -> figures
    in_domain: dict[str, float]  # fold average of the in-domain slice (served variant)
    targets: dict[str, dict[str, bool]]  # variant -> target -> met by the point estimate
    seconds: float


# --- data --------------------------------------------------------------------------------------------------------


def eligible_sources(reviews: Sequence[Review], min_neutral: int) -> tuple[list[str], dict[str, str]]:
    """Sources with enough 3-star reviews to be a fold, and why the others are not."""
    neutral = Counter(r.source for r in reviews if r.y == NEU)
    ok, excluded = [], {}
    for source in sorted({r.source for r in reviews}):
        if neutral[source] >= min_neutral:
            ok.append(source)
        else:
            excluded[source] = f"{neutral[source]} three-star reviews (< {min_neutral}): trains every fold, tests none"
    return ok, excluded


def natural_sample(rows: Sequence[Review], cap: int) -> list[Review]:
    """At most ``cap`` rows, evenly spaced within each class, class shares as in ``rows`` (largest remainder)."""
    if len(rows) <= cap:
        return list(rows)
    by_label: dict[int, list[Review]] = defaultdict(list)
    for r in rows:
        by_label[r.y].append(r)
    exact = {k: cap * len(g) / len(rows) for k, g in by_label.items()}
    quota = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - quota[k], reverse=True)[: cap - sum(quota.values())]:
        quota[k] += 1
    return [g[i * len(g) // quota[k]] for k, g in sorted(by_label.items()) for i in range(quota[k])]


class EnglishGate:
    """The serving language gate with a memo, since the same training rows recur across folds."""

    def __init__(self, gates: GateSettings) -> None:
        self.gates = gates
        self.seen: dict[str, bool] = {}

    def __call__(self, rows: Sequence[Review]) -> list[Review]:
        for r in rows:
            if r.text not in self.seen:
                self.seen[r.text] = detect_language(r.text, self.gates).accepted
        return [r for r in rows if self.seen[r.text]]


def fold_data(
    reviews: Sequence[Review],
    held_out: str,
    cfg: LosoConfig,
    seed: int,
    reads_polar: Callable[[str], bool] | None = None,
) -> dict[str, list[Review]]:
    """train / val / in_domain from every other source; test = the held-out source at its natural mix.
    ``reads_polar`` (required by ``neutral_noise="drop_rules_polar"``) filters the training side's 3-star rows."""
    rng = random.Random(f"{seed}-{held_out}")
    t = cfg.train
    others = [r for r in reviews if r.source != held_out]
    parts = split_stratified(others, t.model_copy(update={"test_frac": cfg.in_domain_frac}), rng)
    train = parts["train"]
    if t.neutral_noise == "drop_rules_polar":
        if reads_polar is None:
            raise ValueError("neutral_noise='drop_rules_polar' needs the keyword rules' reads_polar")
        train = drop_polar_neutral(train, reads_polar)
    train = cap_source_share(train, t.max_source_share, rng)
    if t.max_train and len(train) > t.max_train:
        train = balanced_cap(train, t.max_train, rng, t.balance_sources)
    val = cap_source_share(parts["val"], t.max_source_share, rng)
    if t.max_val and len(val) > t.max_val:
        val = cap_val(val, t.max_val, rng, t.balance_val_sources)
    in_domain = natural_sample(cap_source_share(parts["test"], t.max_source_share, rng), cfg.in_domain_cap)
    test = natural_sample([r for r in reviews if r.source == held_out], cfg.test_cap)
    return {"train": train, "val": val, "in_domain": in_domain, "test": test}


# --- decisions and figures -----------------------------------------------------------------------------------------


def figures(y: np.ndarray, probs: np.ndarray, pred: np.ndarray, answer: np.ndarray) -> dict[str, float]:
    """One fold's figures: all reviews (macro-F1, per class, neg-vs-pos, ECE) and the tier-1 answers."""
    p, r = prf(y, pred)
    polar = (y == NEG) | (y == POS)
    m = answer >= 0
    op, orc = prf(y[m], answer[m])
    out = {"macro_f1": macro_f1(y, pred), "accuracy": float((pred == y).mean())}
    out |= {f"{name}_precision": float(p[i]) for i, name in enumerate(LABELS)}
    out |= {f"{name}_recall": float(r[i]) for i, name in enumerate(LABELS)}
    out |= {
        "binary_accuracy": float((np.where(probs[polar, POS] >= probs[polar, NEG], POS, NEG) == y[polar]).mean()),
        "ece": reliability(probs, y)[0],
        "coverage": float(m.mean()),
        "ok_macro_f1": macro_f1(y[m], answer[m]),
        "ok_negative_precision": float(op[NEG]),
        "ok_negative_recall": float(orc[NEG]),
        "ok_neutral_precision": float(op[NEU]),
        "ok_neutral_recall": float(orc[NEU]),
    }
    return out


def _variant_arrays(fold: FoldResult, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    v = fold.variants[name]
    return np.array(fold.y), shift(np.array(fold.probs), v.bias), np.array(v.pred), np.array(v.answer)


def summarise(
    folds: Sequence[FoldResult], variant: str, n_boot: int, seed: int
) -> tuple[dict[str, Interval], dict[str, dict[str, float]]]:
    """Fold-averaged figures with percentile 95% CIs (reviews resampled within folds), and the per-fold figures."""
    arrays = [_variant_arrays(f, variant) for f in folds]
    per_fold = {f.source: figures(*a) for f, a in zip(folds, arrays, strict=True)}
    names = list(next(iter(per_fold.values())))
    rng = np.random.default_rng(seed)
    boots = np.zeros((n_boot, len(names)))
    for b in range(n_boot):
        rows = []
        for y, probs, pred, answer in arrays:
            i = rng.integers(0, len(y), len(y))
            rows.append([figures(y[i], probs[i], pred[i], answer[i])[k] for k in names])
        boots[b] = np.mean(rows, axis=0)
    summary = {}
    for j, k in enumerate(names):
        lo, hi = np.percentile(boots[:, j], [2.5, 97.5]) if n_boot else (np.nan, np.nan)
        summary[k] = Interval(mean=float(np.mean([v[k] for v in per_fold.values()])), lo=float(lo), hi=float(hi))
    return summary, per_fold


def targets_met(summary: dict[str, Interval]) -> dict[str, bool]:
    return {k: (summary[k].mean >= t if op == ">=" else summary[k].mean <= t) for k, (op, t) in TARGETS.items()}


# --- one fold ------------------------------------------------------------------------------------------------------


def run_fold(
    cfg: LosoConfig,
    data: dict[str, list[Review]],
    held_out: str,
    gates: GateSettings,
    decide: DecideFn,
    log: Callable[[str], object],
) -> FoldResult:
    t0 = time.monotonic()
    t = cfg.train
    with tempfile.TemporaryDirectory(prefix=f"loso-{held_out}-") as tmp:
        training = fine_tune(t, data["train"], data["val"], Path(tmp))
        meta = ModelMetadata(base_model=t.base_model, max_length=t.max_length, profile=t.profile)
        model = SentimentModel(Path(tmp), meta, num_threads=t.num_threads, device=t.device)
        val_logits, _ = model.logits([r.text for r in data["val"]])
        val_y = np.array([r.y for r in data["val"]])
        cal = calibrate(val_logits, val_y)
        model.metadata = meta.model_copy(update={"temperature": cal.temperature, "class_bias": cal.class_bias})
        val_probs = model.calibrated(val_logits)
        texts = [r.text for r in data["test"]]
        logits, unk = model.logits(texts)
        outputs = model.outputs(texts, logits, unk)
        dom_logits, _ = model.logits([r.text for r in data["in_domain"]])
    probs = np.array([o.probs for o in outputs])
    y = np.array([r.y for r in data["test"]])
    tuned = tune_bias(val_probs, val_y, gates.confidence_gate, cfg.min_coverage, cfg.bias_grid)
    # What the profile serves: its own decision bias (training.decision) when it tunes one, else none.
    served = (
        tune_bias(val_probs, val_y, gates.confidence_gate, t.decision_min_coverage)
        if t.decision_bias
        else [0.0, 0.0, 0.0]
    )
    variants = {}
    for name, bias, band in (
        ("served", served, None),
        ("band", [0.0, 0.0, 0.0], cfg.neutral_band),
        ("tuned_bias", tuned, None),
    ):
        p = shift(probs, bias)
        vg = gates.model_copy(update={"neutral_band": band})
        outs = [o.model_copy(update={"probs": q.tolist()}) for o, q in zip(outputs, p, strict=True)]
        decisions = decide(texts, outs, vg)
        pred = p.argmax(1)
        if band is not None:
            pred = np.where(p.max(1) < band, NEU, pred)
        answer = [LABELS.index(label) if tier == "model" and label else -1 for tier, label, _ in decisions]
        variants[name] = VariantResult(bias=bias, band=band, pred=pred.tolist(), answer=answer)
    dom_y = np.array([r.y for r in data["in_domain"]])
    dom_probs = model.calibrated(dom_logits)
    dom = figures(dom_y, dom_probs, dom_probs.argmax(1), np.full(len(dom_y), -1))
    fold = FoldResult(
        source=held_out,
        train_sources=dict(sorted(Counter(r.source for r in data["train"]).items())),
        val_n=len(data["val"]),
        test_labels=dict(sorted(Counter(r.label.value for r in data["test"]).items())),
        training=training,
        calibration=cal,
        y=y.tolist(),
        probs=np.round(probs, 6).tolist(),
        variants=variants,
        val_y=val_y.tolist(),
        val_probs=np.round(val_probs, 6).tolist(),
        in_domain={k: dom[k] for k in ("macro_f1", "accuracy", "binary_accuracy", "ece")},
        seconds=round(time.monotonic() - t0, 1),
    )
    f = figures(y, probs, np.array(variants["served"].pred), np.array(variants["served"].answer))
    log(
        f"fold {held_out}: macro-F1 {f['macro_f1']:.3f} (in-domain {fold.in_domain['macro_f1']:.3f}), coverage "
        f"{f['coverage']:.1%}, ok neg P/R {f['ok_negative_precision']:.2f}/{f['ok_negative_recall']:.2f}, ok neu "
        f"P/R {f['ok_neutral_precision']:.2f}/{f['ok_neutral_recall']:.2f}, ECE {f['ece']:.3f} in {fold.seconds}s"
    )
    return fold


def report_from_folds(
    cfg: LosoConfig, gates: GateSettings, excluded: dict[str, str], folds: Sequence[FoldResult], seconds: float
) -> LosoReport:
    """Fold averages, intervals and targets over the given folds."""
    summary, per_fold = {}, {}
    for variant in folds[0].variants:
        summary[variant], per_fold[variant] = summarise(folds, variant, cfg.bootstrap, cfg.train.seed)
    return LosoReport(
        config=cfg.model_dump(mode="json"),
        gate=gates.confidence_gate,
        excluded=excluded,
        folds=list(folds),
        summary=summary,
        per_fold=per_fold,
        in_domain={k: float(np.mean([f.in_domain[k] for f in folds])) for k in folds[0].in_domain},
        targets={v: targets_met(s) for v, s in summary.items()},
        seconds=round(seconds, 1),
    )


def merge_reports(reports: Sequence[LosoReport]) -> LosoReport:
    """One report over the folds of several runs of the same settings (folds run as separate processes)."""
    first = reports[0]
    for r in reports[1:]:
        if {**r.config, "folds": []} != {**first.config, "folds": []} or r.gate != first.gate:
            raise ValueError("runs differ in more than their folds: not one experiment")
    folds = [f for r in reports for f in r.folds]
    if len({f.source for f in folds}) != len(folds):
        raise ValueError("a fold appears twice")
    cfg = LosoConfig.model_validate({**first.config, "folds": [f.source for f in folds]})
    gates = GateSettings(confidence_gate=first.gate)
    return report_from_folds(cfg, gates, first.excluded, folds, sum(r.seconds for r in reports))


def run_loso(
    cfg: LosoConfig,
    reviews: Sequence[Review],
    gates: GateSettings,
    decide: DecideFn,
    log: Callable[[str], object] = print,
    reads_polar: Callable[[str], bool] | None = None,
) -> LosoReport:
    t0 = time.monotonic()
    eligible, excluded = eligible_sources(reviews, cfg.min_test_neutral)
    unknown = set(cfg.folds) - set(eligible)
    if unknown:
        raise ValueError(f"not eligible as folds: {sorted(unknown)} (eligible: {eligible})")
    english = EnglishGate(gates)
    folds = []
    for source in cfg.folds or eligible:
        data = {k: english(v) for k, v in fold_data(reviews, source, cfg, cfg.train.seed, reads_polar).items()}
        if cfg.train.augment_behaviour:  # as training.data.build_dataset adds it: after the cap and the gate
            t = cfg.train
            data["train"] += behaviour_examples(t.augment_behaviour, t.seed, gates, t.augment_categories)
        log(
            f"fold {source}: train {len(data['train'])}, val {len(data['val'])}, in-domain "
            f"{len(data['in_domain'])}, test {len(data['test'])}"
        )
        folds.append(run_fold(cfg, data, source, gates, decide, log))
    return report_from_folds(cfg, gates, excluded, folds, time.monotonic() - t0)


# --- report --------------------------------------------------------------------------------------------------------

FIGURES_SHOWN = (
    "macro_f1",
    "negative_precision",
    "negative_recall",
    "neutral_precision",
    "neutral_recall",
    "binary_accuracy",
    "ece",
    "coverage",
    "ok_negative_precision",
    "ok_negative_recall",
    "ok_neutral_precision",
    "ok_neutral_recall",
)


def _train(r: LosoReport) -> dict[str, Any]:
    """The per-fold training settings recorded in the report."""
    train = r.config["train"]
    assert isinstance(train, dict)
    return train


def render_markdown(r: LosoReport) -> str:
    t = _train(r)
    lines = [
        f"LOSO over {len(r.folds)} held-out sources ({', '.join(f.source for f in r.folds)}); per fold "
        f"max_train {t['max_train']}, max_length {t['max_length']}, budget {t['train_budget_s']} s, seed "
        f"{t['seed']}; test capped at {r.config['test_cap']} per source at its natural mix; gate {r.gate:.2f}. "
        f"Not folds: " + ("; ".join(f"{k} ({v})" for k, v in r.excluded.items()) or "none") + ".",
        "",
        "| figure | target | " + " | ".join(r.summary) + " |",
        "| --- | --- | " + " | ".join("---" for _ in r.summary) + " |",
    ]
    for k in FIGURES_SHOWN:
        target = f"{TARGETS[k][0]} {TARGETS[k][1]:.2f}" if k in TARGETS else ""
        cells = []
        for v, s in r.summary.items():
            met = "" if k not in TARGETS else (" ✓" if r.targets[v][k] else " ✗")
            cells.append(f"{s[k].mean:.3f} [{s[k].lo:.3f}, {s[k].hi:.3f}]{met}")
        lines.append(f"| {k} | {target} | " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            f"In-domain slice of the training sources (served variant, fold average): macro-F1 "
            f"{r.in_domain['macro_f1']:.3f}, neg-vs-pos {r.in_domain['binary_accuracy']:.3f}, "
            f"ECE {r.in_domain['ece']:.3f}."
        ),
        "",
        (
            "| held-out source | test n (neg/neu/pos) | train s | macro-F1 LOSO | macro-F1 in-domain | coverage "
            "| ok neg P / R | ok neu P / R | ECE |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for f in r.folds:
        x = r.per_fold["served"][f.source]
        n = "/".join(str(f.test_labels.get(c, 0)) for c in LABELS)
        lines.append(
            f"| {f.source} | {n} | {f.training.seconds:.0f} | {x['macro_f1']:.3f} | {f.in_domain['macro_f1']:.3f} "
            f"| {x['coverage']:.1%} | {x['ok_negative_precision']:.2f} / {x['ok_negative_recall']:.2f} "
            f"| {x['ok_neutral_precision']:.2f} / {x['ok_neutral_recall']:.2f} | {x['ece']:.3f} |"
        )
    lines += ["", f"Wall time {r.seconds / 60:.1f} min.", "", "![per-fold figures](loso.png)"]
    return "\n".join(lines) + "\n"


def plot_folds(r: LosoReport, path: Path) -> Path:
    """Per held-out source: macro-F1 (LOSO vs in-domain) and the tier-1 answers' negative precision and coverage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f.source for f in r.folds]
    served = r.per_fold["served"]
    series = {
        "macro-F1 in-domain": [f.in_domain["macro_f1"] for f in r.folds],
        "macro-F1 held out": [served[n]["macro_f1"] for n in names],
        "ok negative precision": [served[n]["ok_negative_precision"] for n in names],
        "ok neutral recall": [served[n]["ok_neutral_recall"] for n in names],
        "coverage": [served[n]["coverage"] for n in names],
    }
    h = 0.8 / len(series)
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 0.9 * len(names) + 2))
    for k, (label, values) in enumerate(series.items()):
        ax.barh(y + (k - len(series) / 2 + 0.5) * h, values, h, label=label)
    ax.axvline(TARGETS["macro_f1"][1], color="grey", ls="--", label="macro-F1 target")
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), title=f"leave-one-source-out, gate {r.gate:.2f}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


LEVER_FIGURES = (
    "macro_f1",
    "coverage",
    "ok_negative_precision",
    "ok_negative_recall",
    "ok_neutral_precision",
    "ok_neutral_recall",
    "binary_accuracy",
    "ece",
)


def lever_rows(runs: dict[str, LosoReport]) -> list[dict[str, object]]:
    """One row per (run, decision variant): the LOSO figures the issue optimises, with their intervals."""
    rows: list[dict[str, object]] = []
    for run, r in runs.items():
        t = _train(r)
        for variant, s in r.summary.items():
            rows.append(
                {
                    "run": run,
                    "variant": variant,
                    "folds": [f.source for f in r.folds],
                    "max_train": t["max_train"],
                    "max_length": t["max_length"],
                    "train_budget_s": t["train_budget_s"],
                    "seed": t["seed"],
                    "minutes": round(r.seconds / 60, 1),
                    "targets_met": sum(r.targets[variant].values()),
                    **{k: s[k].model_dump() for k in LEVER_FIGURES},
                }
            )
    return rows


def render_levers(rows: Sequence[dict[str, object]]) -> str:
    head = "| run | variant | " + " | ".join(LEVER_FIGURES) + f" | targets met (of {len(TARGETS)}) |"
    lines = [head, "|" + " --- |" * (len(LEVER_FIGURES) + 3)]
    for row in rows:
        cells = [f"{row[k]['mean']:.3f} [{row[k]['lo']:.3f}, {row[k]['hi']:.3f}]" for k in LEVER_FIGURES]  # type: ignore[index]
        lines.append(f"| {row['run']} | {row['variant']} | " + " | ".join(cells) + f" | {row['targets_met']} |")
    return "\n".join(lines) + "\n"


def metadata_summary(r: LosoReport, variant: str = "served") -> dict[str, object]:
    """What a registered model carries under ``metrics["loso"]`` (served by /model/info): the LOSO figures of the
    training profile it was made with (the folds' models, not its own weights), with intervals and targets."""
    t = _train(r)
    return {
        "variant": variant,
        "folds": [f.source for f in r.folds],
        "per_fold_budget": {k: t[k] for k in ("max_train", "max_length", "train_budget_s", "seed")},
        "gate": r.gate,
        "figures": {k: {m: round(v, 4) for m, v in iv.model_dump().items()} for k, iv in r.summary[variant].items()},
        "targets_met": r.targets[variant],
        "in_domain_macro_f1": round(r.in_domain["macro_f1"], 4),
    }


def render_metadata_summary(m: dict[str, Any]) -> list[str]:
    """The LOSO section of a trained model's ``summary.md`` (from :func:`metadata_summary`)."""
    figures, met = m["figures"], m["targets_met"]
    budget = ", ".join(f"{k} {v}" for k, v in m["per_fold_budget"].items())
    lines = [
        f"Leave-one-source-out, `{m['variant']}` decisions at gate {m['gate']:.2f}, {len(m['folds'])} folds "
        f"({', '.join(m['folds'])}); per fold {budget}. Fold averages with bootstrap 95% intervals; the folds' "
        f"models are trained with this profile, not this model's weights. In-domain macro-F1 "
        f"{m['in_domain_macro_f1']:.3f}.",
        "",
        "| figure | target | LOSO | met |",
        "| --- | --- | --- | --- |",
    ]
    for k in FIGURES_SHOWN:
        iv = figures[k]
        target = f"{TARGETS[k][0]} {TARGETS[k][1]:.2f}" if k in TARGETS else ""
        mark = ("yes" if met[k] else "no") if k in met else ""
        lines.append(f"| {k} | {target} | {iv['mean']:.3f} [{iv['lo']:.3f}, {iv['hi']:.3f}] | {mark} |")
    return lines
