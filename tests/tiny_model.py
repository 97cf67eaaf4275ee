"""A tiny randomly initialised DistilBERT registered in the current BentoML store, for serving tests.

Real tokenizer (MiniLM's, from ``default_base_model()``), 2 layers of width 32: loads in a second and runs the
whole serving path for real. Run it where ``BENTOML_HOME`` points at a temporary store:
``BENTOML_HOME=/tmp/x python -m tests.tiny_model`` prints the registered tag.
"""

from __future__ import annotations

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
        vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=512,
        num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={lab: i for i, lab in enumerate(LABELS)},
    )
    DistilBertForSequenceClassification(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def register_tiny_model(name: str = "review-sentiment") -> str:
    from sentiment.model.registry import ModelMetadata, save_to_store

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny_checkpoint(Path(tmp))
        meta = ModelMetadata(base_model="tiny-random-distilbert", temperature=1.0, profile="tiny",
                             metrics={"test_macro_f1": 0.0})
        return save_to_store(name, ckpt, meta, frozenset({"great", "strings", "sound", "terrible", "value"}))


if __name__ == "__main__":
    print(register_tiny_model())
