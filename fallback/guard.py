"""Resource guard: under memory or CPU pressure, tier 1 is skipped and the rules answer (spec F4).

The spec's ``psutil.cpu_percent(interval=0.1)`` blocks every request for 100 ms. Instead a daemon thread samples
without blocking once a second and requests read the last values, so the guard costs nothing per request.
CPU is averaged over a few samples: one busy second is load, not pressure.
"""

from __future__ import annotations

import threading
from collections import deque

import psutil
from pydantic import BaseModel


class ResourceReading(BaseModel):
    memory_percent: float
    cpu_percent: float


class ResourceGuard:
    def __init__(
        self, max_memory_percent: float, max_cpu_percent: float, interval_s: float = 1.0, cpu_samples: int = 5
    ) -> None:
        self.max_memory_percent = max_memory_percent
        self.max_cpu_percent = max_cpu_percent
        self.interval_s = interval_s
        self._cpu: deque[float] = deque(maxlen=cpu_samples)
        self._memory = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _sample(self) -> None:
        cpu = psutil.cpu_percent(interval=None)
        mem = psutil.virtual_memory().percent
        with self._lock:
            self._cpu.append(cpu)
            self._memory = mem

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> None:
        if self._thread is None:
            psutil.cpu_percent(interval=None)  # primes the counter; the first reading is meaningless
            self._memory = psutil.virtual_memory().percent
            self._thread = threading.Thread(target=self._run, name="resource-guard", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def reading(self) -> ResourceReading:
        self.start()
        with self._lock:
            cpu = sum(self._cpu) / len(self._cpu) if self._cpu else 0.0
            return ResourceReading(memory_percent=self._memory, cpu_percent=cpu)

    def pressure(self) -> str | None:
        """A human-readable reason when a limit is exceeded, else None."""
        r = self.reading()
        if r.memory_percent > self.max_memory_percent:
            return f"memory {r.memory_percent:.0f}% above {self.max_memory_percent:.0f}%"
        if r.cpu_percent > self.max_cpu_percent:
            return f"CPU {r.cpu_percent:.0f}% above {self.max_cpu_percent:.0f}%"
        return None
