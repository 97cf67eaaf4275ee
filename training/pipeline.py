"""The whole tier-1 run: data -> fine-tune -> calibrate -> evaluate -> report -> register.

One function so the CLI (``scripts/train.py``) and the tests run the very same path. Evaluation loads the saved
checkpoint through :class:`SentimentModel`, the wrapper serving uses, so the reported figures are the served ones.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from sentiment.contract import LABELS
from sentiment.model.inference import SentimentModel, calibrated_probs, softmax
from sentiment.model.registry import ModelMetadata, save_to_store
from sentiment.oov import build_vocab
from sentiment.outputs import ModelOutput
from sentiment.settings import GateSettings, Settings
from training.calibrate import Calibration, calibrate, plot_reliability, reliability
from training.config import TrainConfig
from training.data import Dataset, build_dataset, load_binary
from training.decision import tune_bias
from training.evaluate import (
    ChainView,
    GatePoint,
    LabelIds,
    Metrics,
    binary_accuracy,
    metrics,
    per_source,
    plot_class_risk_coverage,
    plot_confusion,
    plot_per_source,
    plot_risk_coverage,
    requirement_gate,
    risk_coverage,
)
from training.fine_tune import TrainResult, fine_tune
from training.loso import render_metadata_summary

# How the chain would answer on the test split (training.chain_view.chain_view; passed in, since the chain sits a
# layer above the model code).
ChainViewFn = Callable[[Sequence[str], LabelIds, Sequence[ModelOutput], GateSettings], ChainView]


class Report(BaseModel):
    """Everything written to ``evaluation.json``."""

    tag: str | None
    profile: str
    base_model: str
    config: dict[str, Any]
    data: dict[str, Any]
    training: TrainResult
    calibration: Calibration
    decision_bias: list[float] = [0.0, 0.0, 0.0]  # added to the calibrated class bias (training.decision)
    test_ece: dict[str, float]
    test: Metrics
    test_binary: dict[str, float]
    per_source: dict[str, dict[str, Any]]
    binary_sets: dict[str, dict[str, float]]
    chain: ChainView
    requirement_gate: GatePoint | None
    risk_coverage: list[GatePoint]
    seconds: dict[str, float]
    plots: list[str]
    loso: dict[str, Any] | None = None  # the profile's LOSO summary (``--loso-report``), also stored as metrics.loso


def _summary_metrics(r: Report) -> dict[str, Any]:
    """The compact subset stored with the model in the registry."""
    return {
        "test_macro_f1": round(r.test.macro_f1, 4),
        "test_accuracy": round(r.test.accuracy, 4),
        "test_binary_accuracy": round(r.test_binary["accuracy"], 4),
        "per_class": {
            k: {m: round(getattr(c, m), 4) for m in ("precision", "recall", "f1")} for k, c in r.test.per_class.items()
        },
        "val_macro_f1": round(r.training.best_val_macro_f1, 4),
        "ece_val": {"before": round(r.calibration.ece_before, 4), "after": round(r.calibration.ece_after, 4)},
        "ece_test": {k: round(v, 4) for k, v in r.test_ece.items()},
        "chain_tier_shares": {k: round(t.share, 4) for k, t in r.chain.tiers.items()},
        "requirement_gate": r.requirement_gate.gate if r.requirement_gate else None,
    }


def render_markdown(r: Report) -> str:
    """The README-ready summary: requirement table, per source, chain view, calibration, timings."""
    t = r.test
    base = "/".join(Path(r.base_model).parts[-2:])
    lines = [
        f"**{r.tag or 'unregistered'}** (profile `{r.profile}`, base `{base}`, "
        f"data fingerprint `{r.data['fingerprint']}`): held-out test, {t.n} reviews.",
        "",
        "| class | precision | required | recall | required | F1 | support | meets |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {k} | {c.precision:.3f} | >= {c.required_precision:.2f} | {c.recall:.3f} "
        f"| >= {c.required_recall:.2f} | {c.f1:.3f} | {c.support} | {'yes' if c.meets else 'no'} |"
        for k, c in t.per_class.items()
    ]
    lines += [
        f"| **macro-F1** | | | | | **{t.macro_f1:.3f}** | | {'yes' if t.macro_f1 >= 0.85 else 'no'} (>= 0.85) |",
        "",
        f"Accuracy {t.accuracy:.3f}; binary negative-vs-positive accuracy {r.test_binary['accuracy']:.3f} "
        f"(n={int(r.test_binary['n'])})"
        + "".join(f"; {k}: {v['accuracy']:.3f} (n={int(v['n'])})" for k, v in r.binary_sets.items())
        + ".",
        f"Confusion matrix (rows true, columns predicted, {', '.join(LABELS)}): {t.confusion}.",
        "",
        "| test source | n | accuracy | macro-F1 | F1 neg / neu / pos | binary acc |",
        "| --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for k, v in r.per_source.items():
        f1 = " / ".join(f"{v['f1'][c]:.2f}" for c in LABELS)
        lines.append(
            f"| {k} | {v['n']} | {v['accuracy']:.3f} | {v['macro_f1']:.3f} | {f1} | {v['binary']['accuracy']:.3f} |"
        )
    c, g = r.chain, r.requirement_gate
    polar = requirement_gate(r.risk_coverage, ("negative", "positive"))
    tiers = ", ".join(
        f"{k} {s.share:.1%}" + (f" (accuracy {s.accuracy:.3f})" if s.accuracy is not None else "")
        for k, s in c.tiers.items()
    )
    lines += [
        "",
        f"Chain at the configured gate {c.gate:.2f}: {tiers}; accuracy of all automatic answers "
        f"{c.automatic_accuracy:.3f}"
        + (f"; `ok` answers macro-F1 {c.ok_metrics.macro_f1:.3f}" if c.ok_metrics else "")
        + ".",
        "Gate at which the `ok` answers meet the whole requirement table: "
        + (
            f"{g.gate:.2f}, leaving coverage {g.coverage:.1%}."
            if g
            else f"none (at the configured gate still missing: {', '.join(_failing_at(r, c.gate))})."
        ),
        "Lowest gate at which the negative and positive rows of the table are met: "
        + (f"{polar.gate:.2f} (coverage {polar.coverage:.1%}, accuracy {polar.accuracy:.3f})." if polar else "none."),
        f"Calibration: T = {r.calibration.temperature:.3f}, class bias {r.calibration.class_bias}; "
        f"ECE validation {r.calibration.ece_before:.3f} -> {r.calibration.ece_after:.3f}, "
        f"test {r.test_ece['before']:.3f} -> {r.test_ece['after']:.3f}"
        + (
            f"; decision bias {r.decision_bias} on top (chosen on validation for macro-F1)"
            if any(r.decision_bias)
            else ""
        )
        + ".",
        f"Training: {r.training.steps} steps, stopped by {r.training.stopped}, best validation macro-F1 "
        f"{r.training.best_val_macro_f1:.3f} at step {r.training.best_step}; class weights "
        f"{r.training.class_weights}. Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in r.seconds.items()) + ".",
        "",
        *(["### Unseen domains (leave-one-source-out)", "", *render_metadata_summary(r.loso), ""] if r.loso else []),
        *(f"![{name}]({name})" for name in r.plots),
    ]
    return "\n".join(lines) + "\n"


def _failing_at(r: Report, gate: float) -> list[str]:
    return next((p.failing for p in r.risk_coverage if p.gate >= gate - 1e-9), [])


def run(
    cfg: TrainConfig,
    output_dir: Path,
    settings: Settings,
    chain_view: ChainViewFn,
    register: bool = True,
    log: Callable[[str], object] = print,
    dataset: Dataset | None = None,
    extra_metrics: dict[str, Any] | None = None,
) -> Report:
    """``dataset``: splits built by the caller (retraining adds human labels); default: ``build_dataset(cfg)``.
    ``extra_metrics`` are stored with the model next to its own test figures (e.g. ``{"loso": ...}``)."""
    t0 = time.monotonic()
    seconds: dict[str, float] = {}
    ds: Dataset = dataset or build_dataset(cfg, settings.gates, settings.paths.shared_data_dir)
    seconds["data"] = round(time.monotonic() - t0, 1)
    log(
        f"data: train {len(ds.train)}, val {len(ds.val)}, test {len(ds.test)} (fingerprint {ds.fingerprint}) "
        f"in {seconds['data']}s"
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sentiment-ckpt-") as tmp:
        ckpt = Path(tmp)
        training = fine_tune(cfg, ds.train, ds.val, ckpt)
        seconds["train"] = training.seconds
        log(
            f"trained {training.steps} steps in {training.seconds}s ({training.stopped}), "
            f"best val macro-F1 {training.best_val_macro_f1:.4f} at step {training.best_step}"
        )
        t1 = time.monotonic()
        vocab = build_vocab(r.text for r in ds.train)
        meta = ModelMetadata(
            base_model=cfg.base_model,
            max_length=cfg.max_length,
            data_fingerprint=ds.fingerprint,
            splits=ds.split_info,
            profile=cfg.profile,
            train_config=cfg.model_dump(mode="json"),
        )
        model = SentimentModel(ckpt, meta, num_threads=cfg.num_threads, device=cfg.device)
        model.vocab = vocab
        val_logits, _ = model.logits([r.text for r in ds.val])
        val_y = np.array([r.y for r in ds.val])
        cal = calibrate(val_logits, val_y, prior=cfg.calibration_prior)
        decision = [0.0] * len(LABELS)
        if cfg.fixed_decision_bias is not None:
            decision = list(cfg.fixed_decision_bias)
        elif cfg.decision_bias:
            val_probs = calibrated_probs(val_logits, cal.temperature, np.array(cal.class_bias))
            decision = tune_bias(val_probs, val_y, settings.gates.confidence_gate, cfg.decision_min_coverage)
        model.metadata = meta = meta.model_copy(
            update={
                "temperature": cal.temperature,
                "decision_bias": decision,
                "class_bias": [c + d for c, d in zip(cal.class_bias, decision, strict=True)],
            }
        )
        log(
            f"temperature {cal.temperature:.3f}, class bias {cal.class_bias}: "
            f"val ECE {cal.ece_before:.4f} -> {cal.ece_after:.4f}; decision bias {decision}"
        )
        test_texts = [r.text for r in ds.test]
        test_y = np.array([r.y for r in ds.test])
        test_logits, unk = model.logits(test_texts)
        outputs = model.outputs(test_texts, test_logits, unk)
        probs = model.calibrated(test_logits)
        binary_sets = {}
        for path in cfg.binary_eval:
            rows = load_binary(path, settings.gates)
            if rows:
                bp = model.predict([t for t, _ in rows])
                binary_sets[path.name.split(".")[0]] = binary_accuracy([y for _, y in rows], bp)
        seconds["evaluate"] = round(time.monotonic() - t1, 1)

        points = risk_coverage(test_y, probs)
        req = requirement_gate(points)
        test_metrics = metrics(test_y, probs.argmax(1))
        title = f"{cfg.name} ({cfg.profile}), held-out test"
        plots = [
            plot_confusion(test_metrics, output_dir / "confusion_matrix.png", title),
            plot_reliability(
                test_logits,
                test_y,
                cal.temperature,
                output_dir / "reliability.png",
                f"{title}: calibration (fitted on validation)",
                cal.class_bias,
            ),
            plot_risk_coverage(points, settings.gates.confidence_gate, req, output_dir / "risk_coverage.png", title),
            plot_class_risk_coverage(
                test_y,
                probs,
                settings.gates.confidence_gate,
                output_dir / "class_risk_coverage.png",
                f"{title}, per class",
            ),
        ]
        sources = per_source([r.source for r in ds.test], test_y, probs)
        plots.append(plot_per_source(sources, output_dir / "per_source.png", f"{title}, per source"))
        report = Report(
            tag=None,
            profile=cfg.profile,
            base_model=cfg.base_model,
            config=cfg.model_dump(mode="json"),
            data={"fingerprint": ds.fingerprint, "load": ds.stats.model_dump(), "splits": ds.split_info},
            training=training,
            calibration=cal,
            decision_bias=decision,
            test_ece={"before": reliability(softmax(test_logits), test_y)[0], "after": reliability(probs, test_y)[0]},
            test=test_metrics,
            test_binary=binary_accuracy(test_y, probs),
            per_source=sources,
            binary_sets=binary_sets,
            chain=chain_view(test_texts, test_y, outputs, settings.gates),
            requirement_gate=req,
            risk_coverage=points,
            seconds=seconds,
            plots=[p.name for p in plots],
            loso=(extra_metrics or {}).get("loso"),
        )
        if register:
            meta = meta.model_copy(update={"metrics": _summary_metrics(report) | (extra_metrics or {})})
            report.tag = save_to_store(cfg.name, ckpt, meta, vocab)
            log(f"registered {report.tag}")
    report.seconds["total"] = round(time.monotonic() - t0, 1)
    (output_dir / "evaluation.json").write_text(json.dumps(report.model_dump(mode="json"), indent=1))
    (output_dir / "summary.md").write_text(render_markdown(report))
    return report
