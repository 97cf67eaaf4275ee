"""Screenshots of dashboard panels from headless Chromium, for reports and the browser test.

Chromium is driven over the DevTools protocol (a websocket) because Streamlit renders client-side over its own
websocket: ``chromium --screenshot`` alone captures the page before any panel exists. Each page is waited for
until the script run is over and Vega has drawn every chart, then captured at its full height.

    python -m tools.dashboard_screenshot http://127.0.0.1:8501 reports/dashboard/live --panels overview queue drift
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from dashboard.panels import TITLES as HEADINGS
from sentiment.procs import stop_group

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


@contextlib.contextmanager
def chromium(exe: str) -> Iterator[DevTools]:
    """Headless Chromium with a throwaway profile, stopped with all its helper processes (by its process group) on
    the way out. Helpers still writing into the profile for a moment would fail its removal: that is ignored."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
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
            start_new_session=True,
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
            with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
                yield DevTools(ws)
        finally:
            stop_group(proc, timeout=10)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="where the dashboard runs, e.g. http://127.0.0.1:8501")
    p.add_argument("prefix", type=Path, help="output path prefix: <prefix>-<panel>.png")
    p.add_argument("--panels", nargs="+", choices=list(HEADINGS), default=list(HEADINGS))
    p.add_argument("--source", choices=["real", "demo"], default="real")
    args = p.parse_args(argv)
    exe = find_chromium()
    if exe is None:
        p.error("chromium not found (apt-get install chromium)")
    args.prefix.parent.mkdir(parents=True, exist_ok=True)
    with chromium(exe) as browser:
        for panel in args.panels:
            state = browser.render(f"{args.url.rstrip('/')}/?panel={panel}&source={args.source}", HEADINGS[panel])
            out = args.prefix.with_name(f"{args.prefix.name}-{panel}.png")
            browser.screenshot(out, height=state["height"] + 80)
            print(f"{out}: {state['charts']} chart(s), {state['exceptions']} exception(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
