"""The drift report: the JSON the dashboard reads (``reports/drift.json``) and the boxed text the spec prints.

Keys are a contract with the dashboard: ``drift_detected``, ``generated_at``, ``windows``, ``signals`` (each with
``drifted``, ``statistic``, ``threshold``, ``reference``, ``current``, ``description``, ``detail``) and
``drifted_signals``. Fields may be added, never renamed. A skipped signal has ``skipped: true``, ``drifted: false``
and ``statistic: null``, because a made-up number would read as a measurement.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from sentiment.records import utc_now

SIGNAL_NAMES: tuple[str, ...] = (
    "oov_rate",
    "text_length",
    "label_distribution",
    "low_confidence",
    "embedding",
    "non_english_rate",
    "rejected_rate",
)


class WindowInfo(BaseModel):
    """Which records a window holds: where they came from and how many were read."""

    label: str
    n: int
    source: str = ""
    start: str | None = None
    end: str | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    with_text: int = 0
    skipped_lines: int = 0


class SignalResult(BaseModel):
    """One signal's verdict. ``fires_when`` says which side of the threshold is drift."""

    drifted: bool
    statistic: float | None
    threshold: float
    reference: float | dict[str, Any] | None = None
    current: float | dict[str, Any] | None = None
    description: str
    detail: str = ""
    fires_when: Literal["above", "below"] = "above"
    statistic_name: str = ""
    p_value: float | None = None
    n_reference: int = 0
    n_current: int = 0
    skipped: bool = False


class DriftReport(BaseModel):
    drift_detected: bool
    generated_at: str = Field(default_factory=utc_now)
    windows: dict[str, WindowInfo]
    signals: dict[str, SignalResult]
    drifted_signals: list[str]
    settings: dict[str, Any] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def build(
        cls,
        reference: WindowInfo,
        current: WindowInfo,
        signals: dict[str, SignalResult],
        settings: dict[str, Any],
        timings_s: dict[str, float],
    ) -> DriftReport:
        drifted = [name for name, s in signals.items() if s.drifted]
        return cls(
            drift_detected=bool(drifted),
            windows={"reference": reference, "current": current},
            signals=signals,
            drifted_signals=drifted,
            settings=settings,
            timings_s=timings_s,
        )


_WIDTH = 62
_TITLES = {
    "oov_rate": "OOV Rate (word level)",
    "text_length": "Text Length (Kolmogorov-Smirnov test)",
    "label_distribution": "Label Distribution (Jensen-Shannon divergence, base 2)",
    "low_confidence": "Low-Confidence Share (growth)",
    "embedding": "Semantic Drift (MMD on MiniLM embeddings, permutation test)",
    "non_english_rate": "Non-English Rate",
    "rejected_rate": "Rejected-Input Rate",
}


def _box(lines: list[str]) -> list[str]:
    out = ["╔" + "═" * _WIDTH + "╗"]
    out += ["║" + line.center(_WIDTH) + "║" for line in lines]
    out.append("╚" + "═" * _WIDTH + "╝")
    return out


# Signals whose reference/current values (and statistic) are shares, printed as percentages like the spec.
_PERCENT = frozenset({"oov_rate", "label_distribution", "low_confidence", "non_english_rate", "rejected_rate"})


def _fmt(value: float | dict[str, Any] | None, pct: bool) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_num(v, pct)}" for k, v in value.items())
    return _num(value, pct)


def _num(v: Any, pct: bool = False) -> str:
    if pct and isinstance(v, float):
        return f"{v:.1%}"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.4g}"
    return str(v)


def render_text(report: DriftReport) -> str:
    """The spec's boxed report: early/late statistics, threshold and verdict per signal, then the overall line."""
    ref, cur = report.windows["reference"], report.windows["current"]
    lines = _box(["DRIFT REPORT", f"Early window: {ref.n:,}   Late window: {cur.n:,}"])
    lines += [f"Early: {ref.label}", f"Late:  {cur.label}", ""]
    for i, (name, s) in enumerate(report.signals.items(), start=1):
        lines.append(f"Signal {i}: {_TITLES.get(name, name)}  [{name}]")
        pct = name in _PERCENT
        lines.append(f"  Early:  {_fmt(s.reference, pct)}")
        lines.append(f"  Late:   {_fmt(s.current, pct)}")
        if s.skipped:
            lines.append(f"  {s.detail}")
            lines += ["  → SKIPPED", ""]
            continue
        side = "<" if s.fires_when == "below" else ">"
        shown = _num(s.statistic, pct and name != "label_distribution")
        limit = _num(s.threshold, pct and name != "label_distribution")
        lines.append(f"  {s.statistic_name or 'statistic'}: {shown}   (drift if {side} {limit})")
        if s.detail:
            lines.append(f"  {s.detail}")
        lines += ["  → DRIFTED" if s.drifted else "  → NO DRIFT", ""]
    if report.drift_detected:
        lines.append(f"Overall: DRIFT DETECTED in [{', '.join(report.drifted_signals)}]")
    else:
        lines.append("Overall: NO DRIFT")
    return "\n".join(lines) + "\n"
