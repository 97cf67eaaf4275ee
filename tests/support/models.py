"""What the tier-1 tests share besides fixtures: the shared datasets, a small training config, an isolated
BentoML model store. The fixtures built on them (``model_store``, ``trained_minilm``, ``tiny_checkpoint``) are in
``tests/model/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from sentiment.model.registry import ModelMetadata
from sentiment.settings import PathSettings
from training.config import TrainConfig
from training.pipeline import Report

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


class TrainedModel(NamedTuple):
    report: Report
    path: Path
    metadata: ModelMetadata


def small_config(base_model: str, **overrides: object) -> TrainConfig:
    """A few hundred real reviews (Amazon by time, Flipkart at random), sized to train in about a minute."""
    values: dict[str, object] = dict(
        profile="test",
        base_model=base_model,
        data=[MUSIC, BLITZER, FLIPKART],
        binary_eval=[],
        max_train=300,
        max_val=120,
        max_test_per_source=80,
        max_length=64,
        batch_size=16,
        epochs=1,
        lr=5e-5,
        eval_every=10,
        patience=3,
        num_threads=2,
        seed=7,
        name="test-sentiment",
    )
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]
