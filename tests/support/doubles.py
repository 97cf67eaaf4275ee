"""Stand-ins for tier 1 and the resource guard, so unit tests decide what the model says and what load it sees."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fallback.guard import ResourceGuard, ResourceReading


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
