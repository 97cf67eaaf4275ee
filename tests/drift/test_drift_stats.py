"""Drift signals on the real reviews: specificity (random splits stay quiet at the promised rate), sensitivity
(each injected shift fires the signal meant for it), and thresholds (changing one changes the verdict).

Features are computed once per module; a split only re-indexes arrays, so 100 splits cost well under a second.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from drift.detector import DetectOptions, signal_inputs
from drift.embedding import embed
from drift.features import gate_codes, load_vocab
from drift.signals import SignalInputs, embedding_signal, evaluate
from drift.windows import window_from_records
from experiments.evaluate_drift import shifts
from sentiment.jsonl import iter_records
from sentiment.settings import Settings, load_settings

pytestmark = pytest.mark.slow  # embeds and tests thousands of real reviews
STATISTICAL = ("oov_rate", "text_length", "label_distribution", "low_confidence", "non_english_rate", "rejected_rate")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(drift={"gate_sample": 300, "embedding_permutations": 300})


@pytest.fixture(scope="module")
def vocab(settings):
    return load_vocab(settings, None)[0]


@pytest.fixture(scope="module")
def data(shared_data):
    d = shared_data
    return {
        "music": list(iter_records(d / "amazon2014_musical_instruments_5core.jsonl")),
        "blitzer": list(iter_records(d / "blitzer_multidomain_sentiment.jsonl")),
    }


@pytest.fixture(scope="module")
def pooled(data, vocab, settings) -> SignalInputs:
    """Every Musical Instruments review as one pool; the service's gates run on a random 1,200 of them.

    Reviews carry no model confidence and tests use no stored model, so the low-confidence flags are drawn at a
    fixed 12% per review: what matters for specificity is that both halves come from the same distribution.
    """
    music = data["music"]
    w = window_from_records("pool", music, vocab, settings.drift, settings.gates.confidence_gate)
    gated = np.random.default_rng(1).choice(len(music), 1200, replace=False)
    gate = np.full(len(music), -1, dtype=np.int8)
    gate[gated] = gate_codes([music[i]["text"] for i in gated], settings)
    low_conf = (np.random.default_rng(2).random(len(music)) < 0.12).astype(np.int8)
    return SignalInputs(length=w.length, oov=w.oov, label=w.label, low_conf=low_conf, gate=gate)


def test_specificity_random_splits_rarely_alarm(pooled, settings):
    """100 random half/half splits of the same reviews: each signal's false-alarm rate stays near its nominal 5%."""
    rng = np.random.default_rng(0)
    n = len(pooled.length)
    alarms = dict.fromkeys(STATISTICAL, 0)
    for _ in range(100):
        perm = rng.permutation(n)
        res = evaluate(pooled.subset(perm[: n // 2]), pooled.subset(perm[n // 2 :]), settings.drift)
        for name in STATISTICAL:
            assert not res[name].skipped, res[name].detail
            alarms[name] += res[name].drifted
    print("false alarms per 100 splits:", alarms)
    assert all(count <= 8 for count in alarms.values()), alarms
    assert sum(alarms.values()) / (100 * len(STATISTICAL)) <= 0.05, alarms


@pytest.fixture(scope="module")
def embeddings(data, settings):
    """MiniLM embeddings of 160 Musical Instruments and 40 book/DVD reviews (short max_length: CI has 2 cores)."""
    rng = random.Random(0)
    music = rng.sample(data["music"], 160)
    books = rng.sample([r for r in data["blitzer"] if r.get("category") in ("books", "dvd")], 40)
    emb = embed([r["text"] for r in music + books], settings.drift.embedding_model, max_length=64)
    return emb[:160], emb[160:]


def test_embedding_specificity_and_category_sensitivity(embeddings, settings):
    music, books = embeddings
    rng = np.random.default_rng(0)
    alarms = 0
    for _ in range(20):
        perm = rng.permutation(len(music))
        a = SignalInputs(*(np.zeros(0),) * 5, embeddings=music[perm[:80]])
        b = SignalInputs(*(np.zeros(0),) * 5, embeddings=music[perm[80:]])
        alarms += embedding_signal(a, b, settings.drift).drifted
    print("embedding false alarms per 20 splits:", alarms)
    assert alarms <= 3, alarms
    ref = SignalInputs(*(np.zeros(0),) * 5, embeddings=music[:80])
    changed = SignalInputs(*(np.zeros(0),) * 5, embeddings=np.vstack([music[80:128], books[:32]]))  # 40% books
    res = embedding_signal(ref, changed, settings.drift)
    assert res.drifted and res.n_current == 80, res.detail


@pytest.fixture(scope="module")
def halves(data, settings, vocab):
    """2013 Musical Instruments reviews split at random: the reference half (features computed once) and the other."""
    base = [r for r in data["music"] if r["timestamp"].startswith("2013")]
    random.Random(0).shuffle(base)
    half = len(base) // 2
    ref = window_from_records("A", base[:half], vocab, settings.drift, settings.gates.confidence_gate)
    inputs, _ = signal_inputs(ref, settings, DetectOptions(embedding=False, progress=False))
    return inputs, base[half:]


def _fired(halves, records, settings, vocab, drift=None) -> set[str]:
    ref, _ = halves
    cur = window_from_records("B", records, vocab, settings.drift, settings.gates.confidence_gate)
    inputs, _ = signal_inputs(cur, settings, DetectOptions(embedding=False, progress=False))
    return {name for name, s in evaluate(ref, inputs, drift or settings.drift).items() if s.drifted}


def test_control_half_is_quiet(halves, settings, vocab):
    assert _fired(halves, halves[1], settings, vocab) == set()


@pytest.fixture(scope="module")
def shift_table(settings):
    """The very shifts ``python -m experiments.evaluate_drift`` reports on, by name."""
    return {shift.name: (shift, apply) for shift, apply in shifts(settings)}


@pytest.mark.parametrize("name", ["review bombing", "markup leak", "non-English flood", "broken client"])
def test_each_injected_shift_fires_its_signal(name, shift_table, halves, settings, vocab):
    shift, apply = shift_table[name]
    fired = _fired(halves, apply(halves[1], random.Random(1)), settings, vocab)
    assert shift.expected and set(shift.expected) <= fired, fired


def test_thresholds_change_which_signals_fire(shift_table, halves, settings, vocab):
    rng = random.Random(2)
    bomb, leak = shift_table["review bombing"][1], shift_table["markup leak"][1]
    shifted = leak(bomb(halves[1], rng), rng)
    default = _fired(halves, shifted, settings, vocab)
    assert {"label_distribution", "oov_rate"} <= default
    lax_js = load_settings(drift={**settings.drift.model_dump(), "js_threshold": 0.5}).drift
    lax_oov = load_settings(drift={**settings.drift.model_dump(), "oov_threshold": 0.5}).drift
    assert _fired(halves, shifted, settings, vocab, lax_js) == default - {"label_distribution"}
    assert _fired(halves, shifted, settings, vocab, lax_oov) == default - {"oov_rate"}
