"""Dashboard in a real browser: start ``sentiment-dashboard``, load each panel in headless Chromium, check that it
rendered with no exception box, and save a screenshot of each.

Screenshots go to the test's temporary folder, so a test run never changes the checkout. To refresh the ones the
README shows (``reports/dashboard/{overview-demo,queue-demo,drift,overview-real}.png``), run from the repository
root: ``SENTIMENT_TEST_SCREENSHOTS=reports/dashboard python -m pytest tests/dashboard/test_dashboard_browser.py``.

Chromium is driven over the DevTools protocol by :mod:`tools.dashboard_screenshot`.
Skipped, with the reason, where Chromium is not installed (``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard import demo
from dashboard.sources import sources_for
from sentiment.settings import load_settings

pytest.importorskip("websockets.sync.client", reason="websockets is needed to drive Chromium")
from sentiment.procs import stop_group  # noqa: E402
from tools.dashboard_screenshot import chromium, find_chromium  # noqa: E402 - needs websockets

CHROMIUM = os.environ.get("CHROMIUM") or find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"),
]

FIXTURES = Path(__file__).with_name("test_dashboard_data")
SHOTS_ENV = "SENTIMENT_TEST_SCREENSHOTS"  # a folder to save the screenshots in instead of the temporary one


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    demo.seed(sources_for(settings, demo=True), gate=settings.gates.confidence_gate, seed=7)

    script = Path(sys.executable).with_name("sentiment-dashboard")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "dashboard.cli"]
    port = _free_port()
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(
        [*cmd, "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
        stop_group(proc, timeout=10)
        log.close()


VIEWS = [  # (screenshot, query, heading, text that proves the panel shows the fixture or demo data)
    ("overview-demo", "panel=overview&source=demo", "Predictions overview", "Showing 200 records from"),
    ("queue-demo", "panel=queue&source=demo", "Human review queue", "Label in place"),
    ("drift", "panel=drift&source=real", "Drift report", "Drift detected in text_length, label_distribution"),
    ("overview-real", "panel=overview&source=real", "Predictions overview", "Showing 10 records from"),
]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get(SHOTS_ENV) or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_panel_renders_in_chromium_without_exceptions(dashboard_url: str, shots: Path) -> None:
    with chromium(str(CHROMIUM)) as browser:
        for name, query, heading, proof in VIEWS:
            t0 = time.perf_counter()
            state = browser.render(f"{dashboard_url}/?{query}", heading)
            assert state["exceptions"] == 0 and "Traceback" not in state["text"], f"{name}: exception on the page"
            assert proof in state["text"], f"{name}: expected {proof!r} on the page"
            if name.startswith("overview"):
                assert state["charts"] == 6  # confidence, status, reasons, OOV, labels, latency
            browser.screenshot(shots / f"{name}.png", height=state["height"] + 80)
            print(f"{name}: rendered in {time.perf_counter() - t0:.1f} s, {state['charts']} chart(s)")
            assert (shots / f"{name}.png").stat().st_size > 10_000
