"""Prove the `split` layout without Kubernetes: the transformer runner served alone, the rest pointed at its URL.

    BENTOML_HOME=/tmp/k8s-bentoml .venv/bin/python tools/verify_split.py            # from source
    BENTOML_HOME=/tmp/k8s-bentoml .venv/bin/python tools/verify_split.py \
        --bento --target review-sentiment-service:latest   # from a built Bento, as in the image

It runs exactly what the `split` overlay's containers run (the image's entrypoint turns `start-http-server ...`
into `python -m bentoml_cli._internal.start start-http-server ... $BENTO_PATH`):

    python -m bentoml_cli._internal.start start-http-server TARGET --service-name transformer --port T
    python -m bentoml_cli._internal.start start-http-server TARGET --depends transformer=http://127.0.0.1:T --port A

then checks that each server runs only its own services (by the workers' ``--service-name``), that ``/ready`` is
200 and ``POST /predict`` is answered by the model (``status: ok``), and records the request counters of ``/metrics``
and each server's resident memory (now and its peak, sampled every 0.25 s) and CPU. Both servers are stopped by
process group whatever happens. Prints one JSON object; exits 1 unless all of it held.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from sentiment.procs import free_port, stop_group

REPO = Path(__file__).resolve().parent.parent

TEXTS = [
    "These strings broke on the first day, total waste of money.",
    "Great value, the strings sound warm and bright and they arrived quickly.",
    "It works. Nothing special about it, but it does the job.",
]


def start(args: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bentoml_cli._internal.start", "start-http-server", *args]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )  # its own process group: stopped with every worker


def wait_200(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered 200")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not 200 after {timeout:.0f} s")


def group(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def served_services(procs: list[psutil.Process]) -> list[str]:
    """The ``--service-name`` of every BentoML worker process in a server's tree."""
    names = []
    for p in procs:
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if "_bentoml_impl.worker.service" in cmd and "--service-name" in cmd:
            names.append(cmd[cmd.index("--service-name") + 1])
    return sorted(names)


def usage(procs: list[psutil.Process]) -> dict[str, float]:
    rss = cpu = 0.0
    for p in procs:
        try:
            rss += p.memory_info().rss
            t = p.cpu_times()
            cpu += t.user + t.system
        except psutil.Error:
            pass
    return {"rss_mib": round(rss / 2**20, 1), "cpu_s": round(cpu, 2)}


class PeakRss(threading.Thread):
    """Largest summed RSS of each server's process tree, sampled every 0.25 s (model load and ONNX export included)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.peak: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            for name, proc in list(self.servers.items()):
                try:
                    rss = usage(group(proc))["rss_mib"]
                except psutil.Error:
                    continue
                self.peak[name] = max(self.peak.get(name, 0.0), rss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="service:SentimentService", help="import path (from source) or a Bento tag")
    ap.add_argument("--bento", action="store_true", help="--target is a Bento tag in the store (as in the image)")
    ap.add_argument("--requests", type=int, default=60, help="POST /predict calls after /ready (memory after load)")
    ap.add_argument("--timeout", type=float, default=240.0)
    args = ap.parse_args()
    if "BENTOML_HOME" not in os.environ:
        ap.error("set BENTOML_HOME to a model store that holds the model")
    work = Path(tempfile.mkdtemp(prefix="verify-split-"))
    source = [] if args.bento else ["--working-dir", str(REPO)]
    cwd = work if args.bento else REPO  # a Bento must not pick up this checkout's modules
    tport, aport = free_port(), free_port()
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    peak = PeakRss()
    peak.start()
    result: dict[str, Any] = {"target": args.target, "transformer_port": tport, "api_port": aport, "logs": str(work)}
    try:
        t_env = {**base_env, "SENTIMENT_PATHS__DATA_DIR": str(work / "data" / "transformer-0")}
        transformer = start(
            [args.target, *source, "--service-name", "transformer", "--host", "127.0.0.1", "--port", str(tport)],
            work / "transformer.log",
            t_env,
            cwd,
        )
        procs.append(transformer)
        peak.servers["transformer"] = transformer
        result["transformer_readyz_s"] = round(
            wait_200(f"http://127.0.0.1:{tport}/readyz", transformer, args.timeout), 1
        )
        a_env = {**base_env, "SENTIMENT_PATHS__DATA_DIR": str(work / "data" / "api-0")}
        api = start(
            [
                args.target,
                *source,
                "--depends",
                f"transformer=http://127.0.0.1:{tport}",
                "--host",
                "127.0.0.1",
                "--port",
                str(aport),
            ],
            work / "api.log",
            a_env,
            cwd,
        )
        procs.append(api)
        peak.servers["api"] = api
        result["api_ready_s"] = round(wait_200(f"http://127.0.0.1:{aport}/ready", api, args.timeout), 1)
        with httpx.Client(base_url=f"http://127.0.0.1:{aport}", timeout=60) as c:
            result["health"] = c.get("/health").status_code
            ready = c.get("/ready")
            result["ready"] = [ready.status_code, ready.json()]
            answers = [c.post("/predict", json={"text": TEXTS[i % len(TEXTS)]}).json() for i in range(args.requests)]
            result["predict_first"] = answers[0]
            statuses = [a["status"] for a in answers]
            result["predict_statuses"] = {s: statuses.count(s) for s in set(statuses)}
            result["model_info_backend"] = c.get("/model/info").json().get("backend")
            metrics = c.get("/metrics").text
            (work / "metrics.txt").write_text(metrics)
            result["metrics_request_total"] = [
                line for line in metrics.splitlines() if line.startswith("bentoml_service_request_total{")
            ]
            result["metrics_predictions_total"] = [
                line for line in metrics.splitlines() if line.startswith("sentiment_predictions_total{")
            ]
        result["transformer_services"] = served_services(group(transformer))
        result["api_services"] = served_services(group(api))
        result["transformer_usage"] = usage(group(transformer))
        result["api_usage"] = usage(group(api))
        result["peak_rss_mib"] = dict(peak.peak)
        result["ok"] = (
            result["ready"][0] == 200
            and result["predict_statuses"].get("ok", 0) == args.requests
            and result["transformer_services"] == ["transformer"]
            and "transformer" not in result["api_services"]
        )
    except Exception as exc:  # noqa: BLE001 - any failure is reported in the JSON, and the servers still stop
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["ok"] = False
    finally:
        peak.stop.set()
        for p in reversed(procs):
            stop_group(p)
        result["stopped"] = [p.poll() is not None for p in procs]
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
