"""Resource guard: readings come from a background sampler, so a request never waits on psutil.

The sampler is injected: each test feeds fixed raw readings and takes samples itself (``_sample``, what the
background thread does every ``interval_s``), so no test burns CPU, sleeps, or depends on the machine's load.
One smoke test runs the real psutil sampler over a real process tree.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable

import pytest

from fallback.guard import RawSample, ResourceGuard

NEVER = 3600.0  # interval_s that keeps the background thread from sampling during a test


class Feed:
    """Raw readings in order (the last one repeats), counting how often the guard asked."""

    def __init__(self, samples: Iterable[RawSample]) -> None:
        self.samples = list(samples)
        self.calls = 0

    def __call__(self) -> RawSample:
        sample = self.samples[min(self.calls, len(self.samples) - 1)]
        self.calls += 1
        return sample


def _guard(feed: Feed, **kwargs: object) -> ResourceGuard:
    kwargs = {"max_memory_percent": 90.0, "max_cpu_percent": 95.0, "interval_s": NEVER, **kwargs}
    return ResourceGuard(sampler=feed, **kwargs)  # type: ignore[arg-type]


def test_memory_pressure_is_seen_on_the_first_reading() -> None:
    guard = _guard(Feed([RawSample(cpu_percent=10.0, own_cpu_percent=0.0, memory_percent=97.0)]))
    assert guard.pressure() == "memory 97% above 90%"
    guard.stop()


def test_cpu_pressure_is_averaged_over_samples() -> None:
    quiet, busy = RawSample(10.0, 0.0, 10.0), RawSample(99.0, 0.0, 10.0)
    feed = Feed([quiet] + [quiet] * 5 + [busy] * 5 + [quiet] * 2)  # the first one primes the counters
    guard = _guard(feed, cpu_samples=5, scope="system")
    guard.start()
    seen = []
    for _ in range(12):
        guard._sample()
        seen.append(guard.pressure())
    guard.stop()
    assert seen[:9] == [None] * 9  # four busy samples of five average 81%: load, not pressure
    assert seen[9] == "CPU 99% above 95%"  # five in a row
    assert seen[10:] == [None] * 2  # one quiet sample ends it
    assert guard.reading().cpu_percent == pytest.approx((2 * 10.0 + 3 * 99.0) / 5)


def test_no_pressure_on_a_quiet_machine() -> None:
    guard = _guard(Feed([RawSample(20.0, 5.0, 30.0)]))
    guard.start()
    for _ in range(5):
        guard._sample()
    assert guard.pressure() is None and guard.reading().cpu_percent == pytest.approx(15.0)
    guard.stop()


def test_reading_does_not_sample() -> None:
    """Requests read the last values; only start() (once) and the background thread call the sampler."""
    feed = Feed([RawSample(50.0, 0.0, 30.0)])
    guard = _guard(feed)
    guard.start()
    assert feed.calls == 1
    for _ in range(100):
        guard.pressure()
    assert feed.calls == 1
    guard.stop()


def test_own_load_is_not_pressure_but_a_co_located_process_is() -> None:
    """The machine at 99%: all of it the service's own inference is no pressure; all of it someone else is."""
    own = [RawSample(cpu_percent=99.0, own_cpu_percent=99.0, memory_percent=10.0)]
    foreign = [RawSample(cpu_percent=99.0, own_cpu_percent=0.0, memory_percent=10.0)]
    for samples, scope, expected in [
        (own, "others", None),
        (foreign, "others", "CPU used by other processes 99% above 95%"),
        (own, "system", "CPU 99% above 95%"),
    ]:
        guard = _guard(Feed(samples), scope=scope)
        guard.start()
        for _ in range(5):
            guard._sample()
        assert guard.pressure() == expected, scope
        guard.stop()


def test_real_psutil_sampler_counts_its_children_as_own_and_an_orphan_as_foreign() -> None:
    """Smoke test of the default sampler: readings in range, and the process tree it attributes CPU to holds
    this process's child but not a process that left the tree (an orphan, re-parented when its shell exits)."""
    guard = ResourceGuard(max_memory_percent=100.0, max_cpu_percent=100.0, interval_s=NEVER)
    sleep = [sys.executable, "-c", "import time; time.sleep(30)"]
    child = subprocess.Popen(sleep)
    shell = subprocess.run(
        ["sh", "-c", '"$0" "$@" >/dev/null 2>&1 & echo $!', *sleep], capture_output=True, text=True, check=True
    )
    orphan = int(shell.stdout.strip())
    try:
        guard.start()
        guard._sample()
        reading = guard.reading()
        assert 0.0 <= reading.cpu_percent <= 100.0 and 0.0 < reading.memory_percent <= 100.0
        assert child.pid in guard._procs and orphan not in guard._procs
    finally:
        guard.stop()
        child.kill()
        child.wait()
        subprocess.run(["kill", str(orphan)], check=False)
