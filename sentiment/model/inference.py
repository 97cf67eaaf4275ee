"""Tier 1 inference: tokenizer + model + temperature, batched, returning calibrated probabilities and OOV rates.

Texts are sorted by length and padded per batch (dynamic padding), so a batch of short reviews does not pay for
one long one. Thread count is set once, deliberately: on a 2-core box oversubscription costs more than it gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from sentiment.model.registry import ModelMetadata, read_vocab, resolve
from sentiment.oov import unk_rate, word_oov_rate


class ModelOutput(BaseModel):
    """One text's tier-1 result."""

    probs: list[float]
    unk_rate: float
    oov_rate: float


class SentimentModel:
    """Any HF sequence-classification checkpoint with 3 labels, plus its calibration temperature."""

    def __init__(
        self,
        model_dir: str | Path,
        metadata: ModelMetadata,
        tag: str = "",
        num_threads: int | None = None,
        device: str = "cpu",
    ):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if num_threads:
            torch.set_num_threads(num_threads)
        self.tag = tag or str(model_dir)
        self.metadata = metadata
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).to(device)
        self.model.eval()
        self.vocab = read_vocab(Path(model_dir)) or self._tokenizer_words()
        self.max_length = metadata.max_length

    @classmethod
    def from_store(cls, tag: str, num_threads: int | None = None) -> SentimentModel:
        path, meta, full_tag = resolve(tag)
        return cls(path, meta, full_tag, num_threads)

    def _tokenizer_words(self) -> frozenset[str]:
        return frozenset(t for t in self.tokenizer.get_vocab() if t.isalpha())

    def logits(self, texts: Sequence[str], batch_size: int = 32) -> tuple[np.ndarray, list[float]]:
        """Raw logits (N, 3) in input order, and the [UNK] rate per text."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.model.config.num_labels), dtype=np.float32)
        unk = [0.0] * len(texts)
        unk_id = self.tokenizer.unk_token_id
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in idx],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                    return_special_tokens_mask=True,
                )
                special = enc.pop("special_tokens_mask")
                batch = {k: v.to(self.device) for k, v in enc.items()}
                out[idx] = self.model(**batch).logits.float().cpu().numpy()
                ids = enc["input_ids"]
                real = (special == 0) & (enc["attention_mask"] == 1)
                for row, i in enumerate(idx):
                    unk[i] = unk_rate(ids[row][real[row]].tolist(), unk_id)
        return out, unk

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Calibrated class probabilities (N, 3), label order as in ``metadata.labels``."""
        logits, _ = self.logits(texts, batch_size)
        return self.calibrated(logits)

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        return calibrated_probs(logits, self.metadata.temperature, np.array(self.metadata.class_bias))

    def predict_outputs(self, texts: Sequence[str], batch_size: int = 32) -> list[ModelOutput]:
        logits, unk = self.logits(texts, batch_size)
        return self.outputs(texts, logits, unk)

    def outputs(self, texts: Sequence[str], logits: np.ndarray, unk: Sequence[float]) -> list[ModelOutput]:
        """Calibrated outputs from logits already computed (evaluation reuses one forward pass for everything)."""
        probs = self.calibrated(logits)
        return [
            ModelOutput(probs=p.tolist(), unk_rate=u, oov_rate=word_oov_rate(t, self.vocab))
            for p, u, t in zip(probs, unk, texts, strict=True)
        ]


def calibrated_probs(logits: np.ndarray, temperature: float, bias: np.ndarray | None = None) -> np.ndarray:
    """softmax(z / T + b): the one place calibration is applied, in training reports and in serving alike."""
    # float64: model logits arrive as float32, where the optimiser's finite-difference steps vanish.
    z = np.asarray(logits, dtype=np.float64) / temperature
    return softmax(z + bias if bias is not None else z)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
