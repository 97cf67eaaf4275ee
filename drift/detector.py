"""Turn two windows into a drift report: fill in what the records do not carry, then run every signal.

Review files carry no gate outcome or confidence, so those come from a random text sample: the service's own
gates (validation + language), and a stored model when ``model_tag`` is given. Predictions logs carry both.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from drift.features import GateCode, gate_codes, load_vocab, score_low_confidence, unk_rate_mean
from drift.performance import performance_section
from drift.report import DriftReport
from drift.signals import SignalInputs, evaluate
from drift.windows import Window, WindowSpec, read_windows
from sentiment.estimation import latest_labels
from sentiment.jsonl import iter_records
from sentiment.settings import Settings


class DetectOptions(BaseModel):
    model_tag: str | None = None
    embedding: bool = True
    progress: bool = True


def signal_inputs(window: Window, settings: Settings, options: DetectOptions) -> tuple[SignalInputs, dict[str, str]]:
    """The window's arrays plus sampled gate outcomes, confidences and embeddings; and what was sampled."""
    drift = settings.drift
    notes: dict[str, str] = {}
    sampled: dict[str, str] = {}
    gate = window.gate[window.gate >= 0]
    sample_gate = np.zeros(0, dtype=np.int8)  # gate outcomes of texts[:k], when computed here
    if not len(gate):
        sample = window.texts[: drift.gate_sample]
        if sample:
            gate = sample_gate = gate_codes(sample, settings, progress=options.progress)
            sampled["gates"] = f"{len(sample)}"
        else:
            notes["non_english_rate"] = notes["rejected_rate"] = "no text and no logged status"
    low = window.low_conf[window.low_conf >= 0]
    if not len(low):
        # As in the service, only texts that pass the gates reach the model.
        sample = [
            t
            for i, t in enumerate(window.texts[: drift.score_sample])
            if i >= len(sample_gate) or sample_gate[i] == GateCode.passed
        ]
        if options.model_tag and sample:
            low = score_low_confidence(sample, options.model_tag, settings)
            sampled["scored"] = f"{len(sample)}"
        elif not sample:
            notes["low_confidence"] = "no confidences and no text to score"
        else:
            notes["low_confidence"] = "no confidences in the records; pass --model TAG to score a sample"
    embeddings = None
    if not options.embedding:
        notes["embedding"] = "disabled (--no-embedding)"
    elif not window.texts:
        notes["embedding"] = "no text (predictions are logged without text unless SENTIMENT_SERVICE__LOG_TEXT=true)"
    else:
        from drift.embedding import embed

        sample = window.texts[: drift.embedding_sample]
        embeddings = embed(sample, settings.drift.embedding_model, settings.drift.embedding_max_length)
        sampled["embedded"] = f"{len(sample)}"
    inputs = SignalInputs(
        length=window.length,
        oov=window.oov,
        label=window.label,
        low_conf=low.astype(np.int8),
        gate=gate.astype(np.int8),
        embeddings=embeddings,
        notes=notes,
    )
    return inputs, sampled


def _context(
    ref: Window, cur: Window, s_ref: dict[str, str], s_cur: dict[str, str], vocab_note: str, unk: tuple[float, float]
) -> dict[str, str]:
    def share(w: Window) -> str:
        return f"{w.markup / w.info.with_text:.1%}" if w.info.with_text else "n/a"

    ctx = {"oov_rate": f"vocabulary: {vocab_note}; texts with markup {share(ref)} -> {share(cur)}"}
    if np.isfinite(unk[0]) and np.isfinite(unk[1]):
        ctx["oov_rate"] += f"; spec's [UNK]-token rate {unk[0]:.3%} -> {unk[1]:.3%}"
    if "gates" in s_ref or "gates" in s_cur:
        ctx["non_english_rate"] = ctx["rejected_rate"] = (
            f"service gates run on random samples of {s_ref.get('gates', 0)} / {s_cur.get('gates', 0)} texts"
        )
    if "scored" in s_ref or "scored" in s_cur:
        ctx["low_confidence"] = (
            f"model scored random samples of {s_ref.get('scored', 0)} / {s_cur.get('scored', 0)} texts"
        )
    if "embedded" in s_ref:
        ctx["embedding"] = f"random samples of {s_ref['embedded']} / {s_cur.get('embedded', 0)} texts embedded"
    return ctx


def detect_windows(
    ref: Window,
    cur: Window,
    settings: Settings,
    options: DetectOptions,
    vocab_note: str,
    ref_inputs: tuple[SignalInputs, dict[str, str]] | None = None,
) -> DriftReport:
    """Report on two reduced windows; ``ref_inputs`` reuses a reference compared against several currents."""
    t0 = time.perf_counter()
    in_ref, s_ref = ref_inputs or signal_inputs(ref, settings, options)
    in_cur, s_cur = signal_inputs(cur, settings, options)
    t1 = time.perf_counter()
    unk_model = settings.drift.embedding_model
    if options.model_tag:
        from sentiment.model.registry import resolve

        unk_model = str(resolve(options.model_tag)[0])
    n = settings.drift.gate_sample
    unk = (
        unk_rate_mean(ref.texts[:n], unk_model, settings.drift.embedding_max_length),
        unk_rate_mean(cur.texts[:n], unk_model, settings.drift.embedding_max_length),
    )
    signals = evaluate(in_ref, in_cur, settings.drift, _context(ref, cur, s_ref, s_cur, vocab_note, unk))
    performance = performance_section(ref, cur, settings)
    t2 = time.perf_counter()
    return DriftReport.build(
        ref.info,
        cur.info,
        signals,
        settings={
            **settings.drift.model_dump(),
            "confidence_gate": settings.gates.confidence_gate,
            "model_tag": options.model_tag,
            "embedding": options.embedding,
            "estimation": settings.estimation.model_dump(),
        },
        timings_s={"sampled_features": round(t1 - t0, 3), "signals": round(t2 - t1, 3)},
        performance=performance,
    )


def operator_labels(path: Path) -> dict[str, str]:
    """request id -> the operator's latest label (``human_labels.jsonl`` with its rotated pieces), for the estimate."""
    return latest_labels(iter_records(path))


def detect(
    specs: Iterable[WindowSpec], settings: Settings, options: DetectOptions
) -> tuple[DriftReport, Window, Window]:
    """Read the reference and current windows (streaming) and report drift between them; the windows too, to plot."""
    t0 = time.perf_counter()
    vocab, vocab_note = load_vocab(settings, options.model_tag)
    labels = operator_labels(settings.paths.human_labels)
    ref, cur = read_windows(specs, vocab, settings.drift, settings.gates.confidence_gate, options.progress, labels)
    t1 = time.perf_counter()
    report = detect_windows(ref, cur, settings, options, vocab_note)
    report.timings_s = {"read": round(t1 - t0, 3), **report.timings_s, "total": round(time.perf_counter() - t0, 3)}
    return report, ref, cur
