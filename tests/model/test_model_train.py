"""Training on real reviews, the model-store round trip and its metadata, any-checkpoint support, determinism.

``tiny_checkpoint`` (random 2-layer DistilBERT) proves the code accepts any HF checkpoint in seconds;
``minilm_run`` fine-tunes the real offline base on a few hundred shared reviews, so "positive comes out
positive" is learned from data, not wired in.
"""

from __future__ import annotations

import random
from pathlib import Path

import bentoml
import numpy as np
import pytest

from sentiment.contract import LABELS
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import ModelMetadata, read_vocab, resolve, save_to_store
from sentiment.settings import GateSettings, default_base_model
from tests.support.models import MUSIC, TrainedModel, small_config
from training.data import build_dataset
from training.fine_tune import class_weights, fine_tune, length_batches
from training.pipeline import Report

POSITIVE = [
    "Excellent guitar strings, they sound great and I love them. Highly recommended!",
    "Perfect, works exactly as described. Very happy with this purchase.",
]
NEGATIVE = [
    "Terrible. It broke after two days and the sound is awful. Waste of money.",
    "Do not buy this junk, it stopped working within a week. Very disappointed.",
]


@pytest.fixture(scope="module")
def minilm_run(trained_minilm: TrainedModel, model_store: Path) -> Report:
    """The session's trained model, registered again in this module's store."""
    tag = save_to_store("test-sentiment", trained_minilm.path, trained_minilm.metadata, read_vocab(trained_minilm.path))
    return trained_minilm.report.model_copy(update={"tag": tag})


@pytest.mark.slow
def test_real_training_learns_polarity_and_round_trips_the_store(minilm_run: Report) -> None:
    assert minilm_run.tag and minilm_run.tag.startswith("test-sentiment:")
    model = SentimentModel.from_store("test-sentiment:latest", num_threads=2)
    assert model.tag == minilm_run.tag
    probs = model.predict(POSITIVE + NEGATIVE)
    assert [LABELS[i] for i in probs.argmax(1)] == ["positive"] * 2 + ["negative"] * 2
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)

    meta = model.metadata
    assert meta.base_model == default_base_model() and meta.labels == list(LABELS)
    assert meta.temperature == pytest.approx(minilm_run.calibration.temperature) and meta.temperature > 0
    # the served class bias is calibration plus the decision bias chosen on validation, both recorded
    assert meta.decision_bias == minilm_run.decision_bias and meta.decision_bias[2] == 0.0
    assert meta.class_bias == pytest.approx(np.add(minilm_run.calibration.class_bias, meta.decision_bias).tolist())
    assert meta.data_fingerprint == minilm_run.data["fingerprint"] and len(meta.data_fingerprint) == 16
    assert meta.splits["method"] == "time" and meta.splits["test_from"] == "2014-01-01"
    assert meta.metrics["test_macro_f1"] == pytest.approx(minilm_run.test.macro_f1, abs=1e-4)
    assert model.vocab and "guitar" in model.vocab  # training vocabulary for word-level OOV
    out = model.predict_outputs(["Great tuner", "asdkjh qwpoeiru zxmnbv"])
    assert out[0].oov_rate < out[1].oov_rate == 1.0


@pytest.mark.slow
def test_report_files_and_figures(minilm_run: Report, tmp_path: Path) -> None:
    r = minilm_run
    assert set(r.plots) == {
        "confusion_matrix.png",
        "reliability.png",
        "risk_coverage.png",
        "class_risk_coverage.png",
        "per_source.png",
    }
    assert r.test.n == sum(sum(row) for row in r.test.confusion) > 0
    assert abs(sum(t.share for t in r.chain.tiers.values()) - 1.0) < 1e-9
    assert r.calibration.nll_after <= r.calibration.nll_before + 1e-9  # T minimises validation NLL
    assert r.training.history and r.training.best_val_macro_f1 == max(h.val_macro_f1 for h in r.training.history)


@pytest.mark.slow
def test_any_checkpoint_trains_saves_and_reloads(
    tiny_checkpoint: Path, model_store: Path, shared_data: Path, tmp_path: Path
) -> None:
    cfg = small_config(str(tiny_checkpoint), data=[MUSIC], max_train=120, max_val=40, max_test_per_source=20)
    ds = build_dataset(cfg, GateSettings(), shared_data)
    result = fine_tune(cfg, ds.train, ds.val, tmp_path / "ckpt")
    assert result.steps == -(-len(ds.train) // cfg.batch_size)
    meta = ModelMetadata(base_model=str(tiny_checkpoint), temperature=1.7, max_length=64, profile="test")
    tags = [save_to_store("tiny", tmp_path / "ckpt", meta, frozenset({"good", "bad"})) for _ in range(2)]
    assert len({str(m.tag) for m in bentoml.models.list("tiny")}) == 2  # versions accumulate
    path, got, tag = resolve("tiny:latest")
    assert tag == tags[-1] and got.temperature == 1.7 and got.base_model == str(tiny_checkpoint)
    pinned = SentimentModel.from_store(tags[0])
    fresh = SentimentModel(tmp_path / "ckpt", meta)
    texts = ["great value", "broke in a day, awful"]
    np.testing.assert_allclose(pinned.predict(texts), fresh.predict(texts), rtol=1e-5)
    assert pinned.vocab == {"good", "bad"}


@pytest.mark.slow
def test_same_seed_same_model(tiny_checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    cfg = small_config(str(tiny_checkpoint), data=[MUSIC], max_train=96, max_val=32, max_test_per_source=8)
    ds = build_dataset(cfg, GateSettings(), shared_data)
    a = fine_tune(cfg, ds.train, ds.val, tmp_path / "a")
    b = fine_tune(cfg, ds.train, ds.val, tmp_path / "b")
    fine_tune(cfg.model_copy(update={"seed": cfg.seed + 1}), ds.train, ds.val, tmp_path / "c")  # another seed
    meta = ModelMetadata(base_model="tiny")
    texts = [r.text for r in ds.test]
    la, lb, lc = (SentimentModel(tmp_path / d, meta).logits(texts)[0] for d in "abc")
    np.testing.assert_array_equal(la, lb)
    assert a.history == b.history
    assert not np.array_equal(la, lc)


def test_class_weights_and_length_batches() -> None:
    w = class_weights([0] * 10 + [1] * 2 + [2] * 28)
    assert w[1] > w[0] > w[2] and np.mean(w) == pytest.approx(1.0, abs=1e-3)
    lengths = [random.Random(0).randint(1, 200) for _ in range(1000)]
    batches = length_batches(lengths, 16, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    # Sorted inside pools: the padding waste is a fraction of what random batches would cost.
    waste = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    assert waste < 0.1 * sum(lengths)


@pytest.mark.slow
def test_time_budget_stops_training_and_keeps_a_checkpoint(
    tiny_checkpoint: Path, shared_data: Path, tmp_path: Path
) -> None:
    cfg = small_config(
        str(tiny_checkpoint), data=[MUSIC], max_train=96, max_val=32, max_test_per_source=8, train_budget_s=0.0
    )
    ds = build_dataset(cfg, GateSettings(), shared_data)
    result = fine_tune(cfg, ds.train, ds.val, tmp_path / "ckpt")
    assert (result.stopped, result.steps, len(result.history)) == ("time_budget", 1, 1)
    assert SentimentModel(tmp_path / "ckpt", ModelMetadata(base_model="tiny")).predict(["fine"]).shape == (1, 3)


def test_the_quick_profile_teaches_negation_and_only_negation(shared_data: Path) -> None:
    """The README's first command trains the quick profile: it must add the suite's negation half, nothing else."""
    from training.behaviour import augmentation
    from training.config import make_config
    from training.data import AUGMENTATION_SOURCE

    cfg = make_config("quick", data=[MUSIC], max_train=60, max_val=20, max_test_per_source=10)
    ds = build_dataset(cfg, GateSettings(), shared_data)
    taught = {r.text for r in ds.train if r.source == AUGMENTATION_SOURCE}
    negation = {text for text, _ in augmentation(cfg.seed, cfg.augment_behaviour, ("negation",))}
    contrast = {text for text, _ in augmentation(cfg.seed, cfg.augment_behaviour, ("contrast", "intensity"))}
    assert len(taught) > 200 and taught <= negation and not taught & contrast
    assert all(r.source != AUGMENTATION_SOURCE for r in (*ds.val, *ds.test))  # never scored on what it was taught
