"""ONNX Runtime backends: the export reproduces PyTorch for BERT- and DistilBERT-shaped checkpoints, int8 answers
do not depend on the batch, a bad export is caught and the model stays on PyTorch, and the real trained
checkpoint keeps its labels on int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentiment.jsonl import iter_records
from sentiment.model import export, runtime
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import ModelMetadata
from sentiment.settings import default_base_model
from tests.support.models import MUSIC, TrainedModel

pytestmark = pytest.mark.slow  # every test exports (and most quantise) a real ONNX graph
TEXTS = [
    "Great strings, they sound warm and stay in tune.",
    "Broke on day two.",
    "It is fine. Not great, not terrible, does what the box says and nothing more than that, honestly.",
    "ok",
    "The tuner clips on the headstock and the display is easy to read even on a dark stage. " * 6,
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BERT-shaped (token type ids, BERT's argument order), random, tiny: the case a by-position export breaks."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(default_base_model())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        initializer_range=0.2,
        num_labels=3,
    )
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _model(path: Path, backend: str, cache: Path) -> SentimentModel:
    return SentimentModel(path, ModelMetadata(base_model="tiny"), num_threads=1, backend=backend, onnx_cache=cache)


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_onnx_export_reproduces_pytorch_logits(
    kind: str, tiny_bert: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    path = tiny_bert if kind == "bert" else tiny_checkpoint
    torch_logits = _model(path, "torch", tmp_path).logits(TEXTS, batch_size=8)[0]
    onnx = _model(path, "onnx", tmp_path)
    assert onnx.backend == "onnx", onnx.backend_error
    onnx_logits = onnx.logits(TEXTS, batch_size=8)[0]
    assert np.abs(onnx_logits - torch_logits).max() < 1e-3
    assert (onnx_logits.std(axis=0) > 1e-3).all()  # the random model does tell the texts apart


def test_int8_answers_do_not_depend_on_the_batch(tiny_bert: Path, tmp_path: Path) -> None:
    model = _model(tiny_bert, "onnx-int8", tmp_path)
    assert model.backend == "onnx-int8", model.backend_error
    alone = np.concatenate([model.logits([t])[0] for t in TEXTS])
    together = model.logits(TEXTS, batch_size=8)[0]
    assert np.array_equal(alone, together)
    assert (tmp_path / export.cache_key(tiny_bert) / "model.int8.onnx").exists()


def test_an_export_that_disagrees_with_pytorch_leaves_the_model_on_pytorch(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = runtime.OnnxForward.__call__
    monkeypatch.setattr(runtime.OnnxForward, "__call__", lambda self, enc: original(self, enc) + 0.5)  # a bad graph
    model = _model(tiny_bert, "onnx-int8", tmp_path)
    assert model.backend == "torch" and model.onnx is None
    assert "differs from PyTorch" in model.backend_error
    assert model.predict(TEXTS).shape == (len(TEXTS), 3)


def test_a_stale_cached_export_is_replaced(tiny_bert: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Files left by an older exporter (here: another model's graph, no record of a check) are exported again."""
    _model(tiny_checkpoint, "onnx", tmp_path)
    stale = tmp_path / export.cache_key(tiny_checkpoint) / "model.onnx"
    target = tmp_path / export.cache_key(tiny_bert) / "model.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(stale.read_bytes())
    model = _model(tiny_bert, "onnx-int8", tmp_path)
    assert model.backend == "onnx-int8", model.backend_error
    assert target.read_bytes() != stale.read_bytes()


@pytest.mark.slow
def test_trained_checkpoint_keeps_its_labels_on_int8(trained_minilm: TrainedModel, tmp_path: Path) -> None:
    reviews = [r["text"] for r in iter_records(MUSIC) if len(r.get("text") or "") > 20][-120:]
    fp32 = SentimentModel(trained_minilm.path, trained_minilm.metadata, num_threads=2).predict(reviews)
    int8 = SentimentModel(
        trained_minilm.path, trained_minilm.metadata, num_threads=2, backend="onnx-int8", onnx_cache=tmp_path
    )
    assert int8.backend == "onnx-int8", int8.backend_error
    probs = int8.predict(reviews)
    assert (probs.argmax(1) == fp32.argmax(1)).mean() >= 0.95
    assert np.abs(probs - fp32).max() < 0.3
