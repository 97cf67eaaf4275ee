"""The trends rollup: per hour, model version, source and topic, the sums ``GET /trends`` answers from.

Each batch of answers the service logs is added as it is logged (one SQLite transaction per batch; every worker
writes the same file, which SQLite's locking serialises). Every column is a sum, so hours add up to days and weeks
in one ``GROUP BY``, and a query reads a few rows per hour instead of the log: counts per label, confidence, the
low-confidence count, and CBPE's sufficient statistics (:func:`sentiment.estimation.cbpe_sums`: the expected
confusion matrix and its columns' covariances), from which each window's estimate is computed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from sentiment.contract import LABELS
from sentiment.estimation import K, PerformanceEstimate, cbpe_sums, many_from_expected
from sentiment.records import PredictionRecord

Granularity = Literal["hour", "day", "week"]
_MEAN = [f"m{t}{j}" for t in range(K) for j in range(K)]  # expected confusion matrix, (true, pred)
_COV = [f"c{j}{a}{b}" for j in range(K) for a in range(K) for b in range(K)]  # per predicted class
_COUNTS = ["n", *(f"n_{label}" for label in LABELS), "n_conf", "sum_conf", "n_low", "n_model"]
_KEY = ["hour", "model_tag", "source", "topic"]
ALL = "*"  # the source or topic of a row that totals every value of it (requests may not use it as a value)
_BUCKET = {
    "hour": "hour",
    "day": "substr(hour, 1, 10)",
    # ISO-like week start: the Monday of the hour's week
    "week": "date(substr(hour, 1, 10), '-' || ((strftime('%w', substr(hour, 1, 10)) + 6) % 7) || ' days')",
}
_ESTIMATE_DRAWS = 200  # a trends page holds hundreds of windows; each interval needs fewer draws than /stats


class TrendWindow(BaseModel):
    """One window of ``GET /trends``."""

    start: str
    count: int
    labels: dict[str, int]  # answers per label (answers without one, e.g. rejected, are in ``count`` only)
    mean_confidence: float | None
    low_confidence_share: float | None  # share of tier-1 answers whose top probability was under the gate
    estimate: PerformanceEstimate | None  # CBPE over the window's tier-1 answers with logged probabilities


def _hour(ts: str) -> str:
    return ts[:13]  # "2026-11-20T10": ISO timestamps sort, and group, as text


class Rollup:
    """The store (``<data_dir>/trends.sqlite``); one connection per thread."""

    def __init__(self, path: Path, gate: float) -> None:
        self.path = path
        self.gate = gate
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            cols = ", ".join(
                [*(f"{c} TEXT NOT NULL" for c in _KEY), *(f"{c} REAL NOT NULL" for c in _COUNTS + _MEAN + _COV)]
            )
            db.execute(f"CREATE TABLE IF NOT EXISTS rollup ({cols}, PRIMARY KEY ({', '.join(_KEY)}))")
            db.execute("CREATE INDEX IF NOT EXISTS rollup_slice ON rollup (source, topic, hour)")  # what queries read
            self._local.db = db
        return db

    def add(self, records: Iterable[PredictionRecord]) -> None:
        """Fold a batch of logged answers into their hours."""
        groups: dict[tuple[str, str, str, str], list[PredictionRecord]] = {}
        for r in records:
            hour, tag, source, topic = _hour(r.ts), r.model_tag or "", r.source or "", r.topic or ""
            # the record's own slice, and the totals a query without that filter reads (a small cube)
            for key in {(source, topic), (ALL, topic), (source, ALL), (ALL, ALL)}:
                groups.setdefault((hour, tag, *key), []).append(r)
        self.insert([(*key, *self.sums(recs)) for key, recs in groups.items()])

    def insert(self, rows: list[tuple[str | float, ...]]) -> None:
        """Add rows of (hour, model tag, source, topic, sums...) to the stored ones, key by key."""
        if not rows:
            return
        names = _KEY + _COUNTS + _MEAN + _COV
        update = ", ".join(f"{c} = {c} + excluded.{c}" for c in _COUNTS + _MEAN + _COV)
        sql = (
            f"INSERT INTO rollup ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {update}"
        )
        db = self._db()
        with db:
            db.executemany(sql, rows)

    def sums(self, recs: list[PredictionRecord]) -> list[float]:
        """One key's row: counts, confidence sums and CBPE's sums, in column order."""
        labelled = [r for r in recs if r.label is not None]
        probs = np.array([r.probs for r in recs if r.probs and len(r.probs) == K], dtype=np.float64).reshape(-1, K)
        own = [r.model_confidence for r in recs if r.model_confidence is not None]
        mean, cov = cbpe_sums(probs)
        counts = [
            float(len(recs)),
            *(float(sum(r.label == label for r in labelled)) for label in LABELS),
            float(len(labelled)),
            float(sum(r.confidence for r in labelled)),
            float(sum(c < self.gate for c in own)),
            float(len(own)),
        ]
        return [*counts, *mean.ravel().tolist(), *cov.ravel().tolist()]

    def query(
        self,
        window: Granularity = "hour",
        start: str | None = None,
        end: str | None = None,
        source: str | None = None,
        topic: str | None = None,
    ) -> list[TrendWindow]:
        """Windows from ``start`` (inclusive) to ``end`` (exclusive), ISO 8601 prefixes, oldest first."""
        where, args = ["source = ?", "topic = ?"], [ALL if source is None else source, ALL if topic is None else topic]
        for op, value in ((">=", start), ("<", end)):
            if value is not None:
                where.append(f"hour {op} ?")
                args.append(_hour(value))
        bucket = _BUCKET[window]
        sums = ", ".join(f"SUM({c})" for c in _COUNTS + _MEAN + _COV)
        sql = f"SELECT {bucket} AS b, {sums} FROM rollup WHERE {' AND '.join(where)} GROUP BY b ORDER BY b"
        if not self.path.exists():
            return []
        rows = self._db().execute(sql, args).fetchall()  # column names are ours; every value is a bound parameter
        if not rows:
            return []
        v = np.array([row[1:] for row in rows], dtype=np.float64)
        means = v[:, len(_COUNTS) : len(_COUNTS) + len(_MEAN)].reshape(-1, K, K)
        covs = v[:, len(_COUNTS) + len(_MEAN) :].reshape(-1, K, K, K)
        estimates = many_from_expected(means, covs, draws=_ESTIMATE_DRAWS)
        out = []
        for row, counts, mean, est in zip(rows, v[:, : len(_COUNTS)], means, estimates, strict=True):
            c = dict(zip(_COUNTS, counts.tolist(), strict=True))
            out.append(
                TrendWindow(
                    start=str(row[0]),
                    count=round(c["n"]),
                    labels={label: round(c[f"n_{label}"]) for label in LABELS},
                    mean_confidence=c["sum_conf"] / c["n_conf"] if c["n_conf"] else None,
                    low_confidence_share=c["n_low"] / c["n_model"] if c["n_model"] else None,
                    estimate=est if mean.sum() > 0 else None,
                )
            )
        return out
