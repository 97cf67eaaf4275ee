"""The benchmark's taskset layouts pin every thread of the processes they name, not only each main thread, and a
name that matches no process stops the run instead of measuring an unpinned layout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

from experiments.benchmark import parse_layout, pin

# A parent with a thread and a child that looks like a BentoML worker of the ``transformer`` service.
CHILD = "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); time.sleep(60)"
PARENT = (
    f"import subprocess, sys, threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); "
    f"subprocess.Popen([sys.executable, '-c', {CHILD!r}, '--service-name', 'transformer']); time.sleep(60)"
)


@pytest.fixture
def tree() -> object:
    proc = subprocess.Popen([sys.executable, "-c", PARENT], start_new_session=True)
    root = psutil.Process(proc.pid)
    deadline = time.monotonic() + 20
    while not (len(root.children()) == 1 and root.children()[0].num_threads() >= 2 and root.num_threads() >= 2):
        assert time.monotonic() < deadline, "the test's process tree did not start"
        time.sleep(0.05)
    yield SimpleNamespace(proc=proc)
    os.killpg(proc.pid, 9)
    proc.wait()


def threads_cpus(proc: psutil.Process) -> set[frozenset[int]]:
    return {frozenset(os.sched_getaffinity(t.id)) for t in proc.threads()}


def test_a_layout_pins_every_thread_and_per_service_names_win_over_server(tree: SimpleNamespace) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    first, last = {cpus[0]}, {cpus[-1]}
    seen = pin(tree, parse_layout([f"server={cpus[0]}", f"transformer={cpus[-1]}"]))
    root = psutil.Process(tree.proc.pid)
    assert threads_cpus(root) == {frozenset(first)}
    assert threads_cpus(root.children()[0]) == {frozenset(last)}
    assert seen == {"arbiter": sorted(first), "transformer": sorted(last)}


def test_a_name_that_matches_no_process_stops_the_run(tree: SimpleNamespace) -> None:
    with pytest.raises(SystemExit, match="no process named"):
        pin(tree, parse_layout(["langauge=0"]))


def test_layouts_parse_like_taskset_and_refuse_cpus_this_machine_lacks() -> None:
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    assert parse_layout(["server=0-1", "client=0"]) == {"server": {0, 1}, "client": {0}}
    assert parse_layout(["server=0,1"]) == {"server": {0, 1}}
    with pytest.raises(SystemExit, match="want NAME=CPUS"):
        parse_layout([f"server={max(os.sched_getaffinity(0)) + 1}"])
