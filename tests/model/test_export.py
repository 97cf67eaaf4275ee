"""ONNX exported and verified at registration: the files and their record are stored with the version, serving
opens them without PyTorch and answers exactly as the normal ONNX path does, and a version registered before
exports were stored is exported at load where PyTorch is installed, refused with the fix where it is not, and
backfilled by ``sentiment-models export``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentiment.jsonl import iter_records
from sentiment.model import runtime
from sentiment.model.export import ONNX_DIR, RECORD, sha256
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import ModelMetadata, resolve
from sentiment.model.runtime import MAX_LOGIT_DIFF
from sentiment.model.tokens import Tokenizer
from tests.support.models import MUSIC, isolated_store
from tests.support.tiny_model import register_tiny_model

REPO = Path(__file__).resolve().parents[2]
NAME = "tiny-export"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with isolated_store(tmp_path / "bentoml") as h:
        yield h


@pytest.fixture(scope="module")
def reviews(shared_data: Path) -> list[str]:
    """A few hundred real English reviews (the shared musical-instruments file, its last ones)."""
    texts = [str(r["text"]) for r in iter_records(shared_data / MUSIC.name) if len(str(r.get("text") or "")) > 10]
    return texts[-300:]


def score(home: Path, tag: str, backend: str, cache: Path, texts: list[str], no_torch: bool) -> dict[str, Any]:
    """The model's answers from a fresh process (``no_torch``: one where torch and transformers cannot load)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.score_model",
            *(["--no-torch"] if no_torch else []),
            tag,
            backend,
            str(cache),
        ],
        input=json.dumps(texts),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"},
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_tokenizer_gives_the_ids_transformers_gives(reviews: list[str], tiny_checkpoint: Path) -> None:
    from transformers import AutoTokenizer

    ours, theirs = Tokenizer(tiny_checkpoint, 64), AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    for start in range(0, len(reviews), 32):
        batch = reviews[start : start + 32]
        expected = theirs(
            batch, truncation=True, max_length=64, padding=True, return_special_tokens_mask=True, return_tensors="np"
        )
        got = ours(batch)
        for key in expected:
            assert np.array_equal(got[key], expected[key]), key
    assert ours.unk_token_id == theirs.unk_token_id


def test_registration_stores_a_verified_export_that_serving_opens(home: Path, tmp_path: Path) -> None:
    tag = register_tiny_model(NAME)
    path, meta, _ = resolve(tag)
    assert meta.onnx is not None and meta.onnx_error == ""
    assert meta.onnx.max_logit_diff <= MAX_LOGIT_DIFF and meta.onnx.probes == 5
    for stored in (meta.onnx.fp32, meta.onnx.int8):
        assert sha256(path / ONNX_DIR / stored.file) == stored.sha256
    assert meta.onnx.int8.bytes < meta.onnx.fp32.bytes
    for backend in ("onnx", "onnx-int8"):
        model = SentimentModel(path, meta, tag, num_threads=1, backend=backend, onnx_cache=tmp_path / "cache")
        assert model.backend == backend and model.onnx is not None and model.model is None, model.backend_error
        assert model.onnx.path.parent == path / ONNX_DIR
    assert not (tmp_path / "cache").exists()  # nothing exported at load


def test_a_stored_file_that_is_not_the_verified_one_is_not_served(home: Path, tmp_path: Path) -> None:
    tag = register_tiny_model(NAME)
    path, meta, _ = resolve(tag)
    assert meta.onnx is not None
    int8 = path / ONNX_DIR / meta.onnx.int8.file
    int8.write_bytes((path / ONNX_DIR / meta.onnx.fp32.file).read_bytes())
    model = SentimentModel(path, meta, tag, num_threads=1, backend="onnx-int8", onnx_cache=tmp_path)
    assert model.backend == "torch" and "not the file that was verified" in model.backend_error


def test_a_failed_export_still_registers_the_version_which_serves_on_pytorch(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = runtime.OnnxForward.__call__
    monkeypatch.setattr(runtime.OnnxForward, "__call__", lambda self, enc: original(self, enc) + 0.5)  # a bad graph
    tag = register_tiny_model(NAME)
    path, meta, _ = resolve(tag)
    assert meta.onnx is None and "differs from PyTorch" in meta.onnx_error
    assert not (path / ONNX_DIR).exists()
    model = SentimentModel(path, meta, tag, num_threads=1, backend="onnx-int8", onnx_cache=tmp_path)
    assert model.backend == "torch" and "differs from PyTorch" in model.backend_error


@pytest.mark.slow  # subprocesses that import bentoml
def test_without_torch_the_stored_export_gives_the_normal_answers(
    home: Path, tmp_path: Path, reviews: list[str]
) -> None:
    tag = register_tiny_model(NAME)
    for backend in ("onnx-int8", "onnx"):
        normal = SentimentModel.from_store(tag, num_threads=1, backend=backend, onnx_cache=tmp_path)
        assert normal.backend == backend
        expected = normal.predict(reviews)
        assert (expected.std(axis=0) > 1e-3).all()  # the random model does tell the reviews apart
        got = score(home, tag, backend, tmp_path, reviews, no_torch=True)
        assert got.get("backend") == backend and got["imported"] == [], got.get("error")
        assert np.array_equal(np.array(got["probs"]), expected)


def register_legacy(checkpoint: Path) -> str:
    """A version saved as registration did before exports were stored: the checkpoint and metadata only."""
    import bentoml

    with bentoml.models.create(
        NAME, metadata=ModelMetadata(base_model="tiny").model_dump(mode="json", exclude_none=True)
    ) as ref:
        shutil.copytree(checkpoint, ref.path, dirs_exist_ok=True)
    return str(ref.tag)


@pytest.mark.slow  # subprocesses that import bentoml, and three exports
def test_a_version_without_a_stored_export(
    home: Path, tmp_path: Path, tiny_checkpoint: Path, reviews: list[str]
) -> None:
    tag = register_legacy(tiny_checkpoint)
    version = tag.split(":")[1]
    texts = reviews[:40]

    refused = score(home, tag, "onnx-int8", tmp_path / "a", texts, no_torch=True)
    assert refused["error"].startswith("OnnxUnavailable") and f"sentiment-models export {version}" in refused["error"]

    at_load = score(home, tag, "onnx-int8", tmp_path / "b", texts, no_torch=False)  # torch here: exported at load
    assert at_load.get("backend") == "onnx-int8", at_load
    assert len(list((tmp_path / "b").glob(f"*/{RECORD}"))) == 1

    cli = subprocess.run(
        [sys.executable, "-m", "scripts.models", "export", version, "--name", NAME, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"},
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["tag"] == tag
    _, meta, _ = resolve(tag)
    assert meta.onnx is not None and meta.onnx.max_logit_diff <= MAX_LOGIT_DIFF
    backfilled = score(home, tag, "onnx-int8", tmp_path / "c", texts, no_torch=True)
    assert backfilled.get("backend") == "onnx-int8", backfilled
    assert np.allclose(backfilled["probs"], at_load["probs"], atol=1e-6)
    assert not (tmp_path / "c").exists()
