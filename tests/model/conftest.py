"""Fixtures for the tier-1 tests: an isolated BentoML model store, a trained MiniLM, a tiny random checkpoint.

The store fixture swaps BentoML's model-store singleton for a temporary one, so no test reads or writes
``~/bentoml`` whatever was imported first. ``trained_minilm`` is session-scoped here, so the real training runs
once per session whichever modules ask for it. The trained models request ``shared_data`` (their training reviews),
so every test built on them skips without the data locally and fails under CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sentiment.model.registry import resolve
from sentiment.settings import PathSettings, Settings, default_base_model
from tests.support.models import TrainedModel, isolated_store, small_config
from tests.support.tiny_model import build_tiny_checkpoint
from training.chain_view import chain_view
from training.pipeline import run


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh, empty BentoML model store for the duration of a test module."""
    with isolated_store(tmp_path_factory.mktemp("bentoml_home")) as home:
        yield home


def _train_minilm(tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> TrainedModel:
    """The real offline base fine-tuned on shared reviews in a store of its own, calibrated and registered."""
    cfg = small_config(default_base_model(), **overrides)
    with isolated_store(tmp_path_factory.mktemp("bentoml_home")):
        settings = Settings(paths=PathSettings(data_dir=tmp_path_factory.mktemp("var")))
        report = run(cfg, tmp_path_factory.mktemp("report"), settings, chain_view, log=lambda *_: None)
        assert report.tag is not None
        path, metadata, _ = resolve(report.tag)
    return TrainedModel(report, path, metadata)


@pytest.fixture(scope="session")
def trained_minilm(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> TrainedModel:
    """Fine-tuned on ~300 shared reviews (time split): ~1 min. Decisions tuned on validation, as the profiles do."""
    return _train_minilm(tmp_path_factory, max_train=320, lr=1e-4, epochs=2, decision_bias=True)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer, 32-dim DistilBERT (MiniLM tokenizer): proves any HF checkpoint trains, in seconds."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_distilbert"))
