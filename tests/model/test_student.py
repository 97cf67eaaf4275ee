"""A student keeps the teacher's chosen blocks and reloads as the smaller model; distillation trains on the
teacher's softened predictions. Tiny random models: this is the plumbing, the quality is measured on the real one
(README, issue 14's levers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentiment.contract import LABELS
from sentiment.model.inference import softmax
from sentiment.settings import GateSettings
from tests.support.models import MUSIC, small_config
from training.data import build_dataset
from training.fine_tune import fine_tune, keep_encoder_layers, load_base, predict_logits, teacher_targets


def tiny_bert(layers: int = 3) -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=32
    )
    cfg.num_labels = len(LABELS)
    return BertForSequenceClassification(cfg).eval()  # type: ignore[no-untyped-call]


def test_a_student_keeps_the_chosen_blocks_in_order_and_reloads_as_the_smaller_model(tmp_path: Path) -> None:
    teacher = tiny_bert(3)
    student = tiny_bert(3)
    keep_encoder_layers(student, [2, 0])
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    for mine, theirs in zip(
        student.bert.encoder.layer, [teacher.bert.encoder.layer[2], teacher.bert.encoder.layer[0]], strict=True
    ):
        for a, b in zip(mine.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(a, b)
    ids = torch.tensor([[1, 5, 7, 2]])
    student.save_pretrained(tmp_path)
    from transformers import AutoModelForSequenceClassification

    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert again.config.num_hidden_layers == 2
    with torch.inference_mode():
        torch.testing.assert_close(again(input_ids=ids).logits, student(input_ids=ids).logits)
        assert not torch.allclose(student(input_ids=ids).logits, teacher(input_ids=ids).logits)


def test_layers_the_model_does_not_have_or_twice_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct layers of the model's 3"):
        keep_encoder_layers(tiny_bert(3), [0, 3])
    with pytest.raises(ValueError, match="distinct layers"):  # one block twice would share its weights silently
        keep_encoder_layers(tiny_bert(3), [1, 1])


def test_distilbert_students_too(tiny_checkpoint: Path) -> None:
    _, model = load_base(str(tiny_checkpoint), keep_layers=[1])
    assert model.config.n_layers == 1 and len(model.distilbert.transformer.layer) == 1


@pytest.mark.slow
def test_distillation_trains_on_the_teachers_softened_predictions(
    tiny_checkpoint: Path, shared_data: Path, tmp_path: Path
) -> None:
    cfg = small_config(
        str(tiny_checkpoint),
        data=[MUSIC],
        max_train=64,
        max_val=32,
        max_test_per_source=8,
        keep_layers=[1],
        teacher=str(tiny_checkpoint),
        distill_temperature=3.0,
    )
    ds = build_dataset(cfg, GateSettings(), shared_data)
    texts = [r.text for r in ds.train]
    targets = np.array(teacher_targets(cfg, texts))
    tokenizer, teacher = load_base(str(tiny_checkpoint))
    logits = predict_logits(teacher, tokenizer, texts, cfg.max_length)
    np.testing.assert_allclose(targets, softmax(logits / 3.0), rtol=1e-5)
    assert targets.max(1).mean() < softmax(logits).max(1).mean()  # softened: the dark knowledge is kept
    result = fine_tune(cfg, ds.train, ds.val, tmp_path / "student")
    assert result.steps == -(-len(ds.train) // cfg.batch_size)
    _, student = load_base(str(tmp_path / "student"))
    assert student.config.n_layers == 1
