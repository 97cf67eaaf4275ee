"""Panel 2: what an operator labels, in order: every review escalated to a human (filterable), then the labelling
sample (uncertain and random tier-1 answers, :mod:`fallback.label_sample`); labels go to the append-only labels file.
Below both: how many labels the product line has and what the next adaptation would do with them."""

from __future__ import annotations

import math
from pathlib import Path

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
    _queue(sources, settings, labeller)
    if sources.sample is not None:
        _sample(sources, sources.sample, settings, labeller)
    _plan(settings, sources)


def _queue(sources: Sources, settings: Settings, labeller: str) -> None:
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


def _sample(sources: Sources, path: Path, settings: Settings, labeller: str) -> None:
    st.subheader("Labelling sample")
    n = settings.dashboard.tail_records
    loaded = loaders.load_sample(path, n, sources.replicas)
    read_problem(loaded, sources.shown(path))
    df = loaded.frame
    if df.empty:
        st.info(
            f"No labelling sample yet (`{sources.shown(path)}`): the service offers its least certain answers, and a "
            f"random {settings.labelling.random_share:.0%} of the rest, up to {settings.labelling.daily_cap} a day."
        )
        return
    df = df.assign(human_label=df["request_id"].map(loaders.load_labels(sources.labels, n)))
    waiting = df[df["human_label"].isna()]
    cols = st.columns(3)
    cols[0].metric("sampled", f"{len(df):,}")
    cols[1].metric("sample labelled", f"{len(df) - len(waiting):,}")
    cols[2].metric("sample awaiting label", f"{len(waiting):,}")
    st.caption(
        "Most uncertain first (smallest margin between the top two classes), the random picks interleaved: they are "
        "what lets the product line's class mix be estimated, so label them too."
    )
    for _, row in waiting.head(PAGE_SIZE).iterrows():
        with st.container(border=True):
            info, buttons = st.columns([3, 2])
            picked = "uncertain" if row["selection"] == "margin" else f"random (weight {row['weight']:.0f})"
            info.markdown(f"**{picked}** · margin {row['margin']:.3f} · `{row['request_id']}`")
            info.text(row["text"])
            info.caption(f"model said {row['model_label']} ({row['model_confidence']:.3f})")
            for col, label in zip(buttons.columns(len(LABELS)), LABELS, strict=True):
                col.button(
                    label,
                    key=f"sample-{row['request_id']}-{label}",
                    on_click=_save,
                    args=(sources, row["request_id"], row["text"], label, labeller),
                )
    read_note(loaded, path, "sampled reviews", sources.replicas)


def _plan(settings: Settings, sources: Sources) -> None:
    st.subheader("Labels of this product line")
    if sources.kind != "real":
        st.caption("The demo view has no retraining plan: it reads the real labels file only.")
        return
    plan = loaders.load_plan(settings)
    if isinstance(plan, str):
        st.error(plan)
        return
    cols = st.columns(3)
    cols[0].metric("labelled reviews", f"{plan.labels:,}")
    cols[1].metric("to adapt on", f"{plan.train:,}")
    cols[2].metric("held out for the gate", f"{plan.held_out:,}")
    st.markdown(f"Next `sentiment-retrain --auto`: **{plan.path}** ({plan.why}).")
