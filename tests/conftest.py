"""Fixtures every layer may use: isolated settings per test and a chain over them. Helpers that tests call
directly (stand-in model, fixed guard, data paths) are plain modules under ``tests/support/``.

Layers: ``unit`` (pure modules, no model, no server), ``model`` (tier 1: data, training, calibration, ONNX),
``drift``, ``dashboard`` (AppTest, and a real browser), ``http`` (real ``bentoml serve`` / ``bentoml build``).
Everything in a folder named in ``SLOW_FOLDERS`` is marked ``slow``; elsewhere tests are marked one by one.
Fast stage: ``pytest -m "not slow"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fallback.chain import Chain
from sentiment.settings import Settings, load_settings
from tests.support.doubles import FixedGuard

SLOW_FOLDERS = {"http"}  # every test there starts real servers or builds a Bento
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(TESTS).parts if item.path.is_relative_to(TESTS) else ()
        if parts and parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _data_dir_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Settings built without explicit paths (and the processes tests start) write under a temporary data dir,
    never the checkout's ``var/``; tests that care set their own paths on top."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_PATHS__DATA_DIR", str(tmp_path_factory.mktemp("default_data_dir")))
        yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(paths={"data_dir": tmp_path / "var", "reports_dir": tmp_path / "reports"})


@pytest.fixture
def make_chain(settings: Settings):
    def _make(model=None, **kwargs) -> Chain:
        kwargs.setdefault("guard", FixedGuard())
        return Chain(settings, model, **kwargs)

    return _make
