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
    guard = ResourceGuard(max_memory_percent=90.0, max_cpu_percent=95.0, interval_s=0.02, scope="system")
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


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _cpu_reading_while(burner_in_own_group: bool) -> float:
    """Average CPU the guard attributes to others while a busy-looping process runs."""
    import multiprocessing as mp
    import subprocess
    import sys

    guard = ResourceGuard(max_memory_percent=99.0, max_cpu_percent=95.0, interval_s=0.2, cpu_samples=5)
    if burner_in_own_group:
        proc = mp.get_context("spawn").Process(target=_burn, args=(3.0,))
        proc.start()
    else:  # an orphan (the shell exits at once): a co-located process outside this service's tree
        code = "import time\nend=time.monotonic()+3\nwhile time.monotonic()<end: pass"
        proc = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "{code}" &'])
    guard.start()
    time.sleep(2.0)
    reading = guard.reading().cpu_percent
    guard.stop()
    if burner_in_own_group:
        proc.join()
    else:
        proc.wait()
        time.sleep(1.2)  # let the orphan finish its 3 s
    return reading


def test_own_load_is_not_pressure_but_a_co_located_process_is():
    """One core busy-looping is 100/ncores % of the machine; only the foreign burner may show up as pressure."""
    share = 100.0 / (psutil.cpu_count() or 1)
    own = _cpu_reading_while(burner_in_own_group=True)
    foreign = _cpu_reading_while(burner_in_own_group=False)
    assert foreign > own + share * 0.4, (own, foreign)
