"""Fixtures for the tier-1 tests: an isolated BentoML model store, a trained MiniLM, small real datasets.

Imported by ``tests/test_model*.py`` (``from tests.model_fixtures import ...``) rather than living in conftest.py.
The store fixture swaps BentoML's model-store singleton for a temporary one, so no test reads or writes
``~/bentoml`` whatever was imported first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

from sentiment.model.config import TrainConfig
from sentiment.model.pipeline import Report, run
from sentiment.model.registry import ModelMetadata, resolve
from fallback.evaluate import chain_view
from sentiment.settings import PathSettings, Settings, default_base_model
from tests.tiny_model import build_tiny_checkpoint

SHARED = PathSettings().shared_data_dir
MUSIC = SHARED / "amazon2014_musical_instruments_5core.jsonl"
BLITZER = SHARED / "blitzer_multidomain_sentiment.jsonl"
# Flipkart's random validation slice gives the small validation set enough negatives to select a checkpoint on.
FLIPKART = SHARED / "flipkart_product_reviews.jsonl.gz"


@contextmanager
def isolated_store(home: Path) -> Iterator[Path]:
    """Point BentoML's model-store singleton at ``home/models`` and restore whatever was there before."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    with BentoMLContainer.model_store.patch(ModelStore(str(home / "models"))):
        yield home


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh, empty BentoML model store for the duration of a test module."""
    with isolated_store(tmp_path_factory.mktemp("bentoml_home")) as home:
        yield home


class TrainedModel(NamedTuple):
    report: Report
    path: Path
    metadata: ModelMetadata


_TRAINED: list[TrainedModel] = []


@pytest.fixture(scope="session")
def trained_minilm(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """The real offline base fine-tuned on ~300 shared reviews (time split), calibrated, registered: ~1 min.

    Imported into several test modules, pytest would build it once per module; the module-level cache makes
    it once per session.
    """
    if not _TRAINED:
        cfg = small_config(default_base_model(), max_train=320, lr=1e-4, epochs=2)
        with isolated_store(tmp_path_factory.mktemp("bentoml_home")):
            settings = Settings(paths=PathSettings(data_dir=tmp_path_factory.mktemp("var")))
            report = run(cfg, tmp_path_factory.mktemp("report"), settings, chain_view, log=lambda *_: None)
            assert report.tag is not None
            path, metadata, _ = resolve(report.tag)
        _TRAINED.append(TrainedModel(report, path, metadata))
    return _TRAINED[0]


_BEHAVIOUR: list[TrainedModel] = []


@pytest.fixture(scope="session")
def behaviour_minilm(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """MiniLM fine-tuned on ~1,000 shared reviews (1 epoch, 63 steps: ~2 min on an idle 2-core box), for the
    behaviour tests: the 320-review ``trained_minilm`` calls "This is not good." positive."""
    if not _BEHAVIOUR:
        cfg = small_config(default_base_model(), max_train=1000, max_val=200, lr=1e-4, eval_every=21)
        with isolated_store(tmp_path_factory.mktemp("bentoml_home")):
            settings = Settings(paths=PathSettings(data_dir=tmp_path_factory.mktemp("var")))
            report = run(cfg, tmp_path_factory.mktemp("report"), settings, chain_view, log=lambda *_: None)
            assert report.tag is not None
            path, metadata, _ = resolve(report.tag)
        _BEHAVIOUR.append(TrainedModel(report, path, metadata))
    return _BEHAVIOUR[0]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer, 32-dim DistilBERT (MiniLM tokenizer): proves any HF checkpoint trains, in seconds."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_distilbert"))


def small_config(base_model: str, **overrides: object) -> TrainConfig:
    """A few hundred real reviews (Amazon by time, Flipkart at random), sized to train in about a minute."""
    values: dict[str, object] = dict(
        profile="test", base_model=base_model, data=[MUSIC, BLITZER, FLIPKART], binary_eval=[], max_train=300,
        max_val=120, max_test_per_source=80, max_length=64, batch_size=16, epochs=1, lr=5e-5, eval_every=10,
        patience=3, num_threads=2, seed=7, name="test-sentiment",
    )
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]
