"""Panel 1: what the service answered: confidence, status split, OOV and labels over time, latency."""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import aggregate, charts, loaders
from dashboard.panels import TITLES
from dashboard.panels.common import empty_state, read_note, read_problem
from dashboard.sources import Sources
from sentiment.estimation import choose_method
from sentiment.settings import Settings

TITLE = TITLES["overview"]


def _pct(x: float | None) -> str:
    return "—" if x is None or x != x else f"{x:.1%}"


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} ms"


def _series(build: Callable[[pd.DataFrame, str], alt.Chart], frame: pd.DataFrame, freq: str, empty: str) -> None:
    """A time series needs timestamps and values; records without them get a line of text, not a blank chart."""
    if frame.empty:
        st.caption(empty)
    else:
        st.altair_chart(build(frame, freq), width="stretch")


def live_service(settings: Settings) -> None:
    """The running service's rolling counters, when it answers within the timeout; otherwise one quiet line."""
    url = settings.dashboard.service_url
    if not url:
        return
    result = loaders.load_stats(url, settings.dashboard.stats_timeout_s)
    if result.stats is None:
        st.caption(f"Live service `{result.url}` {result.problem}: showing the log files only.")
        return
    s = result.stats
    with st.container(border=True):
        window = f"last {s.window_size:,} predictions" if s.window_size is not None else "rolling window"
        st.markdown(f"**Live service** · `{result.url}` ({window})")
        cols = st.columns(6)
        cols[0].metric("requests (live)", f"{s.total_requests:,}")
        for col, status in zip(cols[1:4], aggregate.STATUSES, strict=True):
            col.metric(f"{status} (live)", f"{s.status_breakdown.get(status, 0):,}")
        cols[4].metric("rolling OOV rate", _pct(s.rolling_oov_rate))
        cols[5].metric("rolling confidence", "—" if s.rolling_confidence is None else f"{s.rolling_confidence:.3f}")
        if s.confidence_histogram:
            st.altair_chart(charts.service_histogram(s.histogram()), width="stretch")


def performance(df: pd.DataFrame, sources: Sources, settings: Settings, freq: str) -> None:
    """Estimated macro-F1 and class mix per version, realised macro-F1 beside them where operators labelled."""
    st.subheader("Estimated performance (no labels needed)")
    method, atc, note = choose_method(settings.estimation.method, settings.estimation.atc_threshold)
    labels = loaders.load_labels(sources.labels, settings.dashboard.tail_records)
    f1, mix = aggregate.performance_over_time(df, labels, freq, method, atc)
    if f1.empty:
        st.caption("No answers with logged probabilities yet (logs written before they were kept have none).")
        return
    st.altair_chart(charts.performance_over_time(f1, freq), width="stretch")
    st.altair_chart(charts.mix_over_time(mix, freq), width="stretch")
    realised = int((f1["figure"] == "realised (operator labels)").sum())
    st.caption(
        f"Estimated by {method} from tier 1's calibrated probabilities, per time bucket and model version; it "
        "holds while calibration holds (docs/performance-estimation.md). "
        + (
            f"{realised} bucket(s) have at least {aggregate.MIN_REALISED} operator labels: the realised macro-F1 "
            "(diamond) is drawn beside the estimate for those same answers (circle), since operators label a chosen "
            "few, not a random sample; where the two part, do not trust the estimate there."
            if realised
            else "No bucket has enough operator labels yet to draw the realised figure."
        )
        + (f" {note}" if note else "")
    )


def render(sources: Sources, settings: Settings, labeller: str) -> None:
    st.header(TITLE)
    live_service(settings)
    loaded = loaders.load_predictions(sources.predictions, settings.dashboard.tail_records, sources.replicas)
    read_problem(loaded, sources.shown(sources.predictions))
    df = loaded.frame
    if df.empty:
        empty_state(
            "No predictions logged yet.",
            sources.shown(sources.predictions),
            "Send reviews to the service, or press **Seed demo records** in the sidebar.",
        )
        read_note(loaded, sources.predictions, "records", sources.replicas)
        return

    counts = aggregate.status_counts(df).set_index("status")
    cols = st.columns(5)
    cols[0].metric("predictions", f"{len(df):,}")
    for col, status in zip(cols[1:4], aggregate.STATUSES, strict=True):
        col.metric(status, f"{counts['count'][status]:,} ({_pct(counts['share'][status])})")
    oov = df["oov_rate"].dropna()
    cols[4].metric(
        "mean OOV rate",
        _pct(float(oov.mean())) if len(oov) else "—",
        help="share of words not in the training vocabulary, over reviews the model saw",
    )

    left, middle, right = st.columns(3)
    column = aggregate.confidence_column(df)
    left.altair_chart(charts.confidence_histogram(aggregate.confidence_histogram(df), column), width="stretch")
    middle.altair_chart(charts.status_breakdown(aggregate.status_counts(df)), width="stretch")
    reasons = aggregate.reason_counts(df)
    if reasons.empty:
        right.caption("Every answer was ok: no fallback or rejection reasons.")
    else:
        right.altair_chart(charts.reason_breakdown(reasons), width="stretch")

    freq = aggregate.bucket_for(df)
    _series(charts.oov_over_time, aggregate.oov_over_time(df, freq), freq, "No OOV rates logged yet.")
    _series(charts.labels_over_time, aggregate.labels_over_time(df, freq), freq, "No timestamped labelled answers yet.")
    performance(df, sources, settings, freq)

    st.subheader("Latency")
    pcts = aggregate.latency_percentiles(df)
    for col, (name, value) in zip(st.columns(len(pcts)), pcts.items(), strict=True):
        col.metric(f"{name} latency", _ms(value))
    _series(charts.latency_over_time, aggregate.latency_over_time(df, freq), freq, "No timed records.")
    read_note(loaded, sources.predictions, "records", sources.replicas)
    st.caption(f"Time buckets: {freq}.")
