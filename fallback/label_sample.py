"""The labelling sample: live tier-1 answers worth an operator's minute, beside the human queue.

The queue only holds what no tier could answer, which on a mostly-positive product line is almost never a negative
review; labels from it alone cannot correct the model's class mix. So every tier-1 answer that did not go to the
queue is offered here with a known probability (:func:`inclusion`): always when its top two classes are closer
than ``max_margin`` (the answers the model is least sure of), else with ``random_share``. Each record keeps its
weight (1 / that probability), so labels can be re-weighted to the stream. Text is masked like every log; a
serving process adds at most ``daily_cap`` records per UTC day. While the serving version's estimated macro-F1 has
dropped (:func:`drop_boost`), the random share is ``boost_on_drop`` times larger and its records say so.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from fallback.decide import Traced, top
from sentiment.backlog import BackloggedFile
from sentiment.contract import Label
from sentiment.estimation import PerformanceEstimate
from sentiment.jsonl import ReadStats, iter_records
from sentiment.outputs import ModelOutput
from sentiment.pii import text_masker
from sentiment.records import SampleRecord, TierOpinion, utc_now
from sentiment.settings import LabellingSettings, Settings

log = logging.getLogger(__name__)


def margin(probs: Sequence[float]) -> float:
    """Top-1 minus top-2 probability: 0 is a tie, 1 is certainty."""
    a, b = sorted(probs, reverse=True)[:2]
    return float(a - b)


def inclusion(m: float, cfg: LabellingSettings, boost: float = 1.0) -> float:
    """Probability that an answer with margin ``m`` is offered for labelling (``boost``: see :func:`drop_boost`)."""
    return 1.0 if m < cfg.max_margin else min(1.0, cfg.random_share * boost)


def drop_boost(estimate: PerformanceEstimate | None, held_out_f1: float | None, settings: Settings) -> float:
    """The random share's multiplier: ``labelling.boost_on_drop`` while the serving version's estimated macro-F1
    (over at least ``estimation.min_answers`` answers) sits more than ``drift.performance_drop`` below its own
    held-out macro-F1, since labels are worth most where the model seems to fail; else 1."""
    if estimate is None or held_out_f1 is None or estimate.n < settings.estimation.min_answers:
        return 1.0
    dropped = held_out_f1 - estimate.macro_f1.value > settings.drift.performance_drop
    return settings.labelling.boost_on_drop if dropped else 1.0


def choose(
    margins: Sequence[float], cfg: LabellingSettings, draws: Sequence[float], taken: int = 0, boost: float = 1.0
) -> list[tuple[int, float]]:
    """Which answers of a stream (in order) join the sample, and each one's weight, given one uniform draw per
    answer and how many were already taken today. Pure: the live sampler and the offline replay share it."""
    out: list[tuple[int, float]] = []
    for i, (m, u) in enumerate(zip(margins, draws, strict=True)):
        if taken + len(out) >= cfg.daily_cap:
            break
        p = inclusion(m, cfg, boost)
        if p > 0 and u < p:
            out.append((i, 1.0 / p))
    return out


class LabellingSample:
    """``labelling_sample.jsonl``: append-only, masked, capped per UTC day per process."""

    def __init__(
        self,
        path: Path,
        cfg: LabellingSettings,
        mask: Callable[[str], str] = str,
        rng: random.Random | None = None,
    ) -> None:
        self.path = path
        self.cfg = cfg
        self.mask = mask
        self.file = BackloggedFile(path)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._day = ""
        self._taken = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LabellingSample:
        return cls(settings.paths.labelling_sample, settings.labelling, text_masker(settings.privacy))

    def _taken_today(self, day: str) -> int:
        """Records already in the file for ``day`` (read once per day, so a restart does not reset the cap)."""
        if day != self._day:
            self._day = day
            try:
                self._taken = sum(
                    1 for r in iter_records(self.path, ReadStats()) if str(r.get("ts", "")).startswith(day)
                )
            except OSError:  # unreadable now: count from zero; the writer keeps what it cannot write (BackloggedFile)
                self._taken = 0
        return self._taken

    def offer(self, traced: Sequence[Traced], boost: float = 1.0) -> int:
        """Add the chosen answers to the sample; returns how many. Never raises: a sample is not worth an answer.
        ``boost`` multiplies the random share (:func:`drop_boost`); the records taken under it say so."""
        if self.cfg.daily_cap <= 0:
            return 0
        candidates = [
            (t, t.trace.model)
            for t in traced
            if t.trace.model is not None and t.escalation is None and t.trace.text is not None
        ]
        if not candidates:
            return 0
        try:
            with self._lock:
                taken = self._taken_today(utc_now()[:10])
                picks = choose(
                    [margin(out.probs) for _, out in candidates],
                    self.cfg,
                    [self._rng.random() for _ in candidates],
                    taken,
                    boost,
                )
                if not picks:
                    return 0
                records = [_record(*candidates[i], weight, self.cfg, boost > 1.0) for i, weight in picks]
                self._taken += len(records)
            self.file.append([r.model_copy(update={"text": self.mask(r.text)}) for r in records])
            return len(records)
        except Exception as exc:  # the answers are already decided; a sampling bug must not turn them into errors
            log.error("labelling sample: %s: %s", type(exc).__name__, exc)
            return 0

    def read(self, stats: ReadStats | None = None) -> list[SampleRecord]:
        return [SampleRecord.model_validate(r) for r in iter_records(self.path, stats)]


def _record(t: Traced, out: ModelOutput, weight: float, cfg: LabellingSettings, boosted: bool) -> SampleRecord:
    label, conf = top(out)
    m = margin(out.probs)
    assert t.trace.text is not None  # candidates have text
    return SampleRecord(
        request_id=t.trace.request_id,
        text=t.trace.text,
        selection="margin" if m < cfg.max_margin else "random",
        weight=weight,
        margin=round(m, 6),
        probs=[round(p, 6) for p in out.probs],
        model=TierOpinion(label=Label(label), confidence=conf),
        model_tag=out.model_tag or None,
        boosted=boosted,
    )
