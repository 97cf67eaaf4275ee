"""Training data: the serving gates, star mapping, dedup, splits, caps and fingerprint."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from fallback.keywords import KeywordRules
from sentiment.contract import Label
from sentiment.settings import GateSettings
from tests.support.models import BLITZER, MUSIC, SHARED, small_config
from training.data import (
    LoadStats,
    Review,
    balanced_cap,
    build_dataset,
    cap_source_share,
    cap_val,
    drop_polar_neutral,
    fingerprint,
    load_reviews,
    split_time,
)
from training.fine_tune import star_targets


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _review(label: str, source: str = "s", day: date | None = None, text: str = "x") -> Review:
    return Review(text=text, label=Label(label), source=source, day=day)


def test_load_applies_serving_gates_stars_and_dedup(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "r.jsonl",
        [
            {"text": "Great strings, &amp; cheap", "rating": 5, "timestamp": "2013-01-02T00:00:00Z", "source": "a"},
            {"text": "great   strings, & cheap", "rating": 4, "source": "a"},  # same text once normalised
            {"text": "It is ok I guess", "rating": 3, "source": "a"},
            {"text": "Broke on day one", "rating": 1.0, "source": "a"},
            {"text": "no stars here at all", "rating": None, "source": "a"},
            {"text": "tiny", "rating": 5, "source": "a"},  # too short for the serving gate
            {"text": "x" * 6000, "rating": 2, "source": "a"},  # too long
        ],
    )
    stats = LoadStats()
    rows = load_reviews([f], GateSettings(), stats)
    assert [(r.text, r.label) for r in rows] == [
        ("Great strings, & cheap", Label.positive),
        ("It is ok I guess", Label.neutral),
        ("Broke on day one", Label.negative),
    ]
    assert rows[0].day == date(2013, 1, 2) and rows[1].day is None
    assert stats.duplicates == 1 and stats.no_stars == 1
    assert stats.rejected == {"too_short": 1, "too_long": 1}


def test_time_split_puts_the_future_in_val_and_test() -> None:
    cfg = small_config("unused", val_from=date(2013, 7, 1), test_from=date(2014, 1, 1))
    dated = [_review("positive", day=date(2010 + i % 6, 1 + i % 12, 1)) for i in range(120)]
    undated = [_review("neutral", source="flip", text=f"u{i}") for i in range(100)]
    parts = split_time(dated + undated, cfg, random.Random(0))
    assert all(r.day < cfg.val_from for r in parts["train"] if r.day)
    assert all(cfg.val_from <= r.day < cfg.test_from for r in parts["val"] if r.day)
    assert all(r.day >= cfg.test_from for r in parts["test"] if r.day)
    flip = {k: sum(r.source == "flip" for r in v) for k, v in parts.items()}
    assert flip == {"train": 80, "val": 10, "test": 10}


def test_balanced_cap_keeps_scarce_class_and_hands_on_quota() -> None:
    rows = [_review("positive")] * 900 + [_review("negative")] * 300 + [_review("neutral")] * 40
    out = balanced_cap(rows, 600, random.Random(1))
    assert Counter(r.label.value for r in out) == {"neutral": 40, "negative": 280, "positive": 280}


def test_balancing_sources_spreads_each_class_over_its_sources_and_hands_on_what_a_small_one_lacks() -> None:
    rows = [_review("positive", source="big", text=f"pb{i}") for i in range(900)]
    rows += [_review("positive", source="small", text=f"ps{i}") for i in range(30)]
    rows += [_review("negative", source="big", text=f"nb{i}") for i in range(300)]
    rows += [_review("negative", source="small", text=f"ns{i}") for i in range(300)]
    rows += [_review("neutral", source="big", text=f"ub{i}") for i in range(40)]
    out = balanced_cap(rows, 600, random.Random(1), by_source=True)
    assert len({r.text for r in out}) == len(out)
    assert Counter((r.label.value, r.source) for r in out) == {
        ("neutral", "big"): 40,
        ("negative", "big"): 140,
        ("negative", "small"): 140,
        ("positive", "small"): 30,
        ("positive", "big"): 250,
    }
    plain = Counter(r.source for r in balanced_cap(rows, 600, random.Random(1)) if r.label.value == "positive")
    assert plain["big"] > 250  # without it, the big source takes the class's quota in proportion to its size


def test_a_source_balanced_validation_set_keeps_each_sources_own_class_mix() -> None:
    rows = [_review("positive" if i % 10 else "negative", source="big", text=f"b{i}") for i in range(1000)]
    rows += [_review("neutral" if i % 2 else "negative", source="small", text=f"s{i}") for i in range(100)]
    rows += [_review("positive", source="tiny", text=f"t{i}") for i in range(20)]
    out = cap_val(rows, 300, random.Random(3), by_source=True)
    assert Counter(r.source for r in out) == {"tiny": 20, "small": 100, "big": 180}
    assert Counter(r.label.value for r in out if r.source == "small") == {"neutral": 50, "negative": 50}
    assert cap_val(rows, 300, random.Random(3)) == random.Random(3).sample(rows, 300)  # the plain cap, unchanged


def test_source_share_cap() -> None:
    rows = [_review("positive", source="big", text=str(i)) for i in range(1000)]
    rows += [_review("positive", source="small", text=str(i)) for i in range(200)]
    out = Counter(r.source for r in cap_source_share(rows, 0.5, random.Random(0)))
    assert out == {"big": 200, "small": 200}


def test_fingerprint_tracks_content() -> None:
    a = {"train": [_review("positive", text="a")], "val": [], "test": []}
    b = {"train": [_review("negative", text="a")], "val": [], "test": []}
    assert fingerprint(a) == fingerprint(a) != fingerprint(b)


@pytest.mark.slow
def test_build_dataset_on_real_reviews_is_reproducible(shared_data: Path) -> None:
    cfg = small_config("unused", data=[MUSIC, BLITZER], max_train=200, max_val=60, max_test_per_source=60)
    first, second = build_dataset(cfg, GateSettings(), shared_data), build_dataset(cfg, GateSettings(), shared_data)
    assert first.fingerprint == second.fingerprint
    assert 150 <= len(first.train) <= 200 and first.test
    assert max(r.day for r in first.train if r.day) < cfg.val_from <= min(r.day for r in first.test if r.day)
    # Blitzer ends in 2006: it can only train. Neutral is balanced in, not left at its natural ~7%.
    assert {r.source for r in first.test} == {"amazon2014_musical_instruments_5core"}
    assert sum(r.label is Label.neutral for r in first.train) >= 50


def test_star_targets_lean_2_and_4_stars_towards_neutral() -> None:
    rows = [
        Review(text="x", label=Label(lab), source="s", stars=st)
        for lab, st in (("negative", 1), ("negative", 2), ("neutral", 3), ("positive", 4), ("positive", 5))
    ]
    rows.append(_review("positive"))  # a human label: no stars, stays pure
    assert star_targets(rows, 0.25) == [[1, 0, 0], [0.75, 0.25, 0], [0, 1, 0], [0, 0.25, 0.75], [0, 0, 1], [0, 0, 1]]


def test_label_noise_drops_only_three_star_reviews_that_read_clearly_polar() -> None:
    rules = KeywordRules()
    polar = "Great sound, I love it, works great."
    mixed = "Great sound but the case broke after a week."
    rows = [
        _review("neutral", text=polar),
        _review("neutral", text=mixed),
        _review("neutral", text="It is okay."),
        _review("positive", text=polar),
    ]
    assert rules.reads_polar(polar) and not rules.reads_polar(mixed) and not rules.reads_polar("Great.")
    assert [r.text for r in drop_polar_neutral(rows, rules.reads_polar)] == [mixed, "It is okay.", polar]


def test_the_training_pipeline_refuses_the_loso_only_label_noise_lever() -> None:
    cfg = small_config("unused", neutral_noise="drop_rules_polar")
    with pytest.raises(ValueError, match="LOSO lever"):
        build_dataset(cfg, GateSettings(), SHARED)
