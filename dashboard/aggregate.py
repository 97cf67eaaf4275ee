"""Pure pandas views of the logs, so every number the dashboard shows is testable without Streamlit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sentiment.contract import LABELS, Status
from sentiment.estimation import AtcThreshold, Method, estimate

STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
PREDICTION_COLUMNS: tuple[str, ...] = (
    "ts",
    "request_id",
    "label",
    "confidence",
    "model_confidence",
    "status",
    "reason_code",
    "reason",
    "tier",
    "oov_rate",
    "unk_rate",
    "latency_ms",
    "text_len",
    "lang",
    "model_tag",
    "probs",  # tier 1's calibrated probabilities, where logged: what the performance estimate reads
    "replica",  # which replica's log (sentiment.replicas): the data dir's folder name
)
QUEUE_COLUMNS: tuple[str, ...] = (
    "ts",
    "request_id",
    "text",
    "reason_code",
    "reason",
    "model_label",
    "model_confidence",
    "rules_label",
    "rules_detail",
    "replica",
)
NUMERIC = ("confidence", "model_confidence", "oov_rate", "unk_rate", "latency_ms", "text_len")
PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)
# Candidate time buckets, smallest first: the first that gives few enough points over the span wins.
BUCKETS: tuple[str, ...] = ("1min", "5min", "15min", "30min", "1h", "3h", "6h", "12h", "1D", "7D", "30D")
MAX_BUCKETS = 60
MIN_PER_BUCKET = 10  # fewer records per point and a mean OOV rate is mostly noise


def _frame(records: Iterable[Mapping[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    """Records with any subset of the expected keys become a frame with exactly ``columns`` (missing = NA)."""
    df = pd.DataFrame.from_records(list(records))
    for col in columns:
        if col not in df.columns:
            df[col] = pd.NA
    df = df[list(columns)].copy()
    df["ts"] = pd.to_datetime(df["ts"].astype("string"), utc=True, format="ISO8601", errors="coerce")
    return df


def predictions_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per logged answer, numbers coerced (a garbled field becomes NA, not an exception)."""
    df = _frame(records, PREDICTION_COLUMNS)
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in ("label", "status", "reason_code", "tier"):
        df[col] = df[col].astype("string")
    return df


def _opinion(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def queue_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per escalated review, with what the model and the rules said about it flattened out."""
    rows = [
        {
            **r,
            "model_label": _opinion(r.get("model"), "label"),
            "model_confidence": _opinion(r.get("model"), "confidence"),
            "rules_label": _opinion(r.get("rules"), "label"),
            "rules_detail": _opinion(r.get("rules"), "detail"),
        }
        for r in records
    ]
    df = _frame(rows, QUEUE_COLUMNS)
    df["model_confidence"] = pd.to_numeric(df["model_confidence"], errors="coerce")
    for col in ("request_id", "text", "reason_code", "reason", "model_label", "rules_label", "rules_detail"):
        df[col] = df[col].astype("string")
    return df


SAMPLE_COLUMNS: tuple[str, ...] = (
    "ts",
    "request_id",
    "text",
    "selection",
    "weight",
    "margin",
    "model_label",
    "model_confidence",
    "model_tag",
)


def sample_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per review in the labelling sample, in the order an operator should label them: the uncertain and
    the random picks interleaved by their rank within each (most uncertain first), so that stopping anywhere leaves
    both kinds labelled in proportion."""
    rows = [
        {
            **r,
            "model_label": _opinion(r.get("model"), "label"),
            "model_confidence": _opinion(r.get("model"), "confidence"),
        }
        for r in records
    ]
    df = _frame(rows, SAMPLE_COLUMNS)
    for col in ("weight", "margin", "model_confidence"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in ("request_id", "text", "selection", "model_label", "model_tag"):
        df[col] = df[col].astype("string")
    df = df.dropna(subset=["request_id", "text"]).drop_duplicates("request_id", keep="last")
    rank = df.groupby("selection", dropna=False)["margin"].rank(method="first")
    size = df.groupby("selection", dropna=False)["margin"].transform("size")
    return (
        df.assign(order=(rank - 0.5) / size)
        .sort_values(["order", "margin"])
        .drop(columns="order")
        .reset_index(drop=True)
    )


def status_counts(df: pd.DataFrame) -> pd.DataFrame:
    """ok / fallback / rejected always present (zero when absent), in that order, with their share."""
    counts = df["status"].value_counts()
    rows = [(s, int(counts.get(s, 0))) for s in STATUSES]
    rows += [(str(s), int(n)) for s, n in counts.items() if s not in STATUSES]
    out = pd.DataFrame(rows, columns=["status", "count"])
    total = int(out["count"].sum())
    out["share"] = out["count"] / total if total else 0.0
    return out


def reason_counts(df: pd.DataFrame) -> pd.DataFrame:
    """How many fallback and rejected answers each reason code accounts for, most frequent first."""
    not_ok = df[df["status"].isin(["fallback", "rejected"])]
    codes = not_ok["reason_code"].fillna("").replace("", "(none)")
    counts = not_ok.assign(reason_code=codes).groupby(["reason_code", "status"]).size().rename("count")
    return counts.reset_index().sort_values("count", ascending=False, ignore_index=True)


def confidence_column(df: pd.DataFrame) -> str:
    """Tier 1's own top probability when the log has it (what ``/stats`` and drift watch: a model growing unsure
    shows here before it is gated); older logs only have the answer's confidence."""
    return "model_confidence" if df["model_confidence"].notna().any() else "confidence"


def confidence_histogram(df: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Counts per bucket of :func:`confidence_column`. Answer confidences count only for labelled answers:
    rejected and human-queued ones carry 0 by contract, which says nothing about the model."""
    column = confidence_column(df)
    rows = df if column == "model_confidence" else df[df["label"].isin(LABELS)]
    answered = rows[column].dropna().clip(0.0, 1.0)
    edges = [i / bins for i in range(bins + 1)]
    cut = pd.cut(answered, bins=edges, include_lowest=True, right=False)
    counts = cut.value_counts(sort=False)
    # right=False leaves exactly 1.0 outside the last bin; it belongs there.
    last = int((answered == 1.0).sum())
    buckets = []
    for i in range(bins):
        n = int(counts.iloc[i]) + (last if i == bins - 1 else 0)
        buckets.append({"lo": edges[i], "hi": edges[i + 1], "bucket": f"{edges[i]:.1f}–{edges[i + 1]:.1f}", "count": n})
    return pd.DataFrame(buckets)


def latency_percentiles(df: pd.DataFrame) -> dict[str, float | None]:
    """p50/p90/p95/p99 of logged latency in milliseconds (None when nothing was logged)."""
    lat = df["latency_ms"].dropna()
    return {f"p{p}": (float(lat.quantile(p / 100)) if len(lat) else None) for p in PERCENTILES}


def bucket_for(df: pd.DataFrame) -> str:
    """A time bucket that gives a readable number of points for the span the records cover."""
    ts = df["ts"].dropna()
    if ts.empty:
        return BUCKETS[0]
    span = ts.max() - ts.min()
    most = max(6, min(MAX_BUCKETS, len(ts) // MIN_PER_BUCKET))
    for freq in BUCKETS:
        if span / pd.Timedelta(freq) <= most:
            return freq
    return BUCKETS[-1]


def _timed(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    out = df.dropna(subset=["ts"]).copy()
    out["bucket"] = out["ts"].dt.floor(freq)
    return out


def oov_over_time(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Mean word-OOV rate per bucket over reviews the model saw (rejected ones have none)."""
    timed = _timed(df.dropna(subset=["oov_rate"]), freq)
    grouped = timed.groupby("bucket")["oov_rate"].agg(["mean", "count"]).reset_index()
    return grouped.rename(columns={"mean": "oov_rate", "count": "n"})


MIN_REALISED = 10  # labelled answers a bucket needs before its realised macro-F1 is drawn


def performance_over_time(
    df: pd.DataFrame,
    labels: Mapping[str, str],
    freq: str,
    method: Method = "cbpe",
    atc: AtcThreshold | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimated macro-F1 per bucket and model version (with the realised one where operators labelled enough
    answers), and the estimated class mix; long frames for the charts. Records without probabilities are left out.
    """
    has = df["probs"].map(lambda p: isinstance(p, list) and len(p) == len(LABELS))
    timed = _timed(df[has], freq)
    timed["model_tag"] = timed["model_tag"].fillna("").astype(str)
    index = {label: i for i, label in enumerate(LABELS)}
    f1_rows: list[dict[str, Any]] = []
    mix_rows: list[dict[str, Any]] = []
    for (bucket, tag), group in timed.groupby(["bucket", "model_tag"], sort=True):
        y = [index.get(labels.get(str(r), ""), -1) for r in group["request_id"]]
        e = estimate(np.array(group["probs"].tolist(), dtype=np.float64), method, atc, np.array(y))
        version = str(tag) or "(untagged)"
        base = {"bucket": bucket, "model_tag": version, "n": e.n, "labelled": e.labelled}
        f1_rows.append(
            {**base, "figure": "estimated", "value": e.macro_f1.value, "lo": e.macro_f1.lo, "hi": e.macro_f1.hi}
        )
        if e.labelled >= MIN_REALISED and e.realised_macro_f1 is not None:
            for figure, v in (
                ("realised (operator labels)", e.realised_macro_f1),
                ("estimated on the same labelled answers", e.labelled_estimated_macro_f1),
            ):
                f1_rows.append({**base, "figure": figure, "value": v, "lo": v, "hi": v})
        for label, c in e.per_class.items():
            mix_rows.append({**base, "label": label, "share": c.share.value, "lo": c.share.lo, "hi": c.share.hi})
    f1_cols = ["bucket", "model_tag", "n", "labelled", "figure", "value", "lo", "hi"]
    mix_cols = ["bucket", "model_tag", "n", "labelled", "label", "share", "lo", "hi"]
    return pd.DataFrame(f1_rows, columns=f1_cols), pd.DataFrame(mix_rows, columns=mix_cols)


def labels_over_time(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Share of each label per bucket among reviews that got a label (long format for a stacked chart)."""
    timed = _timed(df[df["label"].isin(LABELS)], freq)
    # Every label in every bucket (0 when absent), so stacked areas do not jump between buckets.
    counts = timed.groupby(["bucket", "label"]).size().unstack(fill_value=0).reindex(columns=list(LABELS), fill_value=0)
    long = counts.stack().rename("n").reset_index()  # type: ignore[call-overload]  # a Series: one column level
    long["share"] = long["n"] / long.groupby("bucket")["n"].transform("sum")
    # Explicit rectangles (bucket..bucket_end x share_lo..share_hi): each bar spans its whole time bucket.
    long["bucket_end"] = long["bucket"] + pd.Timedelta(freq)
    long["share_hi"] = long.groupby("bucket")["share"].cumsum()
    long["share_lo"] = long["share_hi"] - long["share"]
    return long


def latency_over_time(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    """p50 and p95 latency per bucket (long format: bucket, percentile, latency_ms)."""
    timed = _timed(df.dropna(subset=["latency_ms"]), freq)
    grouped = timed.groupby("bucket")["latency_ms"]
    wide = pd.DataFrame({"p50": grouped.quantile(0.5), "p95": grouped.quantile(0.95)}).reset_index()
    return wide.melt(id_vars="bucket", var_name="percentile", value_name="latency_ms")
