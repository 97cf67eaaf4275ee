"""The promotion gate: does the challenger beat the champion on the same reviews, significantly, without its
confidence getting worse? (Spec section 10: "promoted if macro F1 improves without the confidence distribution
regressing", "a statistical significance test on the F1 difference".)

Both models score the frozen evaluation set (:mod:`training.evalset`) once each. Promotion needs all of:
- the paired bootstrap of the macro-F1 difference (the same resampled reviews for both models) gives a one-sided
  p-value below ``lifecycle.alpha``, and the difference exceeds ``lifecycle.min_macro_f1_gain``;
- the challenger's ECE and its share of answers below ``gates.confidence_gate`` (which go to the rules or a
  human) exceed the champion's by no more than their tolerances.
McNemar's exact test on per-review correctness is reported beside the bootstrap as a second opinion; it tests
accuracy, not macro-F1, so it does not decide.

An adapted challenger (recalibrated or fine-tuned from the champion on a product line's labels: its metadata has
``adaptation``) is judged where it was adapted to be better: the paired bootstrap and the gain run on the held-out
human labels alone (the product line), and the frozen base split only has to show that nothing else got worse: the
challenger may lose at most ``lifecycle.base_tolerance`` macro-F1 there. With fewer than
``lifecycle.min_target_labels`` held-out labels the gate says "not enough evidence" and promotes nothing.

Every run writes ``gate.json``, ``gate.png`` and ``gate.md`` to its own folder under the promotion reports
folder; :func:`last_report` reads the newest (what a dashboard shows).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy.stats import binomtest

from sentiment.contract import LABELS
from sentiment.model.aliases import AliasError, AliasRegistry
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import resolve
from sentiment.records import AliasChange, utc_now
from sentiment.settings import LifecycleSettings, Settings
from training.calibrate import reliability
from training.evalset import EvalSet, EvalSetChanged, HumanLabelStats, eval_spec_of, frozen_eval_set
from training.evaluate import metrics

REPORT_JSON = "gate.json"
K = len(LABELS)


class GateError(Exception):
    """The gate cannot run (no champion or challenger, no recorded evaluation set); the message says why."""


# --- statistics ----------------------------------------------------------------------------------------------


def macro_f1_batch(y: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Macro-F1 of each row of ``y``/``pred`` (shape (B, n)), as ``evaluate.metrics`` computes it for one; with
    ``weights`` (shape (n,)), each review counts that much in the confusion matrix."""
    b = y.shape[0]
    codes = (y * K + pred) + (np.arange(b) * K * K)[:, None]
    w = None if weights is None else np.broadcast_to(weights, y.shape).ravel()
    cm = np.bincount(codes.ravel(), weights=w, minlength=b * K * K).reshape(b, K, K)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denom = cm.sum(axis=2) + cm.sum(axis=1)  # 2tp + fn + fp
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
    return np.asarray(f1.mean(axis=1))


class Bootstrap(BaseModel):
    """Paired bootstrap of macro-F1(challenger) - macro-F1(champion) over the same resampled reviews."""

    difference: float  # on the evaluation set itself
    ci_low: float  # two-sided (1 - 2 alpha) percentile interval; ci_low is the one-sided (1 - alpha) lower bound
    ci_high: float
    ci_level: float
    p_value: float  # one-sided: share of resamples in which the challenger does not beat the champion
    resamples: int
    seed: int
    # Weighted (reviews drawn in proportion to their stream weight): how many reviews the weighted set is worth
    # (Kish: (sum w)^2 / sum w^2); None when every review counts once.
    effective_n: float | None = None


def paired_bootstrap(
    y: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    resamples: int,
    seed: int,
    alpha: float,
    chunk: int = 250,
    weights: np.ndarray | None = None,
) -> tuple[Bootstrap, np.ndarray]:
    """The figures and the resampled differences (for the plot); chunked so memory stays ``chunk x n``. With
    ``weights`` (each review's weight in the stream it was sampled from), reviews are drawn in proportion to them and
    the observed difference is weighted: the figures are the stream's, not the sample's."""
    y, champion, challenger = (np.asarray(a, dtype=np.int64) for a in (y, champion, challenger))
    rng = np.random.default_rng(seed)
    n = len(y)
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    diffs = []
    for start in range(0, resamples, chunk):
        size = (min(chunk, resamples - start), n)
        idx = rng.integers(0, n, size=size) if p is None else rng.choice(n, size=size, p=p)
        diffs.append(macro_f1_batch(y[idx], challenger[idx]) - macro_f1_batch(y[idx], champion[idx]))
    d = np.concatenate(diffs)
    observed = float(
        macro_f1_batch(y[None], challenger[None], weights)[0] - macro_f1_batch(y[None], champion[None], weights)[0]
    )
    effective = None if p is None else round(float(1.0 / np.sum(p**2)), 1)
    return Bootstrap(
        difference=observed,
        ci_low=float(np.quantile(d, alpha)),
        ci_high=float(np.quantile(d, 1 - alpha)),
        ci_level=1 - 2 * alpha,
        p_value=float((1 + np.sum(d <= 0)) / (resamples + 1)),
        resamples=resamples,
        seed=seed,
        effective_n=effective,
    ), d


class McNemar(BaseModel):
    """Exact McNemar test on per-review correctness (binomial on the discordant reviews)."""

    champion_only_right: int
    challenger_only_right: int
    p_value: float  # one-sided: the challenger is right more often
    p_value_two_sided: float


def mcnemar_exact(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray) -> McNemar:
    a_right, b_right = np.asarray(champion) == np.asarray(y), np.asarray(challenger) == np.asarray(y)
    b, c = int(np.sum(a_right & ~b_right)), int(np.sum(~a_right & b_right))
    if b + c == 0:
        return McNemar(champion_only_right=0, challenger_only_right=0, p_value=1.0, p_value_two_sided=1.0)
    return McNemar(
        champion_only_right=b,
        challenger_only_right=c,
        p_value=float(binomtest(c, b + c, 0.5, alternative="greater").pvalue),
        p_value_two_sided=float(binomtest(c, b + c, 0.5).pvalue),
    )


# --- scoring and the decision --------------------------------------------------------------------------------


class PartScore(BaseModel):
    n: int
    accuracy: float
    macro_f1: float


class ModelScore(BaseModel):
    tag: str
    macro_f1: float
    accuracy: float
    per_class_f1: dict[str, float]
    ece: float
    low_confidence_share: float  # top-class confidence below gates.confidence_gate
    parts: dict[str, PartScore]  # "base" (frozen test split) and "human" (held-out labels)
    # The behaviour suite's pass rates per category as stored with the version (experiments.evaluate_behaviour);
    # shown beside the figures, not a check: empty when the suite was never run on it.
    behaviour: dict[str, float] = {}


def score(tag: str, probs: np.ndarray, y: np.ndarray, parts: np.ndarray, confidence_gate: float) -> ModelScore:
    pred = probs.argmax(1)
    m = metrics(y.tolist(), pred.tolist())
    by_part = {}
    for name in ("base", "human"):
        mask = parts == name
        if mask.any():
            pm = metrics(y[mask].tolist(), pred[mask].tolist())
            by_part[name] = PartScore(n=int(mask.sum()), accuracy=pm.accuracy, macro_f1=pm.macro_f1)
    return ModelScore(
        tag=tag,
        macro_f1=m.macro_f1,
        accuracy=m.accuracy,
        per_class_f1={k: c.f1 for k, c in m.per_class.items()},
        ece=reliability(probs, y)[0],
        low_confidence_share=float(np.mean(probs.max(1) < confidence_gate)),
        parts=by_part,
    )


class Check(BaseModel):
    name: str
    passed: bool
    value: float
    limit: float
    detail: str


def checks(champion: ModelScore, challenger: ModelScore, boot: Bootstrap, cfg: LifecycleSettings) -> list[Check]:
    d_ece = challenger.ece - champion.ece
    d_low = challenger.low_confidence_share - champion.low_confidence_share
    return [
        Check(
            name="significance",
            passed=boot.p_value < cfg.alpha,
            value=boot.p_value,
            limit=cfg.alpha,
            detail=f"bootstrap one-sided p {boot.p_value:.4f} vs alpha {cfg.alpha}",
        ),
        Check(
            name="macro_f1_gain",
            passed=boot.difference > cfg.min_macro_f1_gain,
            value=boot.difference,
            limit=cfg.min_macro_f1_gain,
            detail=f"macro-F1 {champion.macro_f1:.4f} -> {challenger.macro_f1:.4f} ({boot.difference:+.4f})",
        ),
        Check(
            name="ece",
            passed=d_ece <= cfg.ece_tolerance,
            value=d_ece,
            limit=cfg.ece_tolerance,
            detail=f"ECE {champion.ece:.4f} -> {challenger.ece:.4f} ({d_ece:+.4f}, tolerance +{cfg.ece_tolerance})",
        ),
        Check(
            name="low_confidence",
            passed=d_low <= cfg.low_confidence_tolerance,
            value=d_low,
            limit=cfg.low_confidence_tolerance,
            detail=f"low-confidence share {champion.low_confidence_share:.3f} -> "
            f"{challenger.low_confidence_share:.3f} ({d_low:+.3f}, "
            f"tolerance +{cfg.low_confidence_tolerance})",
        ),
    ]


def product_line_checks(
    champion: ModelScore, challenger: ModelScore, boot: Bootstrap, cfg: LifecycleSettings
) -> list[Check]:
    """An adapted challenger: enough held-out product-line labels, better there, no worse on the base split; the
    confidence checks as for any challenger."""
    n = challenger.parts["human"].n if "human" in challenger.parts else 0
    worth = n if boot.effective_n is None else boot.effective_n  # weighted: what the labels are worth in the stream
    evidence = Check(
        name="evidence",
        passed=worth >= cfg.min_target_labels,
        value=worth,
        limit=cfg.min_target_labels,
        detail=f"{n} held-out labels of the product line"
        + ("" if boot.effective_n is None else f", worth {worth:.0f} reviews of its stream")
        + f" (at least {cfg.min_target_labels} needed)",
    )
    if not evidence.passed:
        return [evidence]
    significance, gain, *confidence = checks(champion, challenger, boot, cfg)
    if "base" in champion.parts and "base" in challenger.parts:
        base_a, base_b = champion.parts["base"].macro_f1, challenger.parts["base"].macro_f1
        base = Check(
            name="base_no_worse",
            passed=base_b - base_a >= -cfg.base_tolerance,
            value=base_b - base_a,
            limit=-cfg.base_tolerance,
            detail=f"frozen base split macro-F1 {base_a:.4f} -> {base_b:.4f} ({base_b - base_a:+.4f}, "
            f"tolerance -{cfg.base_tolerance})",
        )
    else:  # only an offline replay lacks one (experiments.evaluate_adaptation): the frozen set always has it
        base = Check(name="base_no_worse", passed=True, value=0.0, limit=-cfg.base_tolerance, detail="no base split")
    return [
        evidence,
        significance.model_copy(update={"detail": f"on the product line: {significance.detail}"}),
        gain.model_copy(
            update={
                "detail": f"product-line macro-F1 {champion.parts['human'].macro_f1:.4f} -> "
                f"{challenger.parts['human'].macro_f1:.4f} ({boot.difference:+.4f}"
                + ("" if boot.effective_n is None else " weighted to the stream")
                + ")"
            }
        ),
        base,
        *confidence,
    ]


class EvalInfo(BaseModel):
    config: dict[str, object]
    data_fingerprint: str
    fingerprint: str
    n_base: int
    n_human: int
    human_labels: HumanLabelStats


Action = Literal["dry_run", "promoted", "forced", "kept", "refused"]


class GateReport(BaseModel):
    """``gate.json``: the decision, every figure behind it, and what was done about it."""

    ts: str = Field(default_factory=utc_now)
    model: str
    champion: str
    challenger: str
    evaluation: EvalInfo
    confidence_gate: float
    lifecycle: LifecycleSettings
    champion_score: ModelScore
    challenger_score: ModelScore
    # "product_line": an adapted challenger, judged on the held-out labels with the base split as a guard
    mode: Literal["base", "product_line"] = "base"
    bootstrap: Bootstrap  # on the whole evaluation set, or (product_line) on the held-out labels alone
    mcnemar: McNemar
    checks: list[Check]
    passed: bool
    action: Action = "dry_run"
    action_detail: str = ""
    alias_changes: list[AliasChange] = []
    seconds: dict[str, float] = {}
    report_dir: str = ""
    files: list[str] = []


def evaluate(champion: str, challenger: str, settings: Settings) -> tuple[GateReport, np.ndarray]:
    """Score both stored versions on the frozen set and decide; returns the report and the bootstrap differences."""
    t0 = datetime.now(UTC)
    spec = eval_spec_of(resolve(champion)[1]) or eval_spec_of(resolve(challenger)[1])
    if spec is None:
        raise GateError(
            f"neither {champion} nor {challenger} records the data it was trained on, so there is no "
            "frozen evaluation set to compare them on"
        )
    try:
        es: EvalSet = frozen_eval_set(spec, settings)
    except EvalSetChanged as exc:
        raise GateError(str(exc)) from exc
    texts = [r.text for r in es.reviews]
    y = np.array([r.y for r in es.reviews])
    parts = np.array(["human" if i >= es.n_base else "base" for i in range(len(y))])
    t1 = datetime.now(UTC)
    gate = settings.gates.confidence_gate
    probs = {
        tag: SentimentModel.from_store(tag, num_threads=settings.model.scoring_threads).predict(texts)
        for tag in (champion, challenger)
    }
    t2 = datetime.now(UTC)
    champ, chall = (score(t, probs[t], y, parts, gate) for t in (champion, challenger))
    for s in (champ, chall):
        s.behaviour = stored_behaviour(s.tag)
    cfg = settings.lifecycle
    adapted = bool(resolve(challenger)[1].adaptation)
    on_line = adapted and es.n_human > 0
    judged = parts == "human" if on_line else np.ones(len(y), bool)
    boot, diffs = paired_bootstrap(
        y[judged],
        probs[champion][judged].argmax(1),
        probs[challenger][judged].argmax(1),
        cfg.bootstrap_resamples,
        cfg.bootstrap_seed,
        cfg.alpha,
        weights=np.array(es.human_weights) if on_line else None,
    )
    found = product_line_checks(champ, chall, boot, cfg) if adapted else checks(champ, chall, boot, cfg)
    report = GateReport(
        model=champion.split(":", 1)[0],
        champion=champion,
        challenger=challenger,
        evaluation=EvalInfo(
            config=spec.config,
            data_fingerprint=spec.fingerprint,
            fingerprint=es.fingerprint,
            n_base=es.n_base,
            n_human=es.n_human,
            human_labels=es.human_labels,
        ),
        confidence_gate=gate,
        lifecycle=cfg,
        champion_score=champ,
        challenger_score=chall,
        bootstrap=boot,
        mcnemar=mcnemar_exact(y, probs[champion].argmax(1), probs[challenger].argmax(1)),
        mode="product_line" if adapted else "base",
        checks=found,
        passed=all(c.passed for c in found),
        seconds={
            "data": (t1 - t0).total_seconds(),
            "score": (t2 - t1).total_seconds(),
            "statistics": (datetime.now(UTC) - t2).total_seconds(),
        },
    )
    return report, diffs


def stored_behaviour(tag: str) -> dict[str, float]:
    """The pass rates ``metrics.behaviour`` of a stored version, or none."""
    stored = resolve(tag)[1].metrics.get("behaviour")
    rates = stored.get("pass_rates") if isinstance(stored, dict) else None
    return {str(k): float(v) for k, v in rates.items()} if isinstance(rates, dict) else {}


def run_gate(
    name: str,
    settings: Settings,
    challenger: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    reason: str = "",
    command: str = "",
) -> GateReport:
    """Evaluate champion vs challenger, write the report, then promote (gate passed), force, or leave it."""
    registry = AliasRegistry(name)
    champion = registry.resolve_serving_tag()
    challenger = registry.stored_tag(challenger) if challenger else registry.state().challenger
    if champion is None or challenger is None:
        raise GateError(f"need a champion and a challenger of {name} (champion {champion}, challenger {challenger})")
    if champion == challenger:
        raise GateError(f"{challenger} is already the champion")
    report, diffs = evaluate(champion, challenger, settings)
    out = settings.promotion_reports_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{challenger.split(':', 1)[1]}"
    report.report_dir = str(out)
    write_report(report, diffs, out)  # promotion needs the report on disk
    if dry_run:
        report.action_detail = "dry run: aliases unchanged"
    elif report.passed or force:
        why = reason or (
            f"promotion gate passed: macro-F1 {report.bootstrap.difference:+.4f}, p {report.bootstrap.p_value:.4f}"
        )
        if not report.passed:
            why = f"forced past a failing promotion gate ({', '.join(failed(report))}): {reason}"
        try:
            report.alias_changes = registry.promote(
                "champion", challenger, why, report=out / REPORT_JSON, force=force, command=command
            )
            report.action = "forced" if force else "promoted"
            report.action_detail = why
        except AliasError as exc:
            report.action, report.action_detail = "refused", f"the registry refused: {exc}"
    elif failed(report) == ["evidence"]:
        report.action = "kept"
        report.action_detail = f"not enough evidence: {report.checks[0].detail}; champion kept"
    else:
        report.action = "kept"
        report.action_detail = f"champion kept: failed {', '.join(failed(report))}"
    write_report(report, diffs, out)
    return report


def failed(report: GateReport) -> list[str]:
    return [c.name for c in report.checks if not c.passed]


# --- the report ----------------------------------------------------------------------------------------------


def write_report(report: GateReport, diffs: np.ndarray, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report.files = [REPORT_JSON, "gate.png", "gate.md"]
    plot(report, diffs, out / "gate.png")
    (out / "gate.md").write_text(render_markdown(report))
    (out / REPORT_JSON).write_text(json.dumps(report.model_dump(mode="json"), indent=1))


def last_report(settings: Settings) -> GateReport | None:
    """The newest gate report (folders are named by UTC time), or ``None`` before the first gate run."""
    root = settings.promotion_reports_dir
    runs = sorted(root.glob(f"*/{REPORT_JSON}")) if root.is_dir() else []
    return GateReport.model_validate_json(runs[-1].read_text()) if runs else None


def render_markdown(r: GateReport) -> str:
    a, b, bs, mc, ev = r.champion_score, r.challenger_score, r.bootstrap, r.mcnemar, r.evaluation
    verdict = "passed" if r.passed else f"failed ({', '.join(failed(r))})"
    lines = [
        f"**Promotion gate {verdict}** -> {r.action}: {r.action_detail}",
        "",
        (
            f"Champion `{r.champion}` vs challenger `{r.challenger}` on the same {ev.n_base + ev.n_human} reviews: "
            f"{ev.n_base} of the frozen test split (data `{ev.data_fingerprint}`) and {ev.n_human} held-out human "
            f"labels (evaluation set `{ev.fingerprint}`)."
        ),
        "",
        "| | macro-F1 | accuracy | ECE | low-confidence share | " + " | ".join(f"F1 {k}" for k in LABELS) + " |",
        "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in LABELS) + " |",
    ]
    for name, s in (("champion", a), ("challenger", b)):
        lines.append(
            f"| {name} | {s.macro_f1:.4f} | {s.accuracy:.4f} | {s.ece:.4f} | {s.low_confidence_share:.3f} | "
            + " | ".join(f"{s.per_class_f1[k]:.3f}" for k in LABELS)
            + " |"
        )
    names = {"base": "frozen base split", "human": "held-out labels (product line)"}
    lines += ["", "| macro-F1 by part | reviews | champion | challenger |", "| --- | ---: | ---: | ---: |"]
    lines += [
        f"| {names[k]} | {a.parts[k].n} | {a.parts[k].macro_f1:.4f} | {b.parts[k].macro_f1:.4f} |"
        for k in ("human", "base")
        if k in a.parts and k in b.parts
    ]
    judged = "the held-out product-line labels" if r.mode == "product_line" else "the whole evaluation set"
    lines += [
        "",
        (
            f"Judged on {judged}. Paired bootstrap ({bs.resamples} resamples, seed {bs.seed}): "
            f"macro-F1 difference {bs.difference:+.4f}, "
            f"{bs.ci_level:.0%} CI [{bs.ci_low:+.4f}, {bs.ci_high:+.4f}], one-sided p {bs.p_value:.4f}. "
            f"McNemar exact: champion alone right on {mc.champion_only_right}, challenger alone right on "
            f"{mc.challenger_only_right}, one-sided p {mc.p_value:.4g} (two-sided {mc.p_value_two_sided:.4g})."
        ),
        "",
        *(f"- {'pass' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in r.checks),
        *behaviour_table(a, b),
        "",
        "![gate](gate.png)",
    ]
    return "\n".join(lines) + "\n"


def behaviour_table(champion: ModelScore, challenger: ModelScore) -> list[str]:
    """Behaviour-suite pass rates of both versions, where stored (``experiments.evaluate_behaviour``)."""
    cats = list(dict.fromkeys([*champion.behaviour, *challenger.behaviour]))
    if not cats:
        return []
    rows = [
        "",
        "Behaviour suite pass rates (stored with each version):",
        "",
        "| | " + " | ".join(cats) + " |",
        "| --- | " + " | ".join("---:" for _ in cats) + " |",
    ]
    for name, s in (("champion", champion), ("challenger", challenger)):
        cells = [f"{s.behaviour[c]:.1%}" if c in s.behaviour else "-" for c in cats]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def plot(r: GateReport, diffs: np.ndarray, path: Path) -> Path:
    """Bootstrap distribution with its interval; per-class F1 side by side; the two confidence tallies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    bs = r.bootstrap
    ax = axes[0]
    ax.hist(diffs, bins=40, color="tab:blue", alpha=0.7)
    ax.axvline(0, color="black", lw=1)
    ax.axvline(bs.difference, color="tab:red", lw=2, label=f"observed {bs.difference:+.4f}")
    ax.axvspan(bs.ci_low, bs.ci_high, color="tab:orange", alpha=0.2, label=f"{bs.ci_level:.0%} CI")
    ax.set(
        title=f"macro-F1 difference (challenger - champion), p {bs.p_value:.4f}",
        xlabel="difference",
        ylabel="resamples",
    )
    ax.legend(fontsize=8)
    width = 0.38
    groups = [*LABELS, "macro"]
    x = np.arange(len(groups))
    for i, (name, s) in enumerate((("champion", r.champion_score), ("challenger", r.challenger_score))):
        vals = [*(s.per_class_f1[k] for k in LABELS), s.macro_f1]
        axes[1].bar(x + (i - 0.5) * width, vals, width, label=name)
    axes[1].set(xticks=x, xticklabels=groups, ylim=(0, 1), title="F1 per class", ylabel="F1")
    axes[1].legend(fontsize=8)
    metrics_ = ["ECE", "low-confidence share"]
    x2 = np.arange(len(metrics_))
    for i, (name, s) in enumerate((("champion", r.champion_score), ("challenger", r.challenger_score))):
        axes[2].bar(x2 + (i - 0.5) * width, [s.ece, s.low_confidence_share], width, label=name)
    axes[2].set(xticks=x2, xticklabels=metrics_, title=f"confidence (gate {r.confidence_gate:.2f})")
    axes[2].legend(fontsize=8)
    fig.suptitle(f"{r.challenger} vs {r.champion}: gate {'passed' if r.passed else 'failed'} ({r.action})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
