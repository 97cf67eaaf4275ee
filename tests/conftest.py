"""Fixtures every layer may use: isolated settings per test and a chain over them. Helpers that tests call
directly (stand-in model, fixed guard, data paths) are plain modules under ``tests/support/``.

Folders: ``unit`` (pure modules, no model, no server, no child processes that import the package: all fast),
``model`` (tier 1: data, training, calibration, ONNX), ``batch`` (Ray batch jobs), ``stress`` (racing writer
processes, hostile inputs up to 1 MB), ``drift``, ``dashboard`` (AppTest, and a real browser), ``deploy`` (rendered
manifests), ``http`` (real ``bentoml serve`` / ``bentoml build``).
"Slow" is marked one way: explicitly, ``pytestmark = pytest.mark.slow`` in a module or ``@pytest.mark.slow`` on a
test, wherever a test trains or serves a real model, starts processes that import the package, or takes seconds.
Fast stage: ``pytest -m "not slow"``; slow stage: ``pytest -m slow``.
Tests that read the shared review data request the ``shared_data`` fixture (directly, through a fixture, or with
``@pytest.mark.usefixtures("shared_data")``): without the data they skip locally and fail when ``CI`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fallback.chain import Chain
from sentiment.settings import Settings, load_settings
from tests.support.doubles import FixedGuard
from tests.support.shared_data import require_shared_data


@pytest.fixture(scope="session", autouse=True)
def _data_dir_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Settings built without explicit paths (and the processes tests start) write under a temporary data dir,
    never the checkout's ``var/``; tests that care set their own paths on top."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_PATHS__DATA_DIR", str(tmp_path_factory.mktemp("default_data_dir")))
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared review data folder; skips the test without it, fails it under CI (``tests/support/shared_data``)."""
    return require_shared_data(load_settings().paths.shared_data_dir, os.environ)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(paths={"data_dir": tmp_path / "var", "reports_dir": tmp_path / "reports"})


@pytest.fixture
def make_chain(settings: Settings):
    def _make(model=None, **kwargs) -> Chain:
        kwargs.setdefault("guard", FixedGuard())
        return Chain(settings, model, **kwargs)

    return _make
