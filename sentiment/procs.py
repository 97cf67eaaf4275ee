"""Child servers on loopback (bentoml, uvicorn) for the benchmark and the HTTP tests: free ports, clean stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_group(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """Stop a server started with ``start_new_session=True`` and every worker it spawned, by its group id."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def worker_pids(arbiter_pid: int, service: str) -> list[int]:
    """PIDs of a ``bentoml serve`` arbiter's workers for one service (``--service-name NAME`` on their command line).

    BentoML 1.4 forks every worker straight from the arbiter, so its direct children are enough.
    """
    import psutil

    found = []
    try:
        children = psutil.Process(arbiter_pid).children()
    except psutil.NoSuchProcess:
        return []
    for child in children:
        try:
            argv = child.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if any(a == "--service-name" and b == service for a, b in zip(argv, argv[1:], strict=False)):
            found.append(child.pid)
    return sorted(found)
