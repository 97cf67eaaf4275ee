"""Cached, never-raising loaders for each file the dashboard reads, and the one writer (operator labels).

Every loader is keyed on the file's (mtime, size) as well as ``ttl=10``: an unchanged file costs no I/O on a
rerun, and a file the dashboard itself just appended to (a label, demo data) shows up at once. Predictions and the
queue may be many replicas' logs (``replicas``, :mod:`sentiment.replicas`): then the key is every copy's stamp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from dashboard import aggregate
from dashboard.drift_report import DriftReport, parse_report
from dashboard.stats_client import StatsResult, fetch_stats
from sentiment.contract import Label
from sentiment.estimation import latest_labels
from sentiment.jsonl import ReadStats, append_records
from sentiment.records import HumanLabel
from sentiment.replicas import replica_logs, tail_merged
from sentiment.settings import Settings

if TYPE_CHECKING:
    from training.adaptation import AdaptPlan  # imported when first asked: it brings scipy

CACHE_TTL_S = 10


@dataclass(frozen=True)
class Loaded:
    """A frame plus what the reader had to put up with, so the page can say so instead of failing."""

    frame: pd.DataFrame
    skipped: int = 0
    limit: int = 0
    error: str | None = None

    @property
    def at_limit(self) -> bool:
        return self.limit > 0 and len(self.frame) >= self.limit


def _stamp(path: Path) -> tuple[int, int]:
    try:
        s = path.stat()
    except OSError:
        return (0, -1)
    return (s.st_mtime_ns, s.st_size)


def _stamps(path: Path, replicas: bool) -> tuple[tuple[str, int, int], ...]:
    """Each replica's live file (rotation replaces it, so a new piece changes its stamp too)."""
    return tuple((name, *_stamp(log)) for name, log in replica_logs(path, replicas).items())


def _tail(path: str, n: int, replicas: bool = False) -> tuple[list[dict[str, Any]], int, str | None]:
    """The newest ``n`` records over the log's replicas (the one file without ``replicas``), tagged with theirs."""
    stats = ReadStats()
    try:
        return tail_merged(replica_logs(Path(path), replicas), n, stats), stats.skipped, None
    except OSError as exc:  # a directory, no permission, a vanished mount: say so, do not crash the page
        return [], 0, f"{type(exc).__name__}: {exc.strerror or exc}"


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _predictions(path: str, stamps: tuple[tuple[str, int, int], ...], n: int, replicas: bool) -> Loaded:
    records, skipped, error = _tail(path, n, replicas)
    return Loaded(aggregate.predictions_frame(records), skipped, n, error)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _queue(path: str, stamps: tuple[tuple[str, int, int], ...], n: int, replicas: bool) -> Loaded:
    records, skipped, error = _tail(path, n, replicas)
    return Loaded(aggregate.queue_frame(records), skipped, n, error)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _sample(path: str, stamps: tuple[tuple[str, int, int], ...], n: int, replicas: bool) -> Loaded:
    records, skipped, error = _tail(path, n, replicas)
    return Loaded(aggregate.sample_frame(records), skipped, n, error)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _plan(path: str, stamp: tuple[int, int], settings_json: str) -> AdaptPlan | str:
    from training.adaptation import plan_for

    try:
        return plan_for(Settings.model_validate_json(settings_json))[0]
    except OSError as exc:
        return f"cannot read {path}: {exc}"


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _labels(path: str, stamp: tuple[int, int], n: int) -> dict[str, str]:
    records, _, _ = _tail(path, n)
    return latest_labels(records)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _drift(path: str, stamp: tuple[int, int]) -> tuple[DriftReport | None, str | None]:
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {path}: {exc}"
    try:
        return parse_report(json.loads(raw)), None
    except (json.JSONDecodeError, ValueError) as exc:
        return None, f"{path} is not a drift report ({exc}); it may be half written, try again in a moment"


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _stats(url: str, timeout_s: float) -> StatsResult:
    return fetch_stats(url, timeout_s)


def load_predictions(path: Path, n: int, replicas: bool = False) -> Loaded:
    """The last ``n`` records of the predictions log (of all replicas' logs, merged by time, with ``replicas``)."""
    return _predictions(str(path), _stamps(path, replicas), n, replicas)


def load_queue(path: Path, n: int, replicas: bool = False) -> Loaded:
    """The last ``n`` escalated reviews (of all replicas, with ``replicas``)."""
    return _queue(str(path), _stamps(path, replicas), n, replicas)


def load_sample(path: Path, n: int, replicas: bool = False) -> Loaded:
    """The last ``n`` reviews of the labelling sample (of all replicas, with ``replicas``), in labelling order."""
    return _sample(str(path), _stamps(path, replicas), n, replicas)


def load_plan(settings: Settings) -> AdaptPlan | str:
    """What the next adaptation would use from the labels file (or why it cannot be read)."""
    path = settings.paths.human_labels
    return _plan(str(path), _stamp(path), settings.model_dump_json())


def load_labels(path: Path, n: int) -> dict[str, str]:
    """request_id -> latest operator label."""
    return _labels(str(path), _stamp(path), n)


def load_drift(path: Path) -> tuple[DriftReport | None, str | None]:
    """(report, problem): (None, None) means no report yet; a problem is a sentence for the operator."""
    return _drift(str(path), _stamp(path))


def load_stats(url: str, timeout_s: float) -> StatsResult:
    """The running service's ``/stats``, at most one request per ``ttl`` so an absent service costs one timeout."""
    return _stats(url, timeout_s)


def save_label(path: Path, request_id: str, text: str, label: Label | str, labeller: str) -> None:
    """Append one operator label (same append-only, lock-protected writer as the queue itself)."""
    record = HumanLabel(request_id=request_id, text=text, label=Label(label), labeller=labeller or "operator")
    append_records(path, [record], fsync=True)
