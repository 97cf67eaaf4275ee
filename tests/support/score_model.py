"""Score texts with a stored version the way serving loads it, optionally in a process where PyTorch and
transformers cannot be imported (as in the ONNX serving image).

``BENTOML_HOME=... python -m tests.support.score_model [--no-torch] TAG BACKEND CACHE_DIR < texts.json`` prints
``{"backend", "probs", "imported"}`` (``imported``: torch or transformers modules loaded), or ``{"error"}``.
"""

from __future__ import annotations

import importlib.abc
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ABSENT = ("torch", "transformers")


class _Absent(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` fail as it does where the package is not installed."""

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: Any = None) -> None:
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--no-torch":
        sys.meta_path.insert(0, _Absent())
        argv = argv[1:]
    tag, backend, cache = argv
    from sentiment.model.inference import SentimentModel

    texts = json.load(sys.stdin)
    try:
        model = SentimentModel.from_store(tag, num_threads=1, backend=backend, onnx_cache=Path(cache))  # type: ignore[arg-type]
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 0
    probs = model.predict(texts).tolist()
    imported = sorted(m for m in sys.modules if m.split(".")[0] in ABSENT)
    print(json.dumps({"backend": model.backend, "probs": probs, "imported": imported}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
