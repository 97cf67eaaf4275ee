"""Panel 2: every review escalated to a human, filterable, labelled in place into the append-only labels file."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard import loaders
from dashboard.panels import TITLES
from dashboard.panels.common import empty_state, read_note, read_problem
from dashboard.sources import Sources
from sentiment.contract import LABELS
from sentiment.settings import Settings

TITLE = TITLES["queue"]
PAGE_SIZE = 10
SHOW = ("awaiting label", "labelled", "all")


def _save(sources: Sources, request_id: str, text: str, label: str, labeller: str) -> None:
    try:
        loaders.save_label(sources.labels, request_id, text, label, labeller)
    except OSError as exc:
        st.session_state["queue_saved"] = (False, f"Could not save the label for `{request_id}`: {exc}")
        return
    st.session_state["queue_saved"] = (True, f"Saved **{label}** for `{request_id}` to `{sources.labels}`.")


def _filter(df: pd.DataFrame) -> pd.DataFrame:
    c1, c2, c3 = st.columns([2, 1, 2])
    reasons = sorted(df["reason_code"].dropna().unique().tolist())
    picked = c1.multiselect("Reason", reasons, default=reasons, key="queue_reasons")
    show = c2.radio("Show", SHOW, key="queue_show", horizontal=True)
    needle = c3.text_input("Text contains", key="queue_search").strip().lower()
    keep = df["reason_code"].isin(picked) | (df["reason_code"].isna() & (len(picked) == len(reasons)))
    if show == "awaiting label":
        keep &= df["human_label"].isna()
    elif show == "labelled":
        keep &= df["human_label"].notna()
    if needle:
        keep &= df["text"].str.lower().str.contains(needle, regex=False).fillna(False)
    return df[keep]


def _card(row: pd.Series, sources: Sources, labeller: str) -> None:
    with st.container(border=True):
        info, buttons = st.columns([3, 2])
        ts = row["ts"].strftime("%Y-%m-%d %H:%M:%S UTC") if pd.notna(row["ts"]) else "time unknown"
        replica = f" · replica `{row['replica']}`" if sources.replicas else ""
        info.markdown(f"**{ts}** · `{row['reason_code']}` · `{row['request_id']}`{replica}")
        info.text(row["text"] if pd.notna(row["text"]) else "(no text)")
        model = (
            f"model said {row['model_label']} ({row['model_confidence']:.3f})"
            if pd.notna(row["model_label"]) and pd.notna(row["model_confidence"])
            else "model gave no label"
        )
        info.caption(f"Why: {row['reason']} · {model}")
        current = row["human_label"] if pd.notna(row["human_label"]) else None
        buttons.caption(f"Label: **{current}**" if current else "Not labelled yet")
        for col, label in zip(buttons.columns(len(LABELS)), LABELS, strict=True):
            col.button(
                label,
                key=f"label-{row['request_id']}-{label}",
                type="primary" if label == current else "secondary",
                on_click=_save,
                args=(sources, row["request_id"], row["text"], label, labeller),
            )


def render(sources: Sources, settings: Settings, labeller: str) -> None:
    st.header(TITLE)
    if saved := st.session_state.pop("queue_saved", None):
        ok, message = saved
        (st.success if ok else st.error)(message)
    n = settings.dashboard.tail_records
    loaded = loaders.load_queue(sources.queue, n, sources.replicas)
    read_problem(loaded, sources.shown(sources.queue))
    df = loaded.frame.dropna(subset=["request_id"]).drop_duplicates("request_id", keep="last")
    if df.empty:
        empty_state(
            "Nothing has been escalated to a human yet.",
            sources.shown(sources.queue),
            "Reviews land here when neither the model nor the keyword rules can answer.",
        )
        read_note(loaded, sources.queue, "queued reviews", sources.replicas)
        return
    df = df.assign(human_label=df["request_id"].map(loaders.load_labels(sources.labels, n)))
    labelled = int(df["human_label"].notna().sum())
    cols = st.columns(3)
    cols[0].metric("escalated", f"{len(df):,}")
    cols[1].metric("labelled", f"{labelled:,}")
    cols[2].metric("awaiting label", f"{len(df) - labelled:,}")

    shown = _filter(df).sort_values("ts", ascending=False, na_position="last")
    st.dataframe(
        shown[["ts", "reason_code", "reason", "text", "model_label", "model_confidence", "human_label"]],
        hide_index=True,
        column_config={
            "ts": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "model_confidence": st.column_config.NumberColumn("model confidence", format="%.3f"),
            "reason_code": "reason code",
            "model_label": "model label",
            "human_label": "human label",
        },
    )
    st.subheader("Label in place")
    if shown.empty:
        st.info("No queued review matches the filters.")
    else:
        pages = math.ceil(len(shown) / PAGE_SIZE)
        page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="queue_page") if pages > 1 else 1
        st.caption(f"Labels are appended to `{sources.labels}` (append-only; the latest label per review wins).")
        for _, row in shown.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE].iterrows():
            _card(row, sources, labeller)
    read_note(loaded, sources.queue, "queued reviews", sources.replicas)
