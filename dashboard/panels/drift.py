"""Panel 3: the drift report: each signal's early and late value, statistic against threshold, and a badge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import charts, loaders
from dashboard.drift_report import DriftReport, DriftSignal, fmt_number, fmt_value, is_shares
from dashboard.panels import TITLES
from dashboard.sources import Sources
from sentiment.estimation import PerformanceEstimate
from sentiment.settings import Settings

TITLE = TITLES["drift"]
WINDOWS = (("reference", "early"), ("current", "late"))


BADGES: dict[str, dict[str, str]] = {
    "drifted": {"color": "red", "icon": ":material/warning:"},
    "ok": {"color": "green", "icon": ":material/check:"},
}


def badge(verdict: str) -> None:
    st.badge(verdict, **BADGES.get(verdict, {"color": "gray"}))  # type: ignore[arg-type]


def _verdict(report: DriftReport) -> None:
    if report.drift_detected is True:
        which = ", ".join(report.drifted_signals) or "see below"
        st.error(f"**Drift detected** in {which}", icon=":material/warning:")
    elif report.drift_detected is False:
        st.success("**No drift**: every signal is within its threshold", icon=":material/check_circle:")
    else:
        st.warning("The report carries no overall verdict (`drift_detected` missing).")


def _estimate_row(period: str, e: PerformanceEstimate) -> dict[str, object]:
    return {
        "period": period,
        "answers": e.n,
        "macro-F1": f"{e.macro_f1.value:.3f} [{e.macro_f1.lo:.3f}, {e.macro_f1.hi:.3f}]",
        "accuracy": f"{e.accuracy.value:.3f} [{e.accuracy.lo:.3f}, {e.accuracy.hi:.3f}]",
        "class mix (est.)": ", ".join(f"{k} {c.share.value:.0%}" for k, c in e.per_class.items()),
        "labelled": e.labelled,
    }


def performance(report: DriftReport) -> None:
    """The estimated performance of tier 1, early against late per model version, and its own verdict."""
    p = report.performance
    if p is None:
        return
    st.subheader("Estimated performance (no labels needed)")
    if p.error or p.skipped or p.reference is None:
        st.caption(p.error or p.detail or "No estimate in this report.")
        return
    if p.performance_drop:
        st.error(f"**performance_drop**: {p.detail}", icon=":material/trending_down:")
    else:
        limit = f"{p.threshold:.2f}" if p.threshold is not None else "the threshold"
        st.success(f"No performance drop: estimated macro-F1 within {limit} of early", icon=":material/check_circle:")
    rows = [_estimate_row("early (all versions)", p.reference)]
    rows += [_estimate_row(f"late {tag or '(untagged)'}", e) for tag, e in p.current.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        f"{p.method} estimate with 95% intervals; it holds while calibration holds (docs/performance-estimation.md)."
    )


def _window_name(report: DriftReport, key: str, short: str, full: bool) -> str:
    """'early (n=3,521)' for the signal cards; with ``full`` the window's own label, for the caption."""
    w = report.windows.get(key)
    if w is None:
        return short
    n = f" (n={w.n:,})" if w.n is not None else ""
    return f"{(w.label or short) if full else short}{n}"


def summary(report: DriftReport) -> pd.DataFrame:
    """One row per signal, as text, for the at-a-glance table."""
    rows = [
        {
            "signal": name,
            "verdict": "DRIFTED" if s.verdict == "drifted" else s.verdict,
            "early": fmt_value(s.reference),
            "late": fmt_value(s.current),
            "statistic": fmt_number(s.statistic),
            "threshold": fmt_number(s.threshold),
            "drifts": s.fires_when or "",
            "test": s.statistic_name,
        }
        for name, s in report.signals.items()
    ]
    return pd.DataFrame(
        rows, columns=["signal", "verdict", "early", "late", "statistic", "threshold", "drifts", "test"]
    )


def _value(col: DeltaGenerator, title: str, v: object) -> None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        col.metric(title, fmt_number(float(v)))
    else:
        col.markdown(f"**{title}**  \n{fmt_value(v)}")  # type: ignore[arg-type]


def _shares_frame(early: Mapping[str, Any], late: Mapping[str, Any]) -> pd.DataFrame:
    """Long format for the grouped early/late bars of a dict-valued signal (label shares)."""
    rows = [
        {"key": k, "window": w, "value": float(x)} for w, d in (("early", early), ("late", late)) for k, x in d.items()
    ]
    return pd.DataFrame(rows)


def _signal(name: str, s: DriftSignal, early: str, late: str) -> None:
    with st.container(border=True):
        head, c_early, c_late, c_stat = st.columns([3, 2, 2, 2])
        with head:
            st.markdown(f"**{name}**")
            badge(s.verdict)
            if s.description:
                st.caption(s.description)
        if s.error:
            c_early.warning(s.error)
            return
        _value(c_early, early, s.reference)
        _value(c_late, late, s.current)
        c_stat.metric(s.statistic_name or "statistic", fmt_number(s.statistic))
        c_stat.caption(s.rule)
        if isinstance(s.reference, Mapping) and isinstance(s.current, Mapping) and is_shares(s.reference):
            frame = _shares_frame(s.reference, s.current)
            st.altair_chart(charts.shares_early_late(frame, f"{name}: early vs late"), width="stretch")
        if s.detail:
            st.caption(s.detail)


def render(sources: Sources, settings: Settings, labeller: str) -> None:
    st.header(TITLE)
    report, problem = loaders.load_drift(sources.drift)
    if problem:
        st.warning(problem, icon=":material/error:")
        return
    if report is None:
        st.info(
            f"**No drift report yet.**\n\nLooked in `{sources.drift}`. Produce one with "
            f"`sentiment-drift --output-json {sources.drift}`.",
            icon=":material/inbox:",
        )
        return
    _verdict(report)
    performance(report)
    early_full, late_full = (_window_name(report, key, short, full=True) for key, short in WINDOWS)
    st.caption(
        f"Early window: {early_full} · late window: {late_full}"
        + (f" · generated {report.generated_at}" if report.generated_at else "")
        + f" · `{sources.drift}`"
    )
    if not report.signals:
        st.info("The report lists no signals.")
        return
    st.dataframe(summary(report), hide_index=True)
    early, late = (_window_name(report, key, short, full=False) for key, short in WINDOWS)
    for name, s in report.signals.items():
        _signal(name, s, early, late)
