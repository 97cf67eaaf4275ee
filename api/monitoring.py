"""What the service tells about itself: the predictions log, ``/stats`` and the Prometheus series.

Correct with several worker processes because nothing lives only in one worker's memory:
- every answer is appended to ``predictions.jsonl`` (flock'ed appends, see :mod:`sentiment.jsonl`), and the
  rolling window is the tail of that file, shared by all workers;
- ``total_requests`` is the sum of a Prometheus counter, which BentoML keeps in its multiprocess directory,
  so it counts every worker since the server started.
Prometheus metrics are created lazily in the worker (BentoML issue #5056: created at import time, several
custom histograms collapse into one).
"""

from __future__ import annotations

import functools
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sentiment.backlog import BackloggedFile
from sentiment.contract import LABELS, Status
from sentiment.estimation import PerformanceEstimate, by_version, choose_method, latest_labels, record_arrays
from sentiment.jsonl import tail_records
from sentiment.pii import text_masker
from sentiment.records import PredictionRecord
from sentiment.rollup import Granularity, Rollup, TrendWindow
from sentiment.settings import EstimationSettings, RotationSettings, Settings
from sentiment.shadow_log import ShadowSummary, summarize

log = logging.getLogger(__name__)
TOTAL_METRIC = "sentiment_predictions"
BUCKETS = 5
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
_RATE_BUCKETS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
_CONF_BUCKETS = (0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 1.0)


class Stats(BaseModel):
    """``GET /stats``: the spec's rolling window over the last ``window`` predictions."""

    total_requests: int
    window: int
    window_size: int
    status_breakdown: dict[str, int]
    rolling_oov_rate: float | None
    rolling_confidence: float | None
    confidence_histogram: dict[str, int]
    skipped_lines: int = 0
    shadow: ShadowSummary | None = None  # champion vs challenger over the window, when a challenger is shadowed
    # Tier 1's estimated performance over the window's answers from the newest model version (the one serving),
    # and per version; None until answers with logged probabilities exist.
    performance_estimate: PerformanceEstimate | None = None
    performance_by_version: dict[str, PerformanceEstimate] = {}


class Trends(BaseModel):
    """``GET /trends``: per window, answers per label, mean confidence, low-confidence share and the estimate."""

    window: Granularity
    start: str | None
    end: str | None
    source: str | None
    topic: str | None
    windows: list[TrendWindow]


def _bucket_names(n: int = BUCKETS) -> list[str]:
    return [f"{i / n:.1f}-{(i + 1) / n:.1f}" for i in range(n)]


def _model_confidence(rec: Mapping[str, Any]) -> float | None:
    """Tier 1's own top probability; answers that never reached the model have none."""
    value = rec.get("model_confidence")
    return float(value) if value is not None else None


def estimates(
    records: Sequence[Mapping[str, Any]], labels: Mapping[str, str], settings: EstimationSettings
) -> dict[str, PerformanceEstimate]:
    """Per model version, newest last; operator labels count where they exist."""
    method, atc, note = choose_method(settings.method, settings.atc_threshold)
    arrays = record_arrays(records, labels)
    out = by_version(arrays, method, atc)
    if note:
        out = {tag: e.model_copy(update={"note": f"{e.note}; {note}"}) for tag, e in out.items()}
    if arrays.tags:  # the newest version last, whatever order the versions first appeared in
        newest = arrays.tags[-1]
        out = {**{t: e for t, e in out.items() if t != newest}, newest: out[newest]}
    return out


def rolling_stats(
    records: Sequence[Mapping[str, Any]],
    total: int,
    window: int,
    skipped: int = 0,
    labels: Mapping[str, str] | None = None,
    estimation: EstimationSettings | None = None,
) -> Stats:
    """Pure: the window's numbers from log records (dicts as read back from ``predictions.jsonl``)."""
    statuses = Counter(str(r.get("status")) for r in records)
    oov = [float(r["oov_rate"]) for r in records if r.get("oov_rate") is not None]
    conf = [c for r in records if (c := _model_confidence(r)) is not None]
    names = _bucket_names()
    hist = dict.fromkeys(names, 0)
    for c in conf:
        hist[names[min(int(c * BUCKETS), BUCKETS - 1)]] += 1
    per_version = estimates(records, labels or {}, estimation or EstimationSettings())
    return Stats(
        total_requests=total,
        window=window,
        window_size=len(records),
        status_breakdown={s.value: statuses.get(s.value, 0) for s in Status},
        rolling_oov_rate=sum(oov) / len(oov) if oov else None,
        rolling_confidence=sum(conf) / len(conf) if conf else None,
        confidence_histogram=hist,
        skipped_lines=skipped,
        performance_estimate=list(per_version.values())[-1] if per_version else None,
        performance_by_version=per_version,
    )


class _Metrics:
    """The service's own series next to BentoML's; one instance per worker process."""

    def __init__(self) -> None:
        from prometheus_client import Counter as PCounter
        from prometheus_client import Gauge, Histogram

        self.predictions = PCounter(
            TOTAL_METRIC,
            "Answers given, by status, label, answering tier and reason code",
            ["status", "label", "tier", "reason_code"],
        )
        self.confidence = Histogram("sentiment_model_confidence", "Tier 1 top-class probability", buckets=_CONF_BUCKETS)
        self.oov = Histogram(
            "sentiment_oov_rate", "Word-level OOV rate of texts that reached tier 1", buckets=_RATE_BUCKETS
        )
        self.latency = Histogram(
            "sentiment_request_latency_seconds",
            "End-to-end latency by the tier that answered",
            ["tier"],
            buckets=_LATENCY_BUCKETS,
        )
        self.shed = PCounter("sentiment_shed_requests", "Requests answered 503 because the service was overloaded")
        self.shadow = PCounter(
            "sentiment_shadow", "Shadowed answers by champion and challenger label", ["champion", "challenger"]
        )
        self.shadow_skipped = PCounter("sentiment_shadow_skipped", "Shadow samples skipped (busy or failed)")
        self.refused = PCounter("sentiment_refused_requests", "Requests refused before classification", ["why"])
        self.runner_latency = Histogram(
            "sentiment_runner_latency_seconds",
            "Time spent waiting on each runner",
            ["runner"],
            buckets=_LATENCY_BUCKETS,
        )
        # Estimated over the rolling window (the newest refresh wins across workers), per model version.
        self.estimated = Gauge(
            "sentiment_estimated_performance",
            "Tier 1's estimated performance over the rolling window, without labels (lo/hi: 95% interval)",
            ["model_tag", "metric", "bound"],
            multiprocess_mode="mostrecent",
        )


@functools.cache
def metrics() -> _Metrics:
    return _Metrics()


def total_requests() -> int:
    """Sum of the predictions counter over every worker (multiprocess mode) or this process."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    metrics()  # make sure the series exists even before the first request
    registry: Any = REGISTRY
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and Path(path).is_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
    total = 0.0
    for family in registry.collect():
        if family.name == TOTAL_METRIC:
            total += sum(s.value for s in family.samples if s.name == f"{TOTAL_METRIC}_total")
    return int(total)


class Monitor:
    """Writes every answer to the log and the metrics; reads ``/stats`` back from both."""

    def __init__(
        self,
        log_path: Path,
        window: int,
        rotation: RotationSettings | None = None,
        mask: Callable[[str], str] = str,
        shadow_log: Path | None = None,
        labels_log: Path | None = None,
        estimation: EstimationSettings | None = None,
        rollup: Rollup | None = None,
    ) -> None:
        self.log_path = log_path
        self.shadow_log = shadow_log
        self.labels_log = labels_log
        self.estimation = estimation or EstimationSettings()
        self.rollup = rollup
        self.window = window
        self._since_refresh = 0
        # The last estimate per model version (refreshed every estimation.window answers and on /stats): what the
        # request path reads, so that no request pays for an estimate.
        self.estimates: dict[str, PerformanceEstimate] = {}
        self.mask = mask  # review text (logged only with service.log_text) never reaches the disk unmasked
        self.file = BackloggedFile(log_path, rotation)

    @classmethod
    def from_settings(cls, settings: Settings) -> Monitor:
        return cls(
            settings.paths.predictions_log,
            settings.service.stats_window,
            settings.rotation,
            text_masker(settings.privacy),
            settings.paths.shadow_log,
            settings.paths.human_labels,
            settings.estimation,
            Rollup(settings.paths.trends_db, settings.gates.confidence_gate),
        )

    def record(self, records: Iterable[PredictionRecord]) -> None:
        recs = [r.model_copy(update={"text": self.mask(r.text)}) if r.text else r for r in records]
        self.file.append(recs)  # a failed write waits in memory and goes out with the next one
        m = metrics()
        for r in recs:
            m.predictions.labels(r.status.value, r.label.value if r.label else "none", r.tier, r.reason_code).inc()
            m.latency.labels(r.tier).observe(r.latency_ms / 1000.0)
            if r.model_confidence is not None:
                m.confidence.observe(r.model_confidence)
            if r.oov_rate is not None:
                m.oov.observe(r.oov_rate)
        if self.rollup is not None:
            try:
                self.rollup.add(recs)
            except Exception as exc:  # trends are a view: a locked or full store costs them, never the log
                log.warning("trends rollup not updated (%s: %s)", type(exc).__name__, exc)
        self._since_refresh += len(recs)
        if self._since_refresh >= self.estimation.window:  # one tail read per window of answers, not per answer
            self._since_refresh = 0
            self.estimates = estimates(tail_records(self.log_path, self.window), self._labels(), self.estimation)
            publish(self.estimates)

    def _labels(self) -> dict[str, str]:
        """The newest operator labels only: operators label recent answers, and the window is recent."""
        return latest_labels(tail_records(self.labels_log, self.window)) if self.labels_log else {}

    def observe_runner(self, runner: str, seconds: float) -> None:
        metrics().runner_latency.labels(runner).observe(seconds)

    def stats(self) -> Stats:
        from sentiment.jsonl import ReadStats

        read = ReadStats()
        records = tail_records(self.log_path, self.window, read)
        stats = rolling_stats(records, total_requests(), self.window, read.skipped, self._labels(), self.estimation)
        if self.shadow_log is not None and self.shadow_log.exists():
            stats.shadow = summarize(tail_records(self.shadow_log, self.window))
        self.estimates = stats.performance_by_version
        publish(self.estimates)
        return stats

    def trends(
        self,
        window: Granularity,
        start: str | None = None,
        end: str | None = None,
        source: str | None = None,
        topic: str | None = None,
    ) -> Trends:
        found = self.rollup.query(window, start, end, source, topic) if self.rollup is not None else []
        return Trends(window=window, start=start, end=end, source=source, topic=topic, windows=found)


def publish(per_version: Mapping[str, PerformanceEstimate]) -> None:
    """The estimate as gauges: accuracy, macro-F1, per-class precision/recall/share, each with its interval."""
    gauge = metrics().estimated
    for tag, e in per_version.items():
        figures = {"accuracy": e.accuracy, "macro_f1": e.macro_f1}
        for label in LABELS:
            c = e.per_class[label]
            figures |= {f"{label}_precision": c.precision, f"{label}_recall": c.recall, f"{label}_share": c.share}
        for metric, iv in figures.items():
            for bound, value in (("value", iv.value), ("lo", iv.lo), ("hi", iv.hi)):
                gauge.labels(tag or "none", metric, bound).set(value)
