"""Fixtures every layer may use: isolated settings per test and a chain over them. Helpers that tests call
directly (stand-in model, fixed guard, data paths) are plain modules under ``tests/support/``.

Layers: ``unit`` (pure modules, no model, no server), ``model`` (tier 1: data, training, calibration, ONNX),
``drift``, ``dashboard`` (AppTest, and a real browser), ``http`` (real ``bentoml serve`` / ``bentoml build``).
Everything in a folder named in ``SLOW_FOLDERS`` is marked ``slow``; elsewhere tests are marked one by one.
Fast stage: ``pytest -m "not slow"``.
"""

from __future__ import annotations

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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(paths={"data_dir": tmp_path / "var", "reports_dir": tmp_path / "reports"})


@pytest.fixture
def make_chain(settings: Settings):
    def _make(model=None, **kwargs) -> Chain:
        kwargs.setdefault("guard", FixedGuard())
        return Chain(settings, model, **kwargs)

    return _make
