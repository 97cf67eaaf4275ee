"""Shared fixtures: isolated settings per test, and a stand-in tier-1 model for the unit layer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from fallback.chain import Chain
from fallback.guard import ResourceGuard, ResourceReading
from sentiment.settings import Settings, load_settings


class StandInModel:
    """Deterministic tier 1 for unit tests: probabilities chosen per text by the test."""

    def __init__(self, table: dict[str, Sequence[float]] | None = None, default: Sequence[float] = (0.1, 0.1, 0.8)):
        self.table = table or {}
        self.default = default
        self.calls: list[list[str]] = []

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([self.table.get(t, self.default) for t in texts], dtype=float)


class FixedGuard(ResourceGuard):
    """A guard reading a fixed machine state, so CI load never flips a unit test into resource_pressure."""

    def __init__(self, memory: float = 40.0, cpu: float = 10.0) -> None:
        super().__init__(max_memory_percent=90.0, max_cpu_percent=95.0)
        self.fixed = ResourceReading(memory_percent=memory, cpu_percent=cpu)

    def reading(self) -> ResourceReading:
        return self.fixed


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(paths={"data_dir": tmp_path / "var", "reports_dir": tmp_path / "reports"})


@pytest.fixture
def make_chain(settings: Settings):
    def _make(model=None, **kwargs) -> Chain:
        kwargs.setdefault("guard", FixedGuard())
        return Chain(settings, model, **kwargs)

    return _make
