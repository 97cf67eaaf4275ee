"""Tier 1 inference: tokenizer + model + temperature, batched, returning calibrated probabilities and OOV rates.

Texts are sorted by length and padded per batch (dynamic padding), so a batch of short reviews does not pay for
one long one. Thread count is set once, deliberately: on a 2-core box oversubscription costs more than it gives.
The forward pass runs on PyTorch or, verified against it, on ONNX Runtime (:mod:`sentiment.model.runtime`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sentiment.model.export import open_onnx
from sentiment.model.registry import ModelMetadata, read_vocab, resolve
from sentiment.model.runtime import OnnxForward, forward_kwargs
from sentiment.model.stars import class_logits
from sentiment.model.tokens import Tokenizer
from sentiment.oov import unk_rate, word_oov_rate
from sentiment.outputs import ModelOutput
from sentiment.settings import Backend

log = logging.getLogger(__name__)
Floats = NDArray[np.floating[Any]]  # logits and probabilities, (N, labels)


class SentimentModel:
    """Any HF sequence-classification checkpoint with 3 labels (or 5 stars, served as 3), plus its calibration.

    On ``onnx``/``onnx-int8`` it serves the ONNX files stored with the version (:mod:`sentiment.model.export`)
    and imports neither torch nor transformers. A version registered before exports were stored is exported into
    ``onnx_cache`` (serving passes ``paths.data_dir/onnx``; the store stays read-only), which needs torch. Where
    torch is installed, any ONNX problem leaves the model on PyTorch and ``backend`` says so; where it is not, the
    load fails with the reason.
    """

    def __init__(
        self,
        model_dir: str | Path,
        metadata: ModelMetadata,
        tag: str = "",
        num_threads: int | None = None,
        device: str = "cpu",
        backend: Backend = "torch",
        onnx_cache: Path | None = None,
    ):
        model_dir = Path(model_dir)
        self.tag = tag or str(model_dir)
        self.metadata = metadata
        self.device = device
        self.max_length = metadata.max_length
        self.tokenizer = Tokenizer(model_dir, self.max_length)
        self.num_labels = len(metadata.labels)
        self.vocab = read_vocab(model_dir) or self._tokenizer_words()
        self.backend: Backend = "torch"
        self.onnx: OnnxForward | None = None
        self.model: Any = None
        self.backend_error = ""
        if backend != "torch":
            try:
                self.onnx = open_onnx(model_dir, metadata.onnx, self.max_length, backend, num_threads, onnx_cache)
                self.backend = backend
                return
            except Exception as exc:  # an export problem costs speed, never the model (where torch can serve)
                if not torch_installed():
                    raise
                self.backend_error = f"{backend} unavailable ({type(exc).__name__}: {exc}); serving on PyTorch"[:300]
                log.warning("%s", self.backend_error)
        self._load_torch(model_dir, num_threads)

    def _load_torch(self, model_dir: Path, num_threads: int | None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        if num_threads:
            torch.set_num_threads(num_threads)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).to(self.device)
        self.model.eval()

    @classmethod
    def from_store(
        cls, tag: str, num_threads: int | None = None, backend: Backend = "torch", onnx_cache: Path | None = None
    ) -> SentimentModel:
        path, meta, full_tag = resolve(tag)
        return cls(path, meta, full_tag, num_threads, backend=backend, onnx_cache=onnx_cache)

    def _tokenizer_words(self) -> frozenset[str]:
        return frozenset(t for t in self.tokenizer.get_vocab() if t.isalpha())

    def logits(self, texts: Sequence[str], batch_size: int = 32) -> tuple[Floats, list[float]]:
        """Raw logits (N, 3) in input order, and the [UNK] rate per text."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.num_labels), dtype=np.float32)
        unk = [0.0] * len(texts)
        unk_id = self.tokenizer.unk_token_id
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx])
            special = enc.pop("special_tokens_mask")
            out[idx] = self._forward(enc)
            ids = enc["input_ids"]
            real = (special == 0) & (enc["attention_mask"] == 1)
            for row, i in enumerate(idx):
                unk[i] = unk_rate(ids[row][real[row]].tolist(), unk_id)
        return out, unk

    def _forward(self, enc: dict[str, Any]) -> Floats:
        """Class logits: a star head's five are grouped into the three here, on either runtime."""
        if self.onnx is not None:
            return class_logits(self.onnx(enc))
        import torch

        batch = {k: torch.from_numpy(v).to(self.device) for k, v in forward_kwargs(self.model, enc).items()}
        with torch.inference_mode():
            logits: Floats = self.model(**batch).logits.float().cpu().numpy()
        return class_logits(logits)

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> Floats:
        """Calibrated class probabilities (N, 3), label order as in ``metadata.labels``."""
        logits, _ = self.logits(texts, batch_size)
        return self.calibrated(logits)

    def calibrated(self, logits: Floats) -> Floats:
        return calibrated_probs(logits, self.metadata.temperature, np.array(self.metadata.class_bias))

    def predict_outputs(self, texts: Sequence[str], batch_size: int = 32) -> list[ModelOutput]:
        logits, unk = self.logits(texts, batch_size)
        return self.outputs(texts, logits, unk)

    def outputs(self, texts: Sequence[str], logits: Floats, unk: Sequence[float]) -> list[ModelOutput]:
        """Calibrated outputs from logits already computed (evaluation reuses one forward pass for everything)."""
        probs = self.calibrated(logits)
        return [
            ModelOutput(probs=p.tolist(), unk_rate=u, oov_rate=word_oov_rate(t, self.vocab), model_tag=self.tag)
            for p, u, t in zip(probs, unk, texts, strict=True)
        ]


def torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def calibrated_probs(logits: Floats, temperature: float, bias: Floats | None = None) -> Floats:
    """softmax(z / T + b): the one place calibration is applied, in training reports and in serving alike."""
    # float64: model logits arrive as float32, where the optimiser's finite-difference steps vanish.
    z = np.asarray(logits, dtype=np.float64) / temperature
    return softmax(z + bias if bias is not None else z)


def softmax(z: Floats) -> Floats:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    probs: Floats = e / e.sum(axis=1, keepdims=True)
    return probs
