"""The drift report: the JSON the dashboard reads (``reports/drift.json``) and the boxed text the spec prints.

Keys are a contract with the dashboard: ``drift_detected``, ``generated_at``, ``windows``, ``signals`` (each with
``drifted``, ``statistic``, ``threshold``, ``reference``, ``current``, ``description``, ``detail``) and
``drifted_signals``; ``performance`` (tier 1's estimated performance, :mod:`drift.performance`) with its own
verdict ``performance_drop``, apart from the input signals. Fields may be added, never renamed. A skipped signal
has ``skipped: true``, ``drifted: false`` and ``statistic: null``, because a made-up number would read as a
measurement.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from sentiment.estimation import PerformanceEstimate
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


class PerformanceWindow(BaseModel):
    """One window of ``window`` consecutive answers of one model version in the current period."""

    model_tag: str | None
    start: int  # index of its first answer among that version's answers in the current period
    estimate: PerformanceEstimate
    drop: bool  # its estimated macro-F1 is more than the threshold below the reference's


class PerformanceReport(BaseModel):
    """Estimated performance, reference period (all versions together) against each version in the current one."""

    method: str
    window: int
    threshold: float  # drift.performance_drop
    reference: PerformanceEstimate | None = None
    reference_by_version: dict[str, PerformanceEstimate] = Field(default_factory=dict)
    current: dict[str, PerformanceEstimate] = Field(default_factory=dict)
    windows: list[PerformanceWindow] = Field(default_factory=list)
    drop: dict[str, float] = Field(default_factory=dict)  # reference macro-F1 minus each version's current one
    performance_drop: bool = False
    skipped: bool = False
    detail: str = ""


class DriftReport(BaseModel):
    drift_detected: bool
    generated_at: str = Field(default_factory=utc_now)
    windows: dict[str, WindowInfo]
    signals: dict[str, SignalResult]
    drifted_signals: list[str]
    settings: dict[str, Any] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)
    performance: PerformanceReport | None = None

    @classmethod
    def build(
        cls,
        reference: WindowInfo,
        current: WindowInfo,
        signals: dict[str, SignalResult],
        settings: dict[str, Any],
        timings_s: dict[str, float],
        performance: PerformanceReport | None = None,
    ) -> DriftReport:
        drifted = [name for name, s in signals.items() if s.drifted]
        return cls(
            drift_detected=bool(drifted),
            windows={"reference": reference, "current": current},
            signals=signals,
            drifted_signals=drifted,
            settings=settings,
            timings_s=timings_s,
            performance=performance,
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
    if report.performance is not None:
        lines += _performance_lines(report.performance)
    if report.drift_detected:
        lines.append(f"Overall: DRIFT DETECTED in [{', '.join(report.drifted_signals)}]")
    else:
        lines.append("Overall: NO DRIFT")
    if report.performance is not None and report.performance.performance_drop:
        lines.append(f"Performance: DROP ({report.performance.detail})")
    return "\n".join(lines) + "\n"


def _iv(e: PerformanceEstimate) -> str:
    return (
        f"macro-F1 {e.macro_f1.value:.3f} [{e.macro_f1.lo:.3f}, {e.macro_f1.hi:.3f}], "
        f"accuracy {e.accuracy.value:.3f} [{e.accuracy.lo:.3f}, {e.accuracy.hi:.3f}], n {e.n:,}"
        + (f", {e.labelled} labelled" if e.labelled else "")
    )


def _performance_lines(p: PerformanceReport) -> list[str]:
    """Estimated tier-1 performance (no labels needed), after the input signals."""
    lines = [f"Estimated performance ({p.method}, 95% intervals)  [performance_drop]"]
    if p.skipped or p.reference is None:
        return [*lines, f"  {p.detail}", "  SKIPPED", ""]
    lines.append(f"  Early:  {_iv(p.reference)}")
    for tag, e in p.current.items():
        lines.append(f"  Late {tag or '(untagged)'}:  {_iv(e)}")
    lines.append(f"  drop if estimated macro-F1 falls more than {p.threshold:.2f} below Early")
    if p.detail:
        lines.append(f"  {p.detail}")
    lines += ["  PERFORMANCE DROP" if p.performance_drop else "  NO PERFORMANCE DROP", ""]
    return lines
