"""What one BentoML runner call costs, on the client and on the server, apart from the work it carries.

Serves the rules runner on its own (``bentoml serve runners.rules:RulesRunner``), calls it one call at a time with
1 and then 16 texts through BentoML's own client (what the API's ``bentoml.depends`` proxy does, with the same
patches, ``sentiment.bentoml_patches``), and reads the CPU time of both sides: the difference between 1 and 16
texts is the work (the rules, serialising texts and answers), the rest is the hop itself (building and validating
the request, HTTP, routing, the answer's way back).

    .venv/bin/python -m experiments.hop_cost [--calls 400] [--out var/hop_cost.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psutil

from sentiment.bentoml_patches import apply_patches
from sentiment.procs import free_port, stop_group

REPO = Path(__file__).resolve().parent.parent
TEXT = "The strings arrived on time and sound warm, but the packaging was torn and one was missing."


def _tree_cpu_s(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


async def _measure(url: str, server_pid: int, width: int, calls: int) -> dict[str, float]:
    import bentoml

    apply_patches()  # the API process's client runs patched (the runner patches itself)
    texts = [TEXT] * width
    async with bentoml.AsyncHTTPClient(url) as client:
        for _ in range(20):  # connections, lazy imports, the first session
            await client.match(texts=texts)
        server0, client0, wall0 = _tree_cpu_s(server_pid), time.process_time(), time.perf_counter()
        for _ in range(calls):
            await client.match(texts=texts)
        wall = time.perf_counter() - wall0
        client_s, server_s = time.process_time() - client0, _tree_cpu_s(server_pid) - server0
    return {
        "texts_per_call": width,
        "client_cpu_ms_per_call": round(client_s * 1000 / calls, 3),
        "server_cpu_ms_per_call": round(server_s * 1000 / calls, 3),
        "wall_ms_per_call": round(wall * 1000 / calls, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=400)
    p.add_argument("--out", type=Path, help="JSON results (default: printed only)")
    args = p.parse_args(argv)
    port = free_port()
    bentoml_bin = str(Path(sys.executable).parent / "bentoml")
    log = tempfile.NamedTemporaryFile(prefix="hop-cost-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [bentoml_bin, "serve", "runners.rules:RulesRunner", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "BENTOML_DO_NOT_TRACK": "true"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(240):
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        rows = [asyncio.run(_measure(url, proc.pid, w, args.calls)) for w in (1, 16)]
    finally:
        stop_group(proc)
    one, many = rows
    per_text = {k: (many[k] - one[k]) / 15 for k in ("client_cpu_ms_per_call", "server_cpu_ms_per_call")}
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": os.getloadavg(),
        "http": "httptools" if find_spec("httptools") else "h11",
        "loop": "uvloop" if find_spec("uvloop") else "asyncio",
        "calls": rows,
        "fixed_ms_per_call": {k.replace("_per_call", ""): round(one[k] - per_text[k], 3) for k in per_text},
        "ms_per_extra_text": {k.replace("_per_call", ""): round(v, 3) for k, v in per_text.items()},
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
