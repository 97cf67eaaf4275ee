"""Windows of records, read streaming in bounded memory.

A window is a file plus an optional time range. Each record is reduced on the fly to a few numbers (length,
OOV rate, label, low-confidence flag, gate outcome); texts are never held except a fixed-size random sample
(reservoir) for the costly signals (language, embeddings, model scoring). Per-record numbers are kept up to
``max_values`` per window, then reservoir-sampled too, so memory is bounded whatever the input size.

Two record shapes are understood: review files (``text``, ``rating`` or ``label``, ``timestamp``) and the
service's ``predictions.jsonl`` (:class:`sentiment.records.PredictionRecord`: ``ts``, ``text_len``, ``label``,
``confidence``, ``status``, ``reason_code``, ``oov_rate``; ``text`` only when logged). A window over ``replicas``
reads that log of every replica folder under the path's folder, merged by time (:mod:`sentiment.replicas`).
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from drift.features import LABEL_CODES, GateCode, oov_rate
from drift.report import WindowInfo
from sentiment.contract import LABELS, star_to_label
from sentiment.jsonl import ReadStats
from sentiment.replicas import iter_merged, replica_logs
from sentiment.settings import DriftSettings

NAN = math.nan


class WindowSpec(BaseModel):
    """Records of ``path`` whose timestamp lies in ``[start, end]`` (inclusive prefixes: ``2014`` = all of 2014)."""

    label: str
    path: Path
    start: str | None = None
    end: str | None = None
    # ``path`` is <root>/<log name>: read that log in every replica folder under root
    replicas: bool = False

    def contains(self, ts: str | None) -> bool:
        if self.start is None and self.end is None:
            return True
        if not ts:
            return False
        if self.start is not None and ts[: len(self.start)] < self.start:
            return False
        return self.end is None or ts[: len(self.end)] <= self.end


def parse_range(text: str) -> tuple[str | None, str | None]:
    """``"2004..2012"`` or ``"2014-01-01..2014-07-31"``; either side may be empty (open)."""
    if ".." not in text:
        raise ValueError(f"expected START..END, got {text!r}")
    lo, hi = (part.strip() or None for part in text.split("..", 1))
    return lo, hi


@dataclass
class Window:
    """What a window reduced to. Per-record arrays are aligned; ``texts`` is an independent random sample."""

    info: WindowInfo
    length: np.ndarray
    oov: np.ndarray  # NaN where a record has no words (or no text and no logged rate)
    label: np.ndarray  # int8 code into LABELS, -1 = none
    low_conf: np.ndarray  # int8: 1 low, 0 confident, -1 unknown
    gate: np.ndarray  # int8 GateCode, -1 = unknown (review files: computed from the text sample instead)
    texts: list[str] = field(default_factory=list)
    markup: int = 0
    # Tier 1's logged probabilities (NaN rows where none), the model version (index into ``tag_names``) and the
    # operator's label (-1 = none), aligned with the arrays above: what the performance estimate reads.
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, len(LABELS))))
    tag: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    tag_names: list[str] = field(default_factory=list)
    truth: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))


class _Builder:
    """Streaming reducer for one window."""

    def __init__(
        self,
        spec: WindowSpec,
        vocab: frozenset[str],
        drift: DriftSettings,
        gate_cut: float,
        labels: Mapping[str, str] | None = None,
    ):
        self.spec = spec
        self.labels = labels or {}
        self.tags: dict[str, int] = {}
        self.vocab = vocab
        self.cap = drift.max_values
        self.text_cap = max(drift.gate_sample, drift.embedding_sample, drift.score_sample)
        self.gate_cut = gate_cut
        self.rng = random.Random(drift.seed)
        self.n = 0
        self.with_text = 0
        self.markup = 0
        self.first_ts: str | None = None
        self.last_ts: str | None = None
        self.cols: dict[str, array[Any]] = {
            k: array(t)
            for k, t in (
                ("length", "f"),
                ("oov", "f"),
                ("label", "b"),
                ("low", "b"),
                ("gate", "b"),
                *((f"p{i}", "f") for i in range(len(LABELS))),
                ("tag", "h"),
                ("truth", "b"),
            )
        }
        self.texts: list[str] = []

    def add(self, rec: Mapping[str, Any], ts: str | None) -> None:
        self.n += 1
        if ts:
            if self.first_ts is None or ts < self.first_ts:
                self.first_ts = ts
            if self.last_ts is None or ts > self.last_ts:
                self.last_ts = ts
        text = rec.get("text")
        if isinstance(text, str):
            self.with_text += 1
            length = float(len(text))
            oov, had_markup = oov_rate(text, self.vocab)
            self.markup += had_markup
            self._sample_text(text)
        else:
            length = float(rec.get("text_len") or 0)
            logged = rec.get("oov_rate")
            oov = float(logged) if isinstance(logged, (int, float)) else NAN
        c = self.cols
        row = (length, oov, label_code(rec), _low_conf(rec, self.gate_cut), _gate_code(rec), *self._model(rec))
        if self.n <= self.cap:
            for col, v in zip(c.values(), row, strict=True):
                col.append(v)
        else:
            j = self.rng.randrange(self.n)
            if j < self.cap:
                for col, v in zip(c.values(), row, strict=True):
                    col[j] = v

    def _model(self, rec: Mapping[str, Any]) -> tuple[float | int, ...]:
        """Probabilities, version code and operator label of one record (NaN, -1, -1 where absent)."""
        probs = rec.get("probs")
        if not isinstance(probs, list) or len(probs) != len(LABELS):
            return (*[NAN] * len(LABELS), -1, -1)
        tag = str(rec.get("model_tag") or "")
        code = self.tags.setdefault(tag, len(self.tags))
        truth = LABEL_CODES.get(self.labels.get(str(rec.get("request_id")), ""), -1)
        return (*(float(p) for p in probs), code, truth)

    def _sample_text(self, text: str) -> None:
        if len(self.texts) < self.text_cap:
            self.texts.append(text)
            return
        j = self.rng.randrange(self.with_text)
        if j < self.text_cap:
            self.texts[j] = text

    def build(self, skipped: int) -> Window:
        info = WindowInfo(
            label=self.spec.label,
            n=self.n,
            source=str(self.spec.path.parent / "*" / self.spec.path.name if self.spec.replicas else self.spec.path),
            start=self.spec.start,
            end=self.spec.end,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            with_text=self.with_text,
            skipped_lines=skipped,
        )
        self.rng.shuffle(self.texts)  # the reservoir fills in file order: callers take prefixes
        c = self.cols
        return Window(
            info=info,
            length=np.frombuffer(c["length"], dtype=np.float32).astype(np.float64),
            oov=np.frombuffer(c["oov"], dtype=np.float32).astype(np.float64),
            label=np.frombuffer(c["label"], dtype=np.int8).copy(),
            low_conf=np.frombuffer(c["low"], dtype=np.int8).copy(),
            gate=np.frombuffer(c["gate"], dtype=np.int8).copy(),
            texts=self.texts,
            markup=self.markup,
            probs=np.stack(
                [np.frombuffer(c[f"p{i}"], dtype=np.float32).astype(np.float64) for i in range(len(LABELS))], axis=1
            ),
            tag=np.frombuffer(c["tag"], dtype=np.int16).copy(),
            tag_names=list(self.tags),
            truth=np.frombuffer(c["truth"], dtype=np.int8).copy(),
        )


def label_code(rec: Mapping[str, Any]) -> int:
    """Index into LABELS from stars (1-2 negative, 3 neutral, 4-5 positive), else from a ``label`` field; -1 none."""
    rating = rec.get("rating")
    if isinstance(rating, (int, float)):
        lab = star_to_label(rating)
        return LABEL_CODES[lab.value] if lab is not None else -1
    return LABEL_CODES.get(rec.get("label") or "", -1)


def _low_conf(rec: Mapping[str, Any], cut: float) -> int:
    """1 if the model's own top probability was under the gate, 0 if not, -1 if the model gave none.

    Predictions carry ``model_confidence`` whenever tier 1 answered, also when a later tier gave the answer;
    older logs only have ``confidence``, which is the model's only when ``tier == "model"`` (a low-confidence
    fallback still counts as low). Other files may carry a bare ``confidence``.
    """
    if rec.get("status") == "rejected":
        return -1
    own = rec.get("model_confidence")
    if isinstance(own, (int, float)):
        return int(own < cut)
    if rec.get("reason_code") == "low_confidence":
        return 1
    conf = rec.get("confidence")
    if not isinstance(conf, (int, float)) or rec.get("tier", "model") != "model":
        return -1
    return int(conf < cut)


def _gate_code(rec: Mapping[str, Any]) -> int:
    status = rec.get("status")
    if status is None:
        return GateCode.unknown
    if status != "rejected":
        return GateCode.passed
    return GateCode.non_english if rec.get("reason_code") == "not_english" else GateCode.rejected


def window_from_records(
    label: str,
    records: Iterable[Mapping[str, Any]],
    vocab: frozenset[str],
    drift: DriftSettings,
    gate_cut: float,
    labels: Mapping[str, str] | None = None,
) -> Window:
    """A window over records already in memory (experiments, tests); same reduction as for files."""
    b = _Builder(WindowSpec(label=label, path=Path("<memory>")), vocab, drift, gate_cut, labels)
    for rec in records:
        ts = rec.get("timestamp") or rec.get("ts")
        b.add(rec, ts if isinstance(ts, str) else None)
    return b.build(0)


def read_windows(
    specs: Iterable[WindowSpec],
    vocab: frozenset[str],
    drift: DriftSettings,
    gate_cut: float,
    progress: bool = True,
    labels: Mapping[str, str] | None = None,
) -> list[Window]:
    """One streaming pass per distinct file; a record goes to every window whose range holds it.

    ``labels``: operator labels by request id, joined to the records they label.
    """
    from tqdm import tqdm

    specs = list(specs)
    builders = [_Builder(s, vocab, drift, gate_cut, labels) for s in specs]
    windows: dict[int, Window] = {}
    for path, replicas in dict.fromkeys((s.path, s.replicas) for s in specs):
        mine = [(i, b) for i, b in enumerate(builders) if (specs[i].path, specs[i].replicas) == (path, replicas)]
        stats = ReadStats()
        records = iter_merged(replica_logs(path, replicas), stats)
        for rec in tqdm(records, desc=f"reading {path.name}", unit=" rec", disable=not progress):
            ts = rec.get("timestamp") or rec.get("ts")
            ts = ts if isinstance(ts, str) else None
            for _, b in mine:
                if b.spec.contains(ts):
                    b.add(rec, ts)
        for i, b in mine:
            windows[i] = b.build(stats.skipped)
    return [windows[i] for i in range(len(specs))]
