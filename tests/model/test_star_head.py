"""A star head (issue 11's "5-class head mapped to three"): five logits trained on the ratings, served as the three
classes by grouping, exactly, on every runtime. Tiny random models: the plumbing; the quality is measured on the
real one (README, the LOSO levers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from sentiment.model.inference import SentimentModel, softmax
from sentiment.model.registry import resolve
from sentiment.model.stars import STAR_CLASS, class_logits, star_head_targets
from sentiment.model.tokens import Tokenizer
from sentiment.settings import PathSettings, Settings
from tests.support.models import isolated_store, small_config
from training.chain_view import chain_view
from training.config import TrainConfig
from training.fine_tune import teacher_targets
from training.pipeline import run


def test_grouping_is_exact_the_class_probability_is_the_sum_of_its_stars() -> None:
    z = np.random.default_rng(0).normal(scale=4.0, size=(50, 5)).astype(np.float32)
    stars = softmax(z.astype(np.float64))
    grouped = softmax(class_logits(z).astype(np.float64))
    summed = np.stack([stars[:, [s for s in range(5) if STAR_CLASS[s] == c]].sum(1) for c in range(3)], axis=1)
    np.testing.assert_allclose(grouped, summed, rtol=1e-6)
    assert class_logits(z).dtype == np.float32


def test_three_logits_pass_through_and_other_widths_are_refused() -> None:
    z = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert class_logits(z) is z
    with pytest.raises(ValueError, match="want 3 classes or 5 stars"):
        class_logits(np.zeros((2, 4), dtype=np.float32))


def test_targets_are_the_star_or_a_starless_label_spread_over_its_class() -> None:
    targets = star_head_targets([1, 2, 3, 4, 5, None, None, None], [0, 0, 1, 2, 2, 0, 1, 2])
    assert targets[:5] == [list(np.eye(5)[i]) for i in range(5)]
    assert targets[5:] == [[0.5, 0.5, 0, 0, 0], [0, 0, 1.0, 0, 0], [0, 0, 0, 0.5, 0.5]]


def test_a_star_head_takes_no_softened_three_class_targets() -> None:
    with pytest.raises(ValidationError, match="drop star_soft and teacher"):
        TrainConfig(head="stars", star_soft=0.25)
    with pytest.raises(ValidationError, match="drop star_soft and teacher"):
        TrainConfig(head="stars", teacher="some/checkpoint")


@pytest.mark.slow
def test_a_star_head_model_trains_registers_and_serves_three_classes_on_every_runtime(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    cfg = small_config(
        str(tiny_checkpoint),
        max_train=96,
        max_val=48,
        max_test_per_source=16,
        eval_every=3,
        head="stars",
        decision_bias=True,
    )
    with isolated_store(tmp_path / "bentoml"):
        settings = Settings(paths=PathSettings(data_dir=tmp_path / "var"))
        report = run(cfg, tmp_path / "report", settings, chain_view, log=lambda *_: None)
        assert report.tag is not None
        path, meta, tag = resolve(report.tag)
        texts = ["Great strings, sound amazing.", "Broke after two days. Awful.", "It's fine, nothing special.", "meh"]
        served = {
            b: SentimentModel(path, meta, tag, num_threads=1, backend=b, onnx_cache=tmp_path / "cache")
            for b in ("torch", "onnx", "onnx-int8")
        }
        assert all(m.backend == b for b, m in served.items())  # the export of a 5-logit graph was verified
        logits = {b: m.logits(texts)[0] for b, m in served.items()}

    import torch
    from transformers import AutoModelForSequenceClassification

    raw_model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    assert raw_model.config.num_labels == 5 and raw_model.config.id2label[0] == "1 star"
    enc = Tokenizer(path, meta.max_length)(texts)
    with torch.inference_mode():
        raw = raw_model(
            input_ids=torch.from_numpy(enc["input_ids"]), attention_mask=torch.from_numpy(enc["attention_mask"])
        ).logits.numpy()
    np.testing.assert_allclose(logits["torch"], class_logits(raw), atol=1e-5)
    np.testing.assert_allclose(logits["onnx"], logits["torch"], atol=1e-3)
    assert logits["onnx-int8"].shape == (4, 3)
    probs = served["torch"].predict(texts)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(1), 1.0)
    assert len(report.decision_bias) == 3 and len(report.test.per_class) == 3
    weights = report.training.class_weights  # per star, each its class's weight
    assert len(weights) == 5 and weights[0] == weights[1] and weights[3] == weights[4]
    # As a teacher it keeps its own five-star head (a fresh 3-label head would give random targets).
    targets = teacher_targets(small_config(str(path), teacher=str(path), distill_temperature=2.0), texts)
    np.testing.assert_allclose(targets, softmax(class_logits(raw).astype(np.float64) / 2.0), atol=1e-4)
