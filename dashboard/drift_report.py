"""A tolerant reading of ``reports/drift.json``: missing keys become blanks, one broken signal spoils only itself."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sentiment.estimation import PerformanceEstimate

Value = float | dict[str, Any] | list[Any] | str | None


class DriftSignal(BaseModel):
    model_config = ConfigDict(extra="allow")

    drifted: bool | None = None
    statistic: float | None = None
    threshold: float | None = None
    reference: Value = None
    current: Value = None
    description: str = ""
    detail: str = ""
    statistic_name: str = ""
    fires_when: str | None = None  # "above" | "below" the threshold
    skipped: bool = False  # the detector could not compute it (e.g. no confidences in the records)
    error: str | None = None  # set by the reader when the signal's JSON did not fit

    @property
    def verdict(self) -> str:
        """unreadable | skipped | drifted | ok | unknown: one word for the badge and the table."""
        if self.error:
            return "unreadable"
        if self.skipped:
            return "skipped"
        return {True: "drifted", False: "ok", None: "unknown"}[self.drifted]

    @property
    def rule(self) -> str:
        """The threshold as a sentence: 'drifts above 0.05'."""
        side = {"above": "above", "below": "below"}.get(self.fires_when or "", "at")
        return f"drifts {side} {fmt_number(self.threshold)}"


class DriftWindow(BaseModel):
    model_config = ConfigDict(extra="allow")

    label: str = ""
    n: int | None = None


class DriftPerformance(BaseModel):
    """The report's estimated-performance section (``drift.report.PerformanceReport``), read tolerantly."""

    model_config = ConfigDict(extra="allow")

    method: str = ""
    threshold: float | None = None
    reference: PerformanceEstimate | None = None
    current: dict[str, PerformanceEstimate] = {}
    drop: dict[str, float] = {}
    performance_drop: bool | None = None
    skipped: bool = False
    detail: str = ""
    error: str | None = None


class DriftReport(BaseModel):
    drift_detected: bool | None = None
    generated_at: str | None = None
    windows: dict[str, DriftWindow] = {}
    signals: dict[str, DriftSignal] = {}
    drifted_signals: list[str] = []
    performance: DriftPerformance | None = None  # reports written before it existed have none


def _performance(raw: Any) -> DriftPerformance | None:
    if raw is None:
        return None
    try:
        return DriftPerformance.model_validate(raw)
    except ValidationError as exc:
        return DriftPerformance(error=f"unreadable performance section ({exc.error_count()} problem(s))")


def _window(raw: Any) -> DriftWindow:
    try:
        return DriftWindow.model_validate(raw)
    except ValidationError:
        return DriftWindow(label=str(raw))


def _signal(raw: Any) -> DriftSignal:
    try:
        return DriftSignal.model_validate(raw)
    except ValidationError as exc:
        return DriftSignal(error=f"unreadable signal ({exc.error_count()} problem(s): {exc.errors()[0]['msg']})")


def parse_report(raw: Any) -> DriftReport:
    """Accept whatever the drift script wrote; raise ValueError only when it is not an object at all."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    windows: Mapping[str, Any] = raw["windows"] if isinstance(raw.get("windows"), Mapping) else {}
    signals: Mapping[str, Any] = raw["signals"] if isinstance(raw.get("signals"), Mapping) else {}
    detected = raw.get("drift_detected")
    drifted = raw.get("drifted_signals")
    return DriftReport(
        drift_detected=detected if isinstance(detected, bool) else None,
        generated_at=str(raw["generated_at"]) if raw.get("generated_at") is not None else None,
        windows={str(k): _window(v) for k, v in windows.items()},
        signals={str(k): _signal(v) for k, v in signals.items()},
        drifted_signals=[str(s) for s in drifted] if isinstance(drifted, list) else [],
        performance=_performance(raw.get("performance")),
    )


def fmt_number(x: float | None) -> str:
    """Readable at any scale: 0.0331, 438, 2.3e-58."""
    if x is None:
        return "—"
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4g}"
    return f"{x:.2g}"


def is_shares(d: Mapping[str, Any]) -> bool:
    """A dict of numbers that sum to about 1 (label shares) is shown as percentages."""
    vals = [v for v in d.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return bool(vals) and len(vals) == len(d) and all(0 <= v <= 1 for v in vals) and abs(sum(vals) - 1) < 0.02


def fmt_value(v: Value) -> str:
    """One line for a signal's early/late value, whether it is a number, a dict of shares or something else."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int | float):
        return fmt_number(float(v))
    if isinstance(v, Mapping):
        if is_shares(v):
            return ", ".join(f"{k} {float(x):.1%}" for k, x in v.items())
        return ", ".join(f"{k} {fmt_value(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(fmt_value(x) for x in v)
    return "—" if v is None else str(v)
