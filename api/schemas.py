"""HTTP request and response bodies of the API service (what the OpenAPI page shows)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, BaseModel, Field

from sentiment.contract import Prediction, redact_paths
from sentiment.model.registry import ModelMetadata
from sentiment.rollup import ALL


def _not_blank(text: str) -> str:
    """Empty or whitespace-only text is a client error (422), caught before any runner is called."""
    if all(c.isspace() or c == "\ufeff" for c in text):
        raise ValueError("text must contain non-whitespace characters")
    return text


# What _not_blank accepts, as an OpenAPI (ECMA-262) pattern: ECMA's \s lacks Python's \x1c-\x1f and \x85 and has
# \ufeff, which _not_blank counts as blank too, so the two agree character for character.
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"

ReviewText = Annotated[
    str,
    Field(
        min_length=1,
        examples=["The strings arrived quickly and sound bright and warm. Great value."],
        json_schema_extra={"pattern": NOT_BLANK},
    ),
    AfterValidator(_not_blank),
]


def _not_all(value: str) -> str:
    """``*`` names the rollup's totals (:data:`sentiment.rollup.ALL`), so it cannot be a source or topic."""
    if value == ALL:
        raise ValueError(f"{ALL!r} is reserved")
    return value


MetaText = Annotated[str, Field(min_length=1, max_length=100, examples=["web-shop"]), AfterValidator(_not_all)]


class RequestMeta(BaseModel):
    """Optional metadata a request may carry: logged with its answers for ``GET /trends``; the answer is unchanged."""

    source: MetaText | None = None
    topic: MetaText | None = None


# ``GET /trends``' start and end: ISO 8601 prefixes down to the hour ("2026-11", "2026-11-20T10").
TrendTime = Annotated[str | None, Query(pattern=r"^\d{4}(-\d{2}(-\d{2}([T ]\d{2}.*)?)?)?$")]


def public_model_name(base_model: str) -> str:
    """A hub name as it is; a local checkpoint by its last two folders, never the serving machine's path."""
    path = PurePath(base_model)
    return "/".join(path.parts[-2:]) if path.is_absolute() else redact_paths(base_model)


class Health(BaseModel):
    """``GET /health``: always 200 while the process runs."""

    status: Literal["ok", "degraded", "failing"]
    problems: list[str] = Field(default_factory=list)


class BatchResult(BaseModel):
    predictions: list[Prediction]


# What /model/info says about an adapted version (never its files' paths).
ADAPTATION_SHOWN = ("method", "from_tag", "labels", "held_out", "class_counts", "ts")


class ModelCard(BaseModel):
    """``GET /model/info``."""

    tag: str
    base_model: str
    labels: list[str]
    temperature: float
    class_bias: list[float] = Field(description="per-class prior correction added to logits / temperature")
    max_length: int
    metrics: dict[str, Any]
    profile: str
    backend: str = Field(description="forward pass in use: torch, onnx or onnx-int8 (service.backend)")
    challenger: str | None = Field(default=None, description="version scored in shadow, if a challenger is set")
    adaptation: dict[str, Any] | None = Field(
        default=None,
        description="how this version was adapted from another on a product line's labels (method, from_tag, labels, "
        "held_out, class_counts, ts); null for a trained version",
    )

    @classmethod
    def from_metadata(cls, tag: str, meta: ModelMetadata, backend: str, challenger: str | None = None) -> ModelCard:
        return cls(
            tag=tag,
            challenger=challenger,
            backend=backend,
            base_model=public_model_name(meta.base_model),
            labels=meta.labels,
            temperature=meta.temperature,
            class_bias=meta.class_bias,
            max_length=meta.max_length,
            metrics=meta.metrics,
            profile=meta.profile,
            adaptation={k: meta.adaptation[k] for k in ADAPTATION_SHOWN if k in meta.adaptation} or None,
        )
