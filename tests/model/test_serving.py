"""Hot swap in a serving process: the versions the aliases name are loaded, swapped and freed without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentiment.model.aliases import AliasRegistry
from sentiment.model.inference import SentimentModel
from sentiment.model.serving import ServingModels
from sentiment.settings import Settings, load_settings
from tests.support.models import isolated_store
from tests.support.tiny_model import register_tiny_model


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Settings, list[str]]]:
    with isolated_store(tmp_path / "home"):
        first = register_tiny_model(seed=0)  # the first version becomes champion
        second = register_tiny_model(seed=1)
        settings = load_settings(paths={"data_dir": tmp_path / "var"}, service={"backend": "torch"})
        yield settings, [first, second]


def test_promotion_and_rollback_swap_the_serving_version(store: tuple[Settings, list[str]]) -> None:
    settings, (first, second) = store
    models = ServingModels(settings)
    assert models.refresh() and models.champion is not None and models.champion.tag == first
    assert not models.refresh()  # nothing moved: nothing reloaded
    old = models.champion
    AliasRegistry(settings.model.name).promote("champion", second, "better on the gate", force=True)
    assert models.refresh()
    assert models.champion.tag == second and models.champion is not old
    out = models.champion.predict_outputs(["great strings, sound lovely"])[0]
    assert out.model_tag == second  # every answer names the version that gave it
    AliasRegistry(settings.model.name).rollback("regression seen in shadow")
    assert models.refresh() and models.champion.tag == first


def test_a_challenger_is_loaded_and_dropped_with_its_alias(store: tuple[Settings, list[str]]) -> None:
    settings, (first, second) = store
    models = ServingModels(settings)
    models.refresh()
    registry = AliasRegistry(settings.model.name)
    registry.promote("challenger", second, "retrained on human labels")
    assert models.refresh() and models.challenger is not None and models.challenger.tag == second
    assert models.champion is not None and models.champion.tag == first  # the champion still answers
    registry.clear_challenger("shadow done", "test")
    assert models.refresh() and models.challenger is None


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(store: tuple[Settings, list[str]]) -> None:
    settings, (first, second) = store
    real = ServingModels(settings).load

    def load(tag: str) -> SentimentModel:
        if tag == second:
            raise OSError("checkpoint truncated")
        return real(tag)

    models = ServingModels(settings, load)
    models.refresh()
    AliasRegistry(settings.model.name).promote("champion", second, "try it", force=True)
    assert not models.refresh()
    assert models.champion is not None and models.champion.tag == first


def test_a_pinned_version_is_never_swapped(store: tuple[Settings, list[str]]) -> None:
    settings, (first, second) = store
    pinned = settings.model_copy(update={"model": settings.model.model_copy(update={"tag": first})})
    models = ServingModels(pinned)
    models.refresh()
    registry = AliasRegistry(settings.model.name)
    registry.promote("champion", second, "elsewhere", force=True)
    registry.promote("challenger", first, "elsewhere")
    models.refresh()
    assert models.champion is not None and models.champion.tag == first and models.challenger is None


def test_an_empty_store_is_reported_not_left_loading(tmp_path: Path) -> None:
    with isolated_store(tmp_path / "home"):
        models = ServingModels(load_settings(paths={"data_dir": tmp_path / "var"}))
        models.refresh()
        assert models.champion is None and "is not in the model store" in models.error


def test_the_watch_freezes_the_heap_after_a_load_so_full_collections_skip_the_model(
    store: tuple[Settings, list[str]],
) -> None:
    import gc
    import threading

    settings, (first, _) = store
    models = ServingModels(settings)
    stop = threading.Event()
    gc.unfreeze()
    try:
        watch = threading.Thread(target=models.watch, args=(0.05, stop))
        watch.start()
        deadline = time.monotonic() + 30
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        watch.join()
        assert models.champion is not None and models.champion.tag == first
        assert gc.get_freeze_count() > 10_000  # the libraries and the model, frozen once the version loaded
    finally:
        gc.unfreeze()
