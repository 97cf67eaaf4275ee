"""The ONNX files a model version serves from: exported and verified once, when the version is registered.

Why: serving used to export the PyTorch checkpoint at every start, so every serving image had to carry PyTorch
(the image was 2.56 GB with it, 760 MB without, README "Bento and container image") to run a model that answers on
ONNX Runtime. Now registration exports fp32 and
per-channel dynamic int8 into the version's ``onnx/`` folder, checks fp32 against PyTorch on fixed probe texts, and
records checksums and the check in the version's metadata; serving opens those files without importing torch.

A version registered before this has no ``onnx/`` folder. Rule: where PyTorch is installed, serving exports it at
load into its cache (the same function, so the same check); where it is not (the ONNX image), the load fails with a
reason that names the fix, ``sentiment-models export VERSION`` run where PyTorch is installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from sentiment.model.runtime import (
    MAX_LOGIT_DIFF,
    PROBES,
    ExportMismatch,
    OnnxForward,
    export,
    forward_kwargs,
    quantize,
)
from sentiment.model.tokens import Tokenizer
from sentiment.settings import Backend

log = logging.getLogger(__name__)
ONNX_DIR = "onnx"  # inside a version's folder (or a legacy version's cache folder)
RECORD = "export.json"  # the OnnxExport, next to the files it describes (metadata holds the same record)
FP32, INT8 = "model.onnx", "model.int8.onnx"


class OnnxUnavailable(RuntimeError):
    """This version cannot be served on ONNX here (no stored export and no PyTorch to make one, or a bad file)."""


class OnnxFile(BaseModel):
    file: str  # relative to the ONNX folder
    sha256: str
    bytes: int


class OnnxExport(BaseModel):
    """What registration exported and how it checked it (stored in the version's metadata as ``onnx``)."""

    fp32: OnnxFile
    int8: OnnxFile
    probes: int  # texts the check ran on (runtime.PROBES)
    max_logit_diff: float  # fp32 vs PyTorch; at most runtime.MAX_LOGIT_DIFF, or there is no export
    int8_max_logit_diff: float  # int8 vs PyTorch, for the record: int8 is not meant to be exact


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_verified(model_dir: Path, out_dir: Path, max_length: int) -> OnnxExport:
    """Export the checkpoint in ``model_dir`` to ``out_dir`` (fp32 + int8), verified against PyTorch; needs torch.

    Raises :class:`ExportMismatch` when fp32 does not reproduce PyTorch's logits to ``MAX_LOGIT_DIFF``.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    # Eager attention traces to plain ops that ONNX Runtime fuses; same numbers as SDPA.
    torch_model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), attn_implementation="eager")
    torch_model.eval()
    encoded = Tokenizer(model_dir, max_length)(list(PROBES))
    tensors = {k: torch.from_numpy(v) for k, v in encoded.items()}
    with torch.inference_mode():
        expected = torch_model(**forward_kwargs(torch_model, tensors)).logits.float().numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export(torch_model, tensors, out_dir / FP32)
    diff = float(np.abs(OnnxForward(fp32, 1)(encoded) - expected).max())
    if not diff <= MAX_LOGIT_DIFF:
        raise ExportMismatch(f"ONNX export differs from PyTorch by {diff:.3g} in the logits (limit {MAX_LOGIT_DIFF})")
    int8 = quantize(fp32, out_dir / INT8)
    int8_diff = float(np.abs(OnnxForward(int8, 1, per_text=True)(encoded) - expected).max())
    record = OnnxExport(
        fp32=_describe(fp32),
        int8=_describe(int8),
        probes=len(PROBES),
        max_logit_diff=diff,
        int8_max_logit_diff=int8_diff,
    )
    (out_dir / RECORD).write_text(record.model_dump_json(indent=1), encoding="utf-8")
    return record


def _describe(path: Path) -> OnnxFile:
    return OnnxFile(file=path.name, sha256=sha256(path), bytes=path.stat().st_size)


def registration_metadata(model_dir: Path, max_length: int) -> dict[str, Any]:
    """Export into ``model_dir/onnx`` and return the metadata to store: ``onnx`` (the record) or ``onnx_error``.

    A failed export does not stop a registration: the version serves on PyTorch, and its metadata says why not ONNX.
    """
    try:
        record = export_verified(model_dir, model_dir / ONNX_DIR, max_length)
    except Exception as exc:
        log.warning("ONNX export of %s failed: %s: %s", model_dir.name, type(exc).__name__, exc)
        shutil.rmtree(model_dir / ONNX_DIR, ignore_errors=True)  # no unverified file stays with the version
        return {"onnx_error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"onnx": record.model_dump(mode="json")}


def open_stored(folder: Path, record: OnnxExport, backend: Backend, threads: int | None) -> OnnxForward:
    """The session for ``backend`` from an exported folder, after checking the file is the one that was verified."""
    described = record.fp32 if backend == "onnx" else record.int8
    path = folder / described.file
    if not path.is_file() or sha256(path) != described.sha256:
        raise OnnxUnavailable(f"{ONNX_DIR}/{described.file} is missing or is not the file that was verified")
    return OnnxForward(path, threads, per_text=backend != "onnx")


def open_onnx(
    model_dir: Path,
    stored: OnnxExport | None,
    max_length: int,
    backend: Backend,
    threads: int | None,
    cache: Path | None,
) -> OnnxForward:
    """The ONNX session a version serves from: its stored export, or (a version registered before exports were
    stored) one made now into ``cache``, which needs PyTorch."""
    if stored is not None:
        return open_stored(model_dir / ONNX_DIR, stored, backend, threads)
    if cache is None:
        raise ValueError(f"backend {backend} needs an onnx_cache folder for a version without a stored export")
    folder = cache / cache_key(model_dir)
    if not (folder / RECORD).is_file():
        try:
            import torch  # noqa: F401
        except ImportError:
            raise OnnxUnavailable(
                f"version {model_dir.name} has no stored ONNX export and PyTorch is not installed to make one: run "
                f"`sentiment-models export {model_dir.name}` where PyTorch is installed, then rebuild the image"
            ) from None
        log.info("no stored ONNX export in %s: exporting into %s", model_dir.name, folder)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache))  # two workers exporting at once never see half a folder
        try:
            export_verified(model_dir, tmp, max_length)
            if not (folder / RECORD).is_file():  # else another worker finished first, through the same check
                shutil.rmtree(folder, ignore_errors=True)  # files of an older exporter, never verified: replaced
                with contextlib.suppress(OSError):
                    os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return open_stored(folder, OnnxExport.model_validate_json((folder / RECORD).read_text()), backend, threads)


def cache_key(model_dir: Path) -> str:
    """Same weights and config -> same folder; a retrained model in the same folder gets a new one."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        p = model_dir / name
        if p.is_file():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
