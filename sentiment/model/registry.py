"""The BentoML model store as the registry: every trained model is a version with its metadata.

Layout of a stored model: a Hugging Face checkpoint (``save_pretrained``) plus ``vocab_words.txt`` (the
training vocabulary for word-level OOV). Metadata (base model, label map, temperature, data fingerprint,
split dates, metrics) lives in the store's own ``metadata`` so ``bentoml models get`` shows it. Which version
serves is the ``champion`` alias (:mod:`sentiment.model.aliases`), never the store's ``latest``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sentiment.contract import LABELS
from sentiment.model.export import ONNX_DIR, OnnxExport, export_verified, registration_metadata

VOCAB_FILE = "vocab_words.txt"


class ModelMetadata(BaseModel):
    base_model: str
    labels: list[str] = Field(default_factory=lambda: list(LABELS))
    temperature: float = 1.0
    # Prior correction added to logits / temperature (see training.calibrate); zeros = none.
    class_bias: list[float] = Field(default_factory=lambda: [0.0] * len(LABELS))
    # The part of class_bias that is a decision bias (training.decision), not calibration; zeros = none.
    decision_bias: list[float] = Field(default_factory=lambda: [0.0] * len(LABELS))
    max_length: int = 128
    data_fingerprint: str = ""
    splits: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    profile: str = ""
    train_config: dict[str, Any] = Field(default_factory=dict)
    # The verified ONNX files in the version's onnx/ folder (sentiment.model.export); None: registered before
    # exports were stored, or the export failed (onnx_error says why).
    onnx: OnnxExport | None = None
    onnx_error: str = ""
    # How this version was adapted from another on a product line's labels (training.adaptation.Adaptation);
    # empty for a trained version.
    adaptation: dict[str, Any] = Field(default_factory=dict)


def save_to_store(name: str, checkpoint_dir: Path, metadata: ModelMetadata, vocab: frozenset[str]) -> str:
    """Copy a saved checkpoint into a new store version, with its verified ONNX export; returns its tag. Moves no
    existing champion.

    The alias bootstrap runs on both sides of the save: before, a store older than aliases keeps the version
    ``latest`` served until now as champion; after, the first version of a fresh store becomes champion.
    """
    import shutil

    import bentoml

    from sentiment.model.aliases import AliasRegistry

    aliases = AliasRegistry(name)
    aliases.bootstrap(command="save_to_store")
    with bentoml.models.create(
        name,
        metadata=stored_metadata(metadata),
        labels={"task": "sentiment", "profile": metadata.profile or "custom"},
    ) as ref:
        shutil.copytree(checkpoint_dir, ref.path, dirs_exist_ok=True)
        Path(ref.path, VOCAB_FILE).write_text("\n".join(sorted(vocab)), encoding="utf-8")
        ref.info.metadata.update(registration_metadata(Path(ref.path), metadata.max_length))  # saved on exit
    aliases.bootstrap(command="save_to_store")
    return str(ref.tag)


def stored_metadata(metadata: ModelMetadata) -> dict[str, Any]:
    """A version's metadata as the store takes it (every registration path writes it this way)."""
    stored: dict[str, Any] = _without_none(metadata.model_dump(mode="json"))
    return stored


def _without_none(value: Any) -> Any:
    """BentoML metadata rejects ``None`` anywhere; an absent key reads back as the field's default."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


class StoredVersion(BaseModel):
    """One stored version with the figures an operator compares before promoting it (``None``: not recorded)."""

    tag: str
    created: datetime
    profile: str
    test_macro_f1: float | None = None
    test_accuracy: float | None = None
    test_binary_accuracy: float | None = None  # negative vs positive only


def list_versions(name: str) -> list[StoredVersion]:
    """Every stored version of ``name``, oldest first; empty when the store has none."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        models = bentoml.models.list(name)
    except NotFound:
        return []
    out = []
    for m in models:
        raw = m.info.metadata.get("metrics")  # raw, not ModelMetadata: one odd version must not hide the rest
        metrics = raw if isinstance(raw, dict) else {}
        out.append(
            StoredVersion.model_validate(
                {
                    "tag": str(m.tag),
                    "created": m.info.creation_time,
                    "profile": m.info.labels.get("profile", ""),
                    **{
                        k: metrics[k]
                        for k in ("test_macro_f1", "test_accuracy", "test_binary_accuracy")
                        if k in metrics
                    },
                }
            )
        )
    return sorted(out, key=lambda v: v.created)


def resolve(tag: str) -> tuple[Path, ModelMetadata, str]:
    """Path, metadata and full tag of a stored model (``name:latest`` or a pinned version)."""
    import bentoml

    ref = bentoml.models.get(tag)
    return Path(ref.path), ModelMetadata.model_validate(ref.info.metadata), str(ref.tag)


def store_export(tag: str) -> tuple[str, OnnxExport]:
    """Export and verify a stored version's ONNX into its folder and metadata (a version registered before
    exports were stored); returns the full tag and the record. A version that has one keeps it. Needs torch."""
    import bentoml

    ref = bentoml.models.get(tag)
    meta = ModelMetadata.model_validate(ref.info.metadata)
    if meta.onnx is not None:
        return str(ref.tag), meta.onnx
    record = export_verified(Path(ref.path), Path(ref.path) / ONNX_DIR, meta.max_length)
    ref.info.metadata["onnx"] = record.model_dump(mode="json")
    ref.info.metadata.pop("onnx_error", None)
    ref.flush()  # type: ignore[no-untyped-call]  # rewrites model.yaml; the weights and the tag stay as they were
    return str(ref.tag), record


def attach_metric(tag: str, key: str, value: dict[str, Any]) -> str:
    """Store a figure measured after registration (the behaviour suite) as ``metrics.<key>`` of a version, beside
    its held-out figures; returns the full tag. The weights and the tag stay as they were."""
    import bentoml

    ref = bentoml.models.get(tag)
    stored = ref.info.metadata.get("metrics")
    metrics: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
    metrics[key] = _without_none(value)
    ref.info.metadata["metrics"] = metrics
    ref.flush()  # type: ignore[no-untyped-call]  # rewrites model.yaml only
    return str(ref.tag)


def read_vocab(model_dir: Path) -> frozenset[str]:
    p = model_dir / VOCAB_FILE
    return frozenset(p.read_text(encoding="utf-8").split()) if p.exists() else frozenset()
