"""Resource guard: under memory or CPU pressure, tier 1 is skipped and the rules answer (spec F4).

The spec's ``psutil.cpu_percent(interval=0.1)`` blocks every request for 100 ms. Instead a daemon thread samples
without blocking once a second and requests read the last values, so the guard costs nothing per request.
CPU is averaged over a few samples: one busy second is load, not pressure.

Whose CPU counts (``scope``): by default only processes outside this service's process tree (the ``bentoml serve``
arbiter and all its workers, or this process and its children outside BentoML). The service's own
inference saturates the cores by design under a burst, and that load is queued by the batcher; shedding it to
the rules would trade answers for nothing. A co-located process eating the machine is the pressure the spec
means. ``scope="system"`` counts everything (load shedding under any saturation).

``sampler`` returns the raw readings (psutil by default); tests pass fixed ones instead of loading the machine.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Literal, NamedTuple

import psutil
from pydantic import BaseModel


def _service_root() -> psutil.Process:
    """The topmost ancestor that is part of ``bentoml serve`` (workers are its children), else this process."""
    root = psutil.Process()
    try:
        parent = root.parent()
        while parent is not None and any("bentoml" in part for part in parent.cmdline()):
            root, parent = parent, parent.parent()
    except psutil.Error:
        pass
    return root


log = logging.getLogger(__name__)


class RawSample(NamedTuple):
    cpu_percent: float  # the whole machine
    own_cpu_percent: float  # this service's process tree, as a share of the whole machine
    memory_percent: float


class ResourceReading(BaseModel):
    memory_percent: float
    cpu_percent: float


class ResourceGuard:
    def __init__(
        self,
        max_memory_percent: float,
        max_cpu_percent: float,
        interval_s: float = 1.0,
        cpu_samples: int = 5,
        scope: Literal["others", "system"] = "others",
        sampler: Callable[[], RawSample] | None = None,
    ) -> None:
        self.max_memory_percent = max_memory_percent
        self.max_cpu_percent = max_cpu_percent
        self.interval_s = interval_s
        self.scope = scope
        self._root = _service_root()
        self._procs: dict[int, psutil.Process] = {}
        self._cpu: deque[float] = deque(maxlen=cpu_samples)
        self._memory = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampler = sampler or self._psutil_sample

    def _own_cpu_percent(self) -> float:
        """CPU of this service's process tree (API and runner workers), as a share of the whole machine."""
        total = 0.0
        alive: dict[int, psutil.Process] = {}
        try:
            tree = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            tree = [psutil.Process()]
        for proc in tree:
            try:
                known = self._procs.get(proc.pid, proc)  # the same object keeps cpu_percent's last reading
                total += known.cpu_percent(interval=None)
                alive[proc.pid] = known
            except psutil.Error:
                continue
        self._procs = alive
        return total / (psutil.cpu_count() or 1)

    def _psutil_sample(self) -> RawSample:
        cpu = psutil.cpu_percent(interval=None)
        own = self._own_cpu_percent() if self.scope == "others" else 0.0
        return RawSample(cpu, own, psutil.virtual_memory().percent)

    def _sample(self) -> None:
        raw = self._sampler()
        cpu = raw.cpu_percent
        if self.scope == "others":
            cpu = max(0.0, cpu - raw.own_cpu_percent)
        with self._lock:
            self._cpu.append(cpu)
            self._memory = raw.memory_percent

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> None:
        if self._thread is None:
            self._memory = self._sampler().memory_percent  # primes the CPU counters: first readings mean nothing
            log.info(
                "resource guard: CPU scope %s, service root pid %d (%s)",
                self.scope,
                self._root.pid,
                " ".join(self._root.cmdline()[:3]),
            )
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
            whose = "CPU used by other processes" if self.scope == "others" else "CPU"
            return f"{whose} {r.cpu_percent:.0f}% above {self.max_cpu_percent:.0f}%"
        return None
