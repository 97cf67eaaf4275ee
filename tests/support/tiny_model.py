"""A tiny randomly initialised DistilBERT registered in the current BentoML store, for serving tests.

Real tokenizer (MiniLM's, from ``default_base_model()``), 2 layers of width 32: loads in a second and runs the
whole serving path for real. Run it where ``BENTOML_HOME`` points at a temporary store:
``BENTOML_HOME=/tmp/x python -m tests.support.tiny_model "some text" ...`` prints the registered tag and the model's
top-class confidence for each text (tests use them to put the confidence gate between answers).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from sentiment.contract import LABELS
from sentiment.settings import default_base_model


def build_tiny_checkpoint(out_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(default_base_model())
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size,
        dim=32,
        hidden_dim=64,
        n_layers=2,
        n_heads=2,
        max_position_embeddings=512,
        # Wide init so answers differ from text to text (the default 0.02 gives one constant answer).
        initializer_range=0.2,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={lab: i for i, lab in enumerate(LABELS)},
    )
    DistilBertForSequenceClassification(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def register_tiny_model(name: str = "review-sentiment", seed: int = 0) -> str:
    from sentiment.model.registry import ModelMetadata, save_to_store

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny_checkpoint(Path(tmp), seed)
        meta = ModelMetadata(
            base_model="tiny-random-distilbert", temperature=1.0, profile="tiny", metrics={"test_macro_f1": 0.0}
        )
        return save_to_store(name, ckpt, meta, frozenset({"great", "strings", "sound", "terrible", "value"}))


def confidences(tag: str, texts: list[str]) -> list[float]:
    from sentiment.model.inference import SentimentModel

    model = SentimentModel.from_store(tag, num_threads=1)
    return [float(max(p)) for p in model.predict(texts)] if texts else []


if __name__ == "__main__":
    registered = register_tiny_model()
    print(json.dumps({"tag": registered, "confidences": confidences(registered, sys.argv[1:])}))
