"""Tier-1 forward passes on ONNX Runtime: export any HF checkpoint, quantise it, run it.

Why: on a small CPU, PyTorch eager spends most of a MiniLM forward pass in per-op overhead. ONNX Runtime's fused
graph gives the same logits (verified below to 1e-3) faster, and per-channel dynamic int8 faster still at the same
test macro-F1 (``experiments/evaluate_backends.py`` measures both on the held-out split; figures in docs/).

The export is checked against the PyTorch model on fixed probe texts (``PROBES``) when a version is registered
(:mod:`sentiment.model.export`): a broken export (a traced-in shape, a dropped attention mask) would otherwise
serve confident garbage.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Texts of different lengths and tones, so the check covers padding, truncation and every class.
PROBES = (
    "Great strings, arrived fast and sound amazing.",
    "Terrible. Broke after two days and support never answered my emails.",
    "It's okay I guess, does the job but nothing special about it at all.",
    "I bought this for my daughter and she loves it, although the battery life could be better. " * 4,
    "meh",
)
MAX_LOGIT_DIFF = 1e-3


class ExportMismatch(RuntimeError):
    """The exported graph does not reproduce the PyTorch logits."""


def _atomic(path: Path, write: Any) -> Path:
    """Write through a temp file in the same folder: two workers exporting at once never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def forward_kwargs(torch_model: Any, encoded: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer's arrays that ``forward()`` takes (DistilBERT takes no token type ids), in its order."""
    import inspect

    return {n: encoded[n] for n in inspect.signature(torch_model.forward).parameters if n in encoded}


def export(torch_model: Any, encoded: dict[str, Any], path: Path) -> Path:
    """Trace the checkpoint with batch and sequence length left dynamic."""
    import torch

    # By name, in forward()'s order: the tokenizer's order (ids, token types, mask) is not BERT's (ids, mask,
    # token types), and passing them by position swaps the mask for the token types.
    names = list(forward_kwargs(torch_model, encoded))

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
            torch.onnx.export(
                torch_model,
                (),
                str(tmp),
                kwargs={k: encoded[k] for k in names},
                input_names=names,
                output_names=["logits"],
                dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in names}, "logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
                external_data=False,
            )

    return _atomic(path, write)


def quantize(fp32: Path, path: Path) -> Path:
    """Dynamic int8, one scale per output channel: per-tensor scales cost 1.3 points of macro-F1, these none."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(fp32, tmp, weight_type=QuantType.QInt8, per_channel=True)

    return _atomic(path, write)


class OnnxForward:
    """An inference session that takes the tokenizer's numpy output and returns logits."""

    def __init__(self, path: Path, threads: int | None, per_text: bool = False) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        if threads:
            opts.intra_op_num_threads = threads
        # Spinning threads wait for work by burning CPU that the API and language services need on a small box.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.path = path
        self.per_text = per_text

    def __call__(self, encoded: dict[str, NDArray[np.integer[Any]]]) -> NDArray[np.floating[Any]]:
        feed = {k: np.asarray(encoded[k], dtype=np.int64) for k in self.inputs}
        if not self.per_text:
            logits: NDArray[np.floating[Any]] = self.session.run(["logits"], feed)[0]
            return logits
        # Dynamic int8 scales activations over the whole input tensor, so a text's answer would move with whatever
        # shares (and pads) its batch. One unpadded text per run: the same text always gets the same answer.
        real = np.asarray(encoded["attention_mask"]).astype(bool)
        rows = [
            self.session.run(["logits"], {k: v[i : i + 1, real[i]] for k, v in feed.items()})[0]
            for i in range(real.shape[0])
        ]
        return np.concatenate(rows)
