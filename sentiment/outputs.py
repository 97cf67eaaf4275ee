"""What tier 1 returns for one text: the chain's input from the model, kept free of torch and ONNX.

It lives below the chain and the model code alike, so deciding on an answer never imports the inference stack.
"""

from __future__ import annotations

from pydantic import BaseModel


class ModelOutput(BaseModel):
    """One text's tier-1 result: calibrated probabilities (order of ``sentiment.contract.LABELS``) and OOV rates."""

    probs: list[float]
    unk_rate: float
    oov_rate: float
    model_tag: str = ""  # the exact version that computed it: a hot swap must show in every log record
