"""Resource guard: readings come from a background sampler, so a request never waits on psutil."""

from __future__ import annotations

import time
from types import SimpleNamespace

import psutil

from fallback.guard import ResourceGuard


def test_memory_pressure_via_patched_reading(monkeypatch):
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(percent=97.0))
    guard = ResourceGuard(max_memory_percent=90.0, max_cpu_percent=95.0, interval_s=0.05)
    assert guard.pressure() == "memory 97% above 90%"
    guard.stop()


def test_cpu_pressure_is_averaged_over_samples(monkeypatch):
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(percent=10.0))
    readings = iter([99.0] * 1000)
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: next(readings))
    guard = ResourceGuard(max_memory_percent=90.0, max_cpu_percent=95.0, interval_s=0.02)
    guard.start()
    deadline = time.monotonic() + 5
    while guard.pressure() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert guard.pressure() == "CPU 99% above 95%"
    guard.stop()


def test_no_pressure_on_a_quiet_machine(monkeypatch):
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(percent=30.0))
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: 20.0)
    guard = ResourceGuard(max_memory_percent=90.0, max_cpu_percent=95.0, interval_s=0.02)
    time.sleep(0.1)
    assert guard.pressure() is None
    guard.stop()


def test_reading_does_not_block(monkeypatch):
    def slow_cpu_percent(interval=None):
        time.sleep(0.5)  # what interval=0.1 style blocking would cost, exaggerated
        return 50.0

    monkeypatch.setattr(psutil, "cpu_percent", slow_cpu_percent)
    guard = ResourceGuard(max_memory_percent=90.0, max_cpu_percent=95.0, interval_s=0.01)
    guard._thread = object()  # type: ignore[assignment]  # pretend the sampler runs; we time only the read path
    start = time.perf_counter()
    for _ in range(100):
        guard.pressure()
    assert time.perf_counter() - start < 0.25
