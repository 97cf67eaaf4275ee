"""A checkpoint's fast tokenizer, read from its ``tokenizer.json`` with the ``tokenizers`` package alone.

Why: loading it through ``transformers`` drags in that package (and, where installed, PyTorch) only to call the
same Rust tokenizer; the ONNX serving image carries neither. Truncation and padding are set as ``transformers``
sets them for ``tokenizer(texts, truncation=True, max_length=N, padding=True)``, and a test checks that both give
the same ids on real reviews.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

Ids = NDArray[np.integer[Any]]


def _token(config: dict[str, Any], key: str, default: str) -> str:
    """A special token from tokenizer_config.json: a string, or an AddedToken dict in older files."""
    value = config.get(key) or default
    return str(value["content"]) if isinstance(value, dict) else str(value)


class Tokenizer:
    def __init__(self, model_dir: Path, max_length: int) -> None:
        from tokenizers import Tokenizer as Fast

        config_file = model_dir / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        self.fast = Fast.from_file(str(model_dir / "tokenizer.json"))
        self.fast.enable_truncation(max_length)
        pad = _token(config, "pad_token", "[PAD]")
        self.fast.enable_padding(
            pad_id=self.fast.token_to_id(pad), pad_token=pad, pad_type_id=int(config.get("pad_token_type_id", 0))
        )
        self.unk_token_id = self.fast.token_to_id(_token(config, "unk_token", "[UNK]"))

    def __call__(self, texts: Sequence[str]) -> dict[str, Ids]:
        """Ids, token types, attention and special-token masks, padded to the longest text: (N, tokens) each."""
        encodings = self.fast.encode_batch(list(texts))

        def stack(field: str) -> Ids:
            return np.array([getattr(e, field) for e in encodings], dtype=np.int64)

        return {
            "input_ids": stack("ids"),
            "token_type_ids": stack("type_ids"),
            "attention_mask": stack("attention_mask"),
            "special_tokens_mask": stack("special_tokens_mask"),
        }

    def get_vocab(self) -> dict[str, int]:
        return dict(self.fast.get_vocab())
