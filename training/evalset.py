"""What retraining may learn from and what the promotion gate scores on, decided in one place so they never overlap.

Human labels (``human_labels.jsonl``, all rotated pieces): the latest label per request wins; reviews whose
normalised text is the same are one review, and when their labels disagree the latest wins (counted as a
conflict). A fixed share of them, chosen by a hash of the normalised text, is held out for the gate: a review's
side never changes as labels arrive, so a held-out review is never trained on by any later run.

The frozen evaluation set: the test split of the base data as one recorded training config builds it, proved
unchanged by that build's data fingerprint, plus the held-out human labels. Retraining keeps every one of its
reviews out of training and validation.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sentiment.contract import Label
from sentiment.jsonl import ReadStats, iter_records
from sentiment.model.registry import ModelMetadata
from sentiment.records import HumanLabel, SampleRecord
from sentiment.settings import GateSettings, Settings
from sentiment.validation import Validated, validate
from training.config import TrainConfig
from training.data import Dataset, Review, build_dataset

# The TrainConfig fields build_dataset reads: equal values build equal splits from equal files.
DATA_FIELDS = frozenset(
    {
        "data",
        "split",
        "val_from",
        "test_from",
        "val_frac",
        "test_frac",
        "max_source_share",
        "max_train",
        "max_val",
        "max_test_per_source",
        "balance_sources",
        "balance_val_sources",
        "seed",
        # the behaviour suite's sentences join the training split, so they are part of what the fingerprint covers
        "augment_behaviour",
        "augment_categories",
    }
)
HUMAN_SOURCE = "human"


def text_key(text: str) -> str:
    """Identity of a review: its validated text, case-folded (as ``load_reviews`` deduplicates)."""
    return text.casefold()


def in_holdout(key: str, share: float) -> bool:
    """Whether a review belongs to the held-out share: a hash of its text, stable across runs and machines."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:16], 16) / 2**64 < share


class HumanExample(BaseModel):
    """One review as humans labelled it, after merging its requests and duplicates."""

    text: str  # validated, normalised
    label: Label
    ts: str  # of the label that won
    request_ids: list[str]

    @property
    def key(self) -> str:
        return text_key(self.text)


class Conflict(BaseModel):
    """Requests with the same text and different labels: which label each got, oldest first, and the winner."""

    request_ids: list[str]
    labels: list[str]
    kept: str


class HumanLabelStats(BaseModel):
    records: int = 0
    unreadable_lines: int = 0
    invalid_records: int = 0
    superseded: int = 0  # an older label for a request that was labelled again
    rejected_text: int = 0  # fails the serving input gates
    duplicates: int = 0  # further requests with the same normalised text
    conflicts: int = 0  # texts whose requests got different labels
    reviews: int = 0
    conflict_examples: list[Conflict] = []


class HumanLabels(BaseModel):
    examples: list[HumanExample]
    stats: HumanLabelStats


def load_human_labels(path: Path, gates: GateSettings, max_conflict_examples: int = 20) -> HumanLabels:
    """Every operator label, merged to one label per review (see the module docstring)."""
    stats = HumanLabelStats()
    read = ReadStats()
    latest: dict[str, tuple[tuple[str, int], HumanLabel]] = {}
    for i, raw in enumerate(iter_records(path, read)):
        stats.records += 1
        try:
            rec = HumanLabel.model_validate(raw)
        except ValidationError:
            stats.invalid_records += 1
            continue
        order = (rec.ts, i)
        if rec.request_id in latest:
            stats.superseded += 1
            if latest[rec.request_id][0] > order:
                continue
        latest[rec.request_id] = (order, rec)
    stats.unreadable_lines = read.skipped
    by_text: dict[str, list[tuple[tuple[str, int], HumanLabel, str]]] = defaultdict(list)
    for order, rec in latest.values():
        v = validate(rec.text, gates)
        if not isinstance(v, Validated):
            stats.rejected_text += 1
            continue
        by_text[text_key(v.text)].append((order, rec, v.text))
    examples = []
    for group in by_text.values():
        group.sort(key=lambda g: g[0])
        _, last, text = group[-1]
        stats.duplicates += len(group) - 1
        if len({rec.label for _, rec, _ in group}) > 1:
            stats.conflicts += 1
            if len(stats.conflict_examples) < max_conflict_examples:
                stats.conflict_examples.append(
                    Conflict(
                        request_ids=[r.request_id for _, r, _ in group],
                        labels=[r.label.value for _, r, _ in group],
                        kept=last.label.value,
                    )
                )
        examples.append(
            HumanExample(text=text, label=last.label, ts=last.ts, request_ids=[r.request_id for _, r, _ in group])
        )
    stats.reviews = len(examples)
    return HumanLabels(examples=sorted(examples, key=lambda e: (e.ts, e.key)), stats=stats)


def human_reviews(examples: list[HumanExample]) -> list[Review]:
    return [Review(text=e.text, label=e.label, source=HUMAN_SOURCE) for e in examples]


class EvalSetChanged(Exception):
    """The recorded evaluation split cannot be rebuilt as it was (data files or code changed); says what differs."""


class EvalSpec(BaseModel):
    """Which base-data test split is the frozen evaluation set: the data config that builds it and its fingerprint."""

    config: dict[str, Any]
    fingerprint: str

    def train_config(self) -> TrainConfig:
        return TrainConfig.model_validate(self.config)

    def same_data(self, cfg: TrainConfig) -> bool:
        return data_config(self.train_config()) == data_config(cfg)


def data_config(cfg: TrainConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json", include=set(DATA_FIELDS))


def eval_spec_of(meta: ModelMetadata) -> EvalSpec | None:
    """The frozen set a stored model recorded: its ``frozen_eval`` (retrained models), else its own test split."""
    frozen = meta.splits.get("frozen_eval")
    if isinstance(frozen, dict):
        return EvalSpec.model_validate(frozen)
    if meta.train_config and meta.data_fingerprint:
        return EvalSpec(
            config=data_config(TrainConfig.model_validate(meta.train_config)), fingerprint=meta.data_fingerprint
        )
    return None


def check_fingerprint(spec: EvalSpec, ds: Dataset) -> Dataset:
    if ds.fingerprint != spec.fingerprint:
        raise EvalSetChanged(
            f"the frozen evaluation split rebuilds with data fingerprint {ds.fingerprint}, "
            f"recorded {spec.fingerprint}: the data files or the data code changed"
        )
    return ds


def build_base(spec: EvalSpec, settings: Settings) -> Dataset:
    """Rebuild the recorded base dataset (its ``test`` is the frozen base evaluation set); raises if it changed."""
    ds = build_dataset(spec.train_config(), settings.gates, settings.paths.shared_data_dir)
    return check_fingerprint(spec, ds)


class EvalSet(BaseModel):
    """The reviews the gate scores both models on, in a fixed order."""

    spec: EvalSpec
    reviews: list[Review]  # base test split first, then held-out human labels (source "human")
    n_base: int
    n_human: int
    human_weights: list[float]  # per held-out label, its weight in the stream (stream_weights)
    human_labels: HumanLabelStats
    fingerprint: str  # of exactly these reviews and labels


def frozen_eval_set(spec: EvalSpec, settings: Settings) -> EvalSet:
    base = build_base(spec, settings).test
    labels = load_human_labels(settings.paths.human_labels, settings.gates)
    base_keys = {text_key(r.text) for r in base}
    held = [
        e
        for e in labels.examples
        if in_holdout(e.key, settings.lifecycle.human_holdout_share) and e.key not in base_keys
    ]
    reviews = [*base, *human_reviews(held)]
    weights = stream_weights(held, settings.paths.labelling_sample)
    h = hashlib.sha256()
    for r in reviews:
        h.update(f"{r.source}\t{r.label.value}\t{r.text}\n".encode())
    return EvalSet(
        spec=spec,
        reviews=reviews,
        n_base=len(base),
        n_human=len(held),
        human_weights=weights,
        human_labels=labels.stats,
        fingerprint=h.hexdigest()[:16],
    )


def stream_weights(examples: list[HumanExample], sample_path: Path) -> list[float]:
    """Each label's weight in the live stream: 1 / the probability that the labelling sample took it. The sample
    takes every uncertain answer but only a small random share of the rest, so held-out labels judged as they are
    over-weight the uncertain reviews: a model that fixes only those would look better on the line than it is. A
    label the sample did not pick (the human queue, an import) weighs 1."""
    taken: dict[str, float] = {}
    for raw in iter_records(sample_path):
        try:
            rec = SampleRecord.model_validate(raw)
        except ValidationError:
            continue  # a torn or foreign line: that label weighs 1
        taken[rec.request_id] = rec.weight
    return [max((taken.get(r, 1.0) for r in e.request_ids), default=1.0) for e in examples]
