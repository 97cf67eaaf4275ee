"""Dashboard in a real browser: start ``sentiment-dashboard``, load each panel in headless Chromium, check that it
rendered with no exception box, and save the screenshots the README shows (``reports/dashboard/*.png``).

Chromium is driven over the DevTools protocol (a websocket), because Streamlit renders client-side over its own
websocket: ``chromium --screenshot`` alone captures the page before any panel exists.
Skipped, with the reason, where Chromium is not installed (``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard import demo
from dashboard.sources import sources_for
from sentiment.settings import REPO_ROOT, load_settings

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
ws_client = pytest.importorskip("websockets.sync.client", reason="websockets is needed to drive Chromium")

FIXTURES = Path(__file__).with_name("test_dashboard_data")
SHOTS = REPO_ROOT / "reports" / "dashboard"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WIDTH = 1400
PROBE = """JSON.stringify({
  headings: [...document.querySelectorAll('h2')].map(e => e.innerText),
  running: !!document.querySelector('[data-testid="stStatusWidget"]'),
  charts: document.querySelectorAll('.vega-embed').length,
  drawn: document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length,
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  text: document.body.innerText,
  height: (document.querySelector('[data-testid="stMain"]') || document.body).scrollHeight,
})"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevTools:
    """Just enough of the DevTools protocol over one page's websocket: navigate, evaluate, resize, screenshot."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:  # skip events until our answer arrives
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg["result"])

    def probe(self) -> dict[str, Any]:
        value = self.call("Runtime.evaluate", expression=PROBE, returnByValue=True)["result"].get("value")
        return json.loads(value) if value else {}

    def render(self, url: str, heading: str, timeout_s: float = 45) -> dict[str, Any]:
        """Open ``url`` and wait until Streamlit has finished the run and Vega has drawn every chart."""
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=1000, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        settled = 0
        while time.monotonic() < deadline:
            time.sleep(0.5)
            state = self.probe()
            done = heading in state.get("headings", []) and not state["running"] and state["drawn"] >= state["charts"]
            settled = settled + 1 if done else 0
            if settled >= 3 or state.get("exceptions"):
                return state
        raise TimeoutError(f"{url} did not finish rendering in {timeout_s:.0f} s: {self.probe().get('headings')}")

    def screenshot(self, path: Path, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height, deviceScaleFactor=1, mobile=False)
        time.sleep(1.0)  # let the page re-lay out at the new height
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def chromium(exe: str) -> Iterator[DevTools]:
    """Headless Chromium with a throwaway profile, stopped (by its own PID) on the way out."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [
                exe,
                *FLAGS,
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={WIDTH},1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chromium did not open its DevTools port")
                time.sleep(0.1)
            port = int(port_file.read_text().splitlines()[0])
            page = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
            with ws_client.connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
                yield DevTools(ws)
        finally:
            _stop(proc)


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    """``sentiment-dashboard`` on a free port over fixture files plus freshly seeded demo data."""
    env = {
        **os.environ,
        "SENTIMENT_PATHS__DATA_DIR": str(tmp_path / "data"),
        "SENTIMENT_PATHS__REPORTS_DIR": str(tmp_path / "reports"),
        "SENTIMENT_DASHBOARD__SERVICE_URL": "",
    }
    (tmp_path / "data").mkdir()
    (tmp_path / "reports").mkdir()
    for name in ("predictions.jsonl", "human_queue.jsonl", "human_labels.jsonl"):
        shutil.copy(FIXTURES / name, tmp_path / "data" / name)
    shutil.copy(FIXTURES / "drift.json", tmp_path / "reports" / "drift.json")
    settings = load_settings(paths={"data_dir": tmp_path / "data", "reports_dir": tmp_path / "reports"})
    demo.seed(sources_for(settings, demo=True), seed=7)

    script = Path(sys.executable).with_name("sentiment-dashboard")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "dashboard.cli"]
    port = _free_port()
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(
        [*cmd, "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"dashboard did not start: {(tmp_path / 'streamlit.log').read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        _stop(proc)
        log.close()


VIEWS = [  # (screenshot, query, heading, text that proves the panel shows the fixture or demo data)
    ("overview-demo", "panel=overview&source=demo", "Predictions overview", "Showing 200 records from"),
    ("queue-demo", "panel=queue&source=demo", "Human review queue", "Label in place"),
    ("drift", "panel=drift&source=real", "Drift report", "Drift detected in text_length, label_distribution"),
    ("overview-real", "panel=overview&source=real", "Predictions overview", "Showing 10 records from"),
]


def test_every_panel_renders_in_chromium_without_exceptions(dashboard_url: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium(str(CHROMIUM)) as browser:
        for name, query, heading, proof in VIEWS:
            t0 = time.perf_counter()
            state = browser.render(f"{dashboard_url}/?{query}", heading)
            assert state["exceptions"] == 0 and "Traceback" not in state["text"], f"{name}: exception on the page"
            assert proof in state["text"], f"{name}: expected {proof!r} on the page"
            if name.startswith("overview"):
                assert state["charts"] == 5
            browser.screenshot(SHOTS / f"{name}.png", height=state["height"] + 80)
            print(f"{name}: rendered in {time.perf_counter() - t0:.1f} s, {state['charts']} chart(s)")
            assert (SHOTS / f"{name}.png").stat().st_size > 10_000
