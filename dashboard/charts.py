"""Altair charts with titles and units, one function per chart, fed by :mod:`dashboard.aggregate` frames."""

from __future__ import annotations

import altair as alt
import pandas as pd

from sentiment.contract import LABELS

STATUS_COLORS = {"ok": "#2e7d32", "fallback": "#f9a825", "rejected": "#c62828"}
LABEL_COLORS = {"negative": "#c62828", "neutral": "#9e9e9e", "positive": "#2e7d32"}
COUNT_AXIS = alt.Axis(tickMinStep=1, format="d")
HEIGHT = 260


def time_axis(buckets: pd.Series, freq: str) -> alt.Axis:
    """No more ticks than buckets, so a three-minute window does not repeat the same minute label."""
    step = pd.Timedelta(freq)
    fmt = "%d %b %Y" if step >= pd.Timedelta("1D") else "%d %b %H:%M" if step >= pd.Timedelta("5min") else "%H:%M:%S"
    ticks = max(2, min(buckets.nunique(), 12))
    return alt.Axis(title="time (UTC)", format=fmt, labelAngle=-30, labelOverlap=True, tickCount=ticks)


def _scale(colors: dict[str, str]) -> alt.Scale:
    return alt.Scale(domain=list(colors), range=list(colors.values()))


CONFIDENCE_TITLES = {
    "model_confidence": "Model confidence (tier 1)",
    "confidence": "Confidence of labelled answers",
}


def confidence_histogram(hist: pd.DataFrame, column: str) -> alt.Chart:
    return (
        alt.Chart(hist, title=CONFIDENCE_TITLES[column])
        .mark_bar(color="#1565c0")
        .encode(
            x=alt.X("bucket:N", sort=None, title="confidence (calibrated probability)", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("count:Q", title="reviews", axis=COUNT_AXIS),
            tooltip=[alt.Tooltip("bucket:N", title="confidence"), alt.Tooltip("count:Q", title="reviews")],
        )
        .properties(height=HEIGHT)
    )


def reason_breakdown(reasons: pd.DataFrame) -> alt.Chart:
    """Why answers were not ``ok``: one bar per reason code, coloured by the status it led to."""
    return (
        alt.Chart(reasons, title="Why not ok (reason codes)")
        .mark_bar()
        .encode(
            y=alt.Y("reason_code:N", sort="-x", title=None),
            x=alt.X("count:Q", title="reviews", axis=COUNT_AXIS),
            color=alt.Color("status:N", scale=_scale({k: STATUS_COLORS[k] for k in ("fallback", "rejected")})),
            tooltip=["reason_code:N", "status:N", alt.Tooltip("count:Q", title="reviews")],
        )
        .properties(height=HEIGHT)
    )


def status_breakdown(counts: pd.DataFrame) -> alt.Chart:
    colors = {**STATUS_COLORS, **{s: "#616161" for s in counts["status"] if s not in STATUS_COLORS}}
    return (
        alt.Chart(counts, title="Status breakdown")
        .mark_bar()
        .encode(
            y=alt.Y("status:N", sort=list(colors), title=None),
            x=alt.X("count:Q", title="reviews", axis=COUNT_AXIS),
            color=alt.Color("status:N", scale=_scale(colors), legend=None),
            tooltip=["status:N", alt.Tooltip("count:Q", title="reviews"), alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=HEIGHT)
    )


def oov_over_time(frame: pd.DataFrame, freq: str) -> alt.Chart:
    return (
        alt.Chart(frame, title="OOV rate over time (mean per bucket)")
        .mark_line(point=True, color="#6a1b9a")
        .encode(
            x=alt.X("bucket:T", axis=time_axis(frame["bucket"], freq)),
            y=alt.Y("oov_rate:Q", title="OOV rate (share of words)", axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("bucket:T", title="from", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("oov_rate:Q", title="OOV rate", format=".2%"),
                alt.Tooltip("n:Q", title="reviews"),
            ],
        )
        .properties(height=HEIGHT)
    )


def labels_over_time(frame: pd.DataFrame, freq: str) -> alt.Chart:
    return (
        alt.Chart(frame, title="Label distribution over time (share of labelled reviews)")
        .mark_bar(opacity=0.9)
        .encode(
            x=alt.X("bucket:T", axis=time_axis(frame["bucket"], freq)),
            x2="bucket_end:T",
            y=alt.Y("share_lo:Q", title="share of reviews", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            y2="share_hi:Q",
            color=alt.Color("label:N", scale=_scale(LABEL_COLORS), sort=list(LABELS), title="label"),
            tooltip=[
                alt.Tooltip("bucket:T", title="from", format="%Y-%m-%d %H:%M"),
                "label:N",
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("n:Q", title="reviews"),
            ],
        )
        .properties(height=HEIGHT)
    )


def latency_over_time(frame: pd.DataFrame, freq: str) -> alt.Chart:
    return (
        alt.Chart(frame, title="Latency percentiles over time")
        .mark_line(point=True)
        .encode(
            x=alt.X("bucket:T", axis=time_axis(frame["bucket"], freq)),
            y=alt.Y("latency_ms:Q", title="latency (ms)"),
            color=alt.Color("percentile:N", title="percentile"),
            tooltip=[
                alt.Tooltip("bucket:T", title="from", format="%Y-%m-%d %H:%M"),
                "percentile:N",
                alt.Tooltip("latency_ms:Q", title="latency (ms)", format=".1f"),
            ],
        )
        .properties(height=HEIGHT)
    )


def shares_early_late(shares: pd.DataFrame, title: str) -> alt.Chart:
    """Grouped bars for a dict-valued drift signal (e.g. label shares): early and late side by side."""
    return (
        alt.Chart(shares, title=title)
        .mark_bar()
        .encode(
            x=alt.X("key:N", title=None, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("window:N", sort=["early", "late"]),
            y=alt.Y("value:Q", title="share", axis=alt.Axis(format="%")),
            color=alt.Color("window:N", sort=["early", "late"], scale=alt.Scale(range=["#90a4ae", "#1565c0"])),
            tooltip=["key:N", "window:N", alt.Tooltip("value:Q", format=".1%")],
        )
        .properties(height=200)
    )


def service_histogram(counts: dict[str, int]) -> alt.Chart:
    """The service's own confidence histogram from ``/stats`` (tier 1 probabilities over its rolling window)."""
    frame = pd.DataFrame({"bucket": list(counts), "count": list(counts.values())})
    return (
        alt.Chart(frame, title="Live model confidence (service window)")
        .mark_bar(color="#00838f")
        .encode(
            x=alt.X("bucket:N", sort=None, title="confidence (calibrated probability)", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("count:Q", title="requests", axis=COUNT_AXIS),
        )
        .properties(height=180)
    )


def performance_over_time(frame: pd.DataFrame, freq: str) -> alt.LayerChart:
    """Estimated macro-F1 per version with its 95% band; realised macro-F1 from operator labels as points."""
    est = frame[frame["figure"] == "estimated"]
    real = frame[frame["figure"] != "estimated"]
    x = alt.X("bucket:T", axis=time_axis(frame["bucket"], freq))
    tips = [
        alt.Tooltip("bucket:T", title="from", format="%Y-%m-%d %H:%M"),
        "model_tag:N",
        "figure:N",
        alt.Tooltip("value:Q", title="macro-F1", format=".3f"),
        alt.Tooltip("lo:Q", title="95% from", format=".3f"),
        alt.Tooltip("hi:Q", title="95% to", format=".3f"),
        alt.Tooltip("n:Q", title="answers"),
        alt.Tooltip("labelled:Q", title="labelled"),
    ]
    color = alt.Color("model_tag:N", title="model version")
    band = alt.Chart(est).mark_area(opacity=0.2).encode(x=x, y="lo:Q", y2="hi:Q", color=color)
    line = (
        alt.Chart(est)
        .mark_line(point=True)
        .encode(x=x, y=alt.Y("value:Q", title="macro-F1", scale=alt.Scale(zero=False)), color=color, tooltip=tips)
    )
    points = (
        alt.Chart(real)
        .mark_point(shape="diamond", size=90, filled=True)
        .encode(x=x, y="value:Q", color=color, tooltip=tips)
    )
    return (band + line + points).properties(
        title="Estimated macro-F1 over time (band: 95% interval; diamonds: realised, from operator labels)",
        height=HEIGHT,
    )


def mix_over_time(frame: pd.DataFrame, freq: str) -> alt.Chart:
    """The estimated share of each true class per version: a prior shift shows here before labels do."""
    return (
        alt.Chart(frame, title="Estimated class mix over time (dashes: model version)")
        .mark_line(point=True)
        .encode(
            x=alt.X("bucket:T", axis=time_axis(frame["bucket"], freq)),
            y=alt.Y("share:Q", title="estimated share", axis=alt.Axis(format="%")),
            color=alt.Color("label:N", scale=_scale(LABEL_COLORS), title="class"),
            strokeDash=alt.StrokeDash("model_tag:N", title="model version"),
            tooltip=[
                alt.Tooltip("bucket:T", title="from", format="%Y-%m-%d %H:%M"),
                "model_tag:N",
                "label:N",
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("lo:Q", title="95% from", format=".1%"),
                alt.Tooltip("hi:Q", title="95% to", format=".1%"),
            ],
        )
        .properties(height=HEIGHT)
    )
