"""Training data: review JSONL -> labelled, validated, deduplicated, English-only splits.

Texts pass through :func:`sentiment.validation.validate` and :func:`sentiment.language_id.detect_language`, the very
functions serving runs, so the model trains on exactly what it will be shown (no training-serving skew).
Language detection costs a few ms per text, so it runs only on the reviews that survive capping.

Which sources feed what (decided, not accidental):
- dated sources (Amazon 2014/2018 5-core, Amazon US samples, Blitzer) split by time: train on the past,
  validate and test on the future, as the model will be used;
- undated sources (Flipkart: lower-cased, rich in 3-star reviews) split at random; they teach the rare neutral
  class and informal writing, and their test slice is reported as its own source (out of domain for Amazon);
- no source may exceed ``max_source_share`` of training or validation, so Flipkart cannot drown the rest;
- Blitzer has no 3-star reviews by construction and ends in 2006, so it only ever trains.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from tqdm import tqdm

from sentiment.contract import LABELS, Label, star_to_label
from sentiment.jsonl import ReadStats, iter_records
from sentiment.language_id import detect_language
from sentiment.settings import GateSettings
from sentiment.validation import Validated, validate
from training.config import TrainConfig

SPLITS = ("train", "val", "test")


class Review(BaseModel):
    text: str  # already validated and normalised
    label: Label
    source: str
    day: date | None = None
    stars: int | None = None  # 1-5 where the source has them (human-queue labels have none)

    @property
    def y(self) -> int:
        return LABELS.index(self.label.value)


class LoadStats(BaseModel):
    """What happened to the raw rows, for the report."""

    files: list[str] = []
    rows: int = 0
    unreadable_lines: int = 0
    no_stars: int = 0
    rejected: dict[str, int] = {}
    duplicates: int = 0
    not_english: int = 0
    kept: int = 0


class Dataset(BaseModel):
    train: list[Review]
    val: list[Review]
    test: list[Review]
    stats: LoadStats
    fingerprint: str
    split_info: dict[str, object]

    def part(self, name: Literal["train", "val", "test"]) -> list[Review]:
        rows: list[Review] = getattr(self, name)
        return rows


def default_files(data_dir: Path) -> list[Path]:
    return sorted([*data_dir.glob("*.jsonl"), *data_dir.glob("*.jsonl.gz")])


def _day(ts: object) -> date | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def load_reviews(files: Sequence[Path], gates: GateSettings, stats: LoadStats) -> list[Review]:
    """Star-rated rows that pass the serving gates, exact duplicates (after normalisation) dropped, first kept."""
    seen: set[str] = set()
    out: list[Review] = []
    for path in files:
        stats.files.append(path.name)
        read = ReadStats()
        for rec in tqdm(iter_records(path, read), desc=f"read {path.name}", unit=" rows", leave=False):
            stats.rows += 1
            label = star_to_label(rec.get("rating")) if isinstance(rec.get("rating"), (int, float)) else None
            if label is None:
                stats.no_stars += 1
                continue
            v = validate(rec.get("text"), gates)
            if not isinstance(v, Validated):
                code = v.reason.split(":", 1)[0]
                stats.rejected[code] = stats.rejected.get(code, 0) + 1
                continue
            key = v.text.casefold()
            if key in seen:
                stats.duplicates += 1
                continue
            seen.add(key)
            source = str(rec.get("source") or path.name.split(".")[0])
            out.append(
                Review(
                    text=v.text, label=label, source=source, day=_day(rec.get("timestamp")), stars=int(rec["rating"])
                )
            )
        stats.unreadable_lines += read.skipped
    return out


def split_time(reviews: Sequence[Review], cfg: TrainConfig, rng: random.Random) -> dict[str, list[Review]]:
    """Dated reviews by date; undated ones at random (their own source, reported separately)."""
    parts: dict[str, list[Review]] = {s: [] for s in SPLITS}
    undated = [r for r in reviews if r.day is None]
    for r in reviews:
        if r.day is None:
            continue
        parts["test" if r.day >= cfg.test_from else "val" if r.day >= cfg.val_from else "train"].append(r)
    for name, rows in _random_split(undated, cfg, rng).items():
        parts[name].extend(rows)
    return parts


def split_stratified(reviews: Sequence[Review], cfg: TrainConfig, rng: random.Random) -> dict[str, list[Review]]:
    """Random split stratified by label and source (the option for data without a meaningful time axis)."""
    groups: dict[tuple[str, str], list[Review]] = defaultdict(list)
    for r in reviews:
        groups[(r.source, r.label.value)].append(r)
    parts: dict[str, list[Review]] = {s: [] for s in SPLITS}
    for key in sorted(groups):
        for name, rows in _random_split(groups[key], cfg, rng).items():
            parts[name].extend(rows)
    return parts


def _random_split(rows: Sequence[Review], cfg: TrainConfig, rng: random.Random) -> dict[str, list[Review]]:
    rows = list(rows)
    rng.shuffle(rows)
    n_test = round(len(rows) * cfg.test_frac)
    n_val = round(len(rows) * cfg.val_frac)
    return {"test": rows[:n_test], "val": rows[n_test : n_test + n_val], "train": rows[n_test + n_val :]}


def cap_source_share(rows: Sequence[Review], max_share: float, rng: random.Random) -> list[Review]:
    """Subsample any source that exceeds ``max_share`` of the set, measured against all other sources."""
    by_source: dict[str, list[Review]] = defaultdict(list)
    for r in rows:
        by_source[r.source].append(r)
    out: list[Review] = []
    total = len(rows)
    for source in sorted(by_source):
        group = by_source[source]
        others = total - len(group)
        limit = int(max_share / (1 - max_share) * others) if max_share < 1 and others else len(group)
        out.extend(rng.sample(group, limit) if len(group) > limit else group)
    return out


def fill_quotas(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Split ``n`` as evenly as the groups allow: a group short of its share takes all it has and hands the rest on."""
    take: dict[str, int] = {}
    remaining, keys = n, sorted(sizes, key=lambda k: sizes[k])
    for i, key in enumerate(keys):
        take[key] = min(sizes[key], remaining // (len(keys) - i))
        remaining -= take[key]
    return take


def even_sample(rows: Sequence[Review], n: int, rng: random.Random, key: Callable[[Review], str]) -> list[Review]:
    """``n`` rows spread as evenly over the groups ``key`` makes as the data allows (:func:`fill_quotas`)."""
    groups: dict[str, list[Review]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    quotas = fill_quotas({k: len(g) for k, g in groups.items()}, n)
    return [r for k in sorted(quotas) for r in rng.sample(groups[k], quotas[k])]


def balanced_cap(rows: Sequence[Review], n: int, rng: random.Random, by_source: bool = False) -> list[Review]:
    """At most ``n`` rows with classes as equal as the data allows; ``by_source``: within each class, sources as
    equal as the data allows too.

    Capping throws data away anyway, so we keep every scarce neutral review and drop surplus positives. Sources: one
    big source (Flipkart's short, informal reviews) otherwise fills half the budget, and a model meant for unseen
    domains might learn more from the same number of reviews spread over more of them; ``by_source`` is the lever
    that tests it (the result is in docs/model-quality.md).
    """
    by_label: dict[str, list[Review]] = defaultdict(list)
    for r in rows:
        by_label[r.label.value].append(r)
    per_class = fill_quotas({lab: len(g) for lab, g in by_label.items()}, n)
    within: Callable[[Review], str] = (lambda r: r.source) if by_source else (lambda r: "")
    out = [r for lab in sorted(by_label) for r in even_sample(by_label[lab], per_class[lab], rng, within)]
    rng.shuffle(out)
    return out


def cap_val(rows: Sequence[Review], n: int, rng: random.Random, by_source: bool = False) -> list[Review]:
    """``n`` validation rows at random, or (``by_source``) sources as equal as the data allows, each at its own class
    mix. Why: validation picks the checkpoint, the calibration and the decision bias, so it should stand for the
    streams the model will meet, not for whichever source is largest."""
    if not by_source:
        return rng.sample(list(rows), n)
    out = even_sample(rows, n, rng, lambda r: r.source)
    rng.shuffle(out)
    return out


def drop_polar_neutral(rows: Sequence[Review], reads_polar: Callable[[str], bool]) -> list[Review]:
    """Label noise: many 3-star reviews read as plainly positive or negative; training on them as "neutral" teaches
    the model that praise can be neutral. Drops the 3-star rows ``reads_polar`` flags (training only)."""
    return [r for r in rows if r.label.value != "neutral" or not reads_polar(r.text)]


def cap_per_source(rows: Sequence[Review], n: int, rng: random.Random) -> list[Review]:
    by_source: dict[str, list[Review]] = defaultdict(list)
    for r in rows:
        by_source[r.source].append(r)
    return [
        r for s in sorted(by_source) for r in (rng.sample(by_source[s], n) if len(by_source[s]) > n else by_source[s])
    ]


def keep_english(rows: Iterable[Review], gates: GateSettings, stats: LoadStats, desc: str) -> list[Review]:
    """The serving language gate, applied to exactly the rows that will be used."""
    out = []
    for r in tqdm(list(rows), desc=f"language gate ({desc})", unit=" reviews", leave=False):
        if detect_language(r.text, gates).accepted:
            out.append(r)
        else:
            stats.not_english += 1
    return out


def fingerprint(parts: dict[str, list[Review]]) -> str:
    """Content hash of exactly what was trained, validated and tested on."""
    h = hashlib.sha256()
    for name in SPLITS:
        for r in parts[name]:
            h.update(f"{name}\t{r.source}\t{r.label.value}\t{r.text}\n".encode())
    return h.hexdigest()[:16]


def describe(rows: Sequence[Review]) -> dict[str, object]:
    days = [r.day for r in rows if r.day is not None]
    return {
        "n": len(rows),
        "labels": dict(sorted(Counter(r.label.value for r in rows).items())),
        "sources": dict(sorted(Counter(r.source for r in rows).items())),
        "first_day": min(days).isoformat() if days else None,
        "last_day": max(days).isoformat() if days else None,
    }


def build_dataset(cfg: TrainConfig, gates: GateSettings, shared_data_dir: Path) -> Dataset:
    if cfg.neutral_noise != "keep":  # the keyword rules sit a layer above; only the LOSO runner passes them in
        raise ValueError(f"neutral_noise={cfg.neutral_noise!r} is a LOSO lever (experiments.evaluate_loso) only")
    rng = random.Random(cfg.seed)
    stats = LoadStats()
    files = [Path(p) for p in cfg.data] or default_files(shared_data_dir)
    reviews = load_reviews(files, gates, stats)
    parts = (split_time if cfg.split == "time" else split_stratified)(reviews, cfg, rng)
    parts["train"] = cap_source_share(parts["train"], cfg.max_source_share, rng)
    parts["val"] = cap_source_share(parts["val"], cfg.max_source_share, rng)
    if cfg.max_train and len(parts["train"]) > cfg.max_train:
        parts["train"] = balanced_cap(parts["train"], cfg.max_train, rng, cfg.balance_sources)
    if cfg.max_val and len(parts["val"]) > cfg.max_val:
        parts["val"] = cap_val(parts["val"], cfg.max_val, rng, cfg.balance_val_sources)
    if cfg.max_test_per_source:
        parts["test"] = cap_per_source(parts["test"], cfg.max_test_per_source, rng)
    parts = {name: keep_english(parts[name], gates, stats, name) for name in SPLITS}
    if cfg.augment_behaviour:
        parts["train"] += behaviour_examples(cfg.augment_behaviour, cfg.seed, gates, cfg.augment_categories)
    stats.kept = sum(len(p) for p in parts.values())
    split_info: dict[str, object] = {"method": cfg.split, **{name: describe(parts[name]) for name in SPLITS}}
    if cfg.split == "time":
        split_info |= {"val_from": cfg.val_from.isoformat(), "test_from": cfg.test_from.isoformat()}
    return Dataset(**parts, stats=stats, fingerprint=fingerprint(parts), split_info=split_info)


AUGMENTATION_SOURCE = "behaviour-augmentation"


def behaviour_examples(per_template: int, seed: int, gates: GateSettings, categories: Sequence[str]) -> list[Review]:
    """The behaviour suite's training half as reviews (undated, no stars), validated like every other text."""
    from training.behaviour import augmentation

    out = []
    for text, label in augmentation(seed, per_template, categories):
        v = validate(text, gates)
        if isinstance(v, Validated):
            out.append(Review(text=v.text, label=label, source=AUGMENTATION_SOURCE))
    return out


def load_binary(path: Path, gates: GateSettings) -> list[tuple[str, int]]:
    """Binary-labelled sentences (``label`` positive/negative, no stars) as (text, 0=negative | 2=positive)."""
    out: list[tuple[str, int]] = []
    for rec in iter_records(path):
        lab = rec.get("label")
        v = validate(rec.get("text"), gates)
        if lab in ("positive", "negative") and isinstance(v, Validated):
            out.append((v.text, LABELS.index(lab)))
    return out
