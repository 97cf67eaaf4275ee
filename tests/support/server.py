"""A real `bentoml serve` of this checkout's service on a free port, for HTTP tests (tests/http)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sentiment.procs import free_port, stop_group
from tests.support import REPO

BENTOML = str(Path(sys.executable).parent / "bentoml")
START_TIMEOUT_S = 240


class Server:
    """A `bentoml serve` process group on a free port; stopped by killing its group."""

    def __init__(self, home: Path, data_dir: Path, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.home = home
        self.env = env
        full_env = {
            **os.environ,
            "BENTOML_HOME": str(home),
            "BENTOML_DO_NOT_TRACK": "true",
            "SENTIMENT_PATHS__DATA_DIR": str(data_dir),
            # CI load must not flip answers into resource_pressure; the guard has its own tests.
            "SENTIMENT_GATES__MAX_CPU_PERCENT": "101",
            **env,
        }
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [BENTOML, "serve", "service:SentimentService", "--port", str(self.port), "--host", "127.0.0.1"],
            cwd=REPO,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        key = env.get("TEST_API_KEY")
        auth = {"Authorization": f"Bearer {key}"} if key else None
        self.client = httpx.Client(base_url=self.url, timeout=60, headers=auth)

    def wait(self, path: str, status: int = 200, timeout: float = START_TIMEOUT_S) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: httpx.Response | None = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"
            try:
                last = self.client.get(path)
                if last.status_code == status:
                    return last
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{path} never answered {status} (last: {last and last.status_code})")

    def stop(self) -> None:
        self.client.close()
        stop_group(self.proc, timeout=20)
        self._log.close()
