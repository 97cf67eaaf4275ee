"""Fault drills against a real ``bentoml serve``, under a steady open-loop load of real reviews.

    python -m tools.chaos                          # every drill, tiny random model, report under <reports_dir>/chaos/
    python -m tools.chaos --drills a,c,f --output-dir reports/chaos
    python -m tools.chaos --bentoml-home ~/bentoml # a real trained model instead of the tiny one

Drills, one after another, each under the load and recovered from before the next:
  a/b/c/d  ``kill -9`` the transformer / language / rules / API worker (the arbiter respawns it),
  e        SIGSTOP the transformer worker for a few seconds, then SIGCONT (a hang, not a crash),
  f        the predictions log unwritable: ``predictions.jsonl`` swapped for a folder (chmod stops nothing as root),
  g        SIGTERM the arbiter with requests in flight: how many still get their answer, and how long exit takes.

Every request carries a unique token in its text and the server runs with ``SENTIMENT_SERVICE__LOG_TEXT=true``, so
each 200 answer is matched to its record in ``predictions.jsonl`` by that token: lost and doubled records are
counted per request, not estimated from counts (the service returns no request id).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sentiment.contract import LABELS
from sentiment.jsonl import ReadStats, iter_records
from sentiment.procs import free_port, stop_group, worker_pids
from sentiment.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
BENTOML = str(Path(sys.executable).parent / "bentoml")
SOURCES = (
    "amazon2014_musical_instruments_5core.jsonl",
    "amazon2018_fashion_5core.jsonl",
    "amazon_reviews_us_gift_card_sample.jsonl",
)
SERVICES = {"a": "transformer", "b": "language", "c": "rules", "d": "review-sentiment", "e": "transformer"}
TITLES = {
    "a": "kill -9 transformer",
    "b": "kill -9 language",
    "c": "kill -9 rules",
    "d": "kill -9 API worker",
    "e": "SIGSTOP transformer",
    "f": "log unwritable",
    "g": "SIGTERM arbiter",
}
TOKEN = re.compile(r"\bqz([a-z]{6})\b")
CONTRACT_KEYS = {"label", "confidence", "status", "reason"}


def token(seq: int) -> str:
    """A word no masker touches and no review contains: ``qz`` + the number in six letters."""
    letters = []
    for _ in range(6):
        seq, r = divmod(seq, 26)
        letters.append(chr(ord("a") + r))
    return "qz" + "".join(reversed(letters))


def contract_ok(body: Any) -> bool:
    """The four-field answer, every field within its range."""
    if not isinstance(body, dict) or set(body) != CONTRACT_KEYS:
        return False
    label, conf, status, reason = body["label"], body["confidence"], body["status"], body["reason"]
    return (
        (label is None or label in LABELS)
        and isinstance(conf, int | float)
        and 0.0 <= conf <= 1.0
        and status in ("ok", "fallback", "rejected")
        and isinstance(reason, str)
        and (reason == "") == (status == "ok")
    )


@dataclass
class Req:
    seq: int
    sent: float
    done: float | None = None
    code: int | None = None
    error: str = ""  # a transport error (connection refused or reset, timeout)
    contract: bool = False
    status: str = ""
    reason_code: str = ""


@dataclass
class Drill:
    key: str
    start: float = 0.0  # window: requests sent in [start, end) belong to this drill
    fault: float = 0.0
    end: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


class Harness:
    def __init__(self, url: str, texts: list[str], rate: float) -> None:
        self.url = url
        self.texts = texts
        self.rate = rate
        self.t0 = time.monotonic()
        self.reqs: list[Req] = []
        self.ready: list[tuple[float, str]] = []  # (t, "200" | "503" | "err"), transitions only
        self.health: list[tuple[float, str]] = []  # (t, "ok" | "degraded" | "err"), transitions only
        self.sending = True
        self.polling = True
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def load(self, client: httpx.AsyncClient, limit_s: float) -> None:
        """Open loop: request i goes out at t0 + i / rate whatever happened to the earlier ones."""
        start, i = self.now(), 0
        while self.sending and self.now() - start < limit_s:
            delay = start + i / self.rate - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.sending:
                break
            task = asyncio.create_task(self._one(client, i))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            i += 1

    async def _one(self, client: httpx.AsyncClient, seq: int) -> None:
        req = Req(seq=seq, sent=self.now())
        self.reqs.append(req)
        text = f"{token(seq)}. {self.texts[seq % len(self.texts)]}"
        try:
            r = await client.post("/predict", json={"text": text})
            req.code = r.status_code
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
            req.contract = r.status_code == 200 and contract_ok(body)
            if req.contract and isinstance(body, dict):
                req.status = body["status"]
                req.reason_code = body["reason"].split(":", 1)[0]
        except httpx.TimeoutException:
            req.error = "timeout"
        except httpx.TransportError as exc:
            req.error = type(exc).__name__
        except ValueError:  # a body that says JSON and is not
            req.contract = False
        req.done = self.now()

    async def drain(self, timeout: float = 40.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def poll(self, client: httpx.AsyncClient, limit_s: float, every: float = 0.25) -> None:
        start = self.now()
        while self.polling and self.now() - start < limit_s:
            t = self.now()
            for path, series in (("/ready", self.ready), ("/health", self.health)):
                try:
                    r = await client.get(path)
                    value = str(r.status_code) if path == "/ready" else str(r.json().get("status"))
                except (httpx.TransportError, ValueError):
                    value = "err"
                if not series or series[-1][1] != value:
                    series.append((t, value))
            await asyncio.sleep(max(0.0, every - (self.now() - t)))

    def ready_now(self) -> bool:
        return bool(self.ready) and self.ready[-1][1] == "200"

    def first_ok_after(self, t: float) -> float | None:
        oks = [r.done for r in self.reqs if r.sent >= t and r.status == "ok" and r.done is not None]
        return min(oks) if oks else None


# --- faults ---------------------------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE): no moment where the log path is missing, so
    no writer creates a stray file in between (the rename-then-mkdir way races with writers under load)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a))


def one_worker(arbiter: int, service: str) -> int:
    pids = worker_pids(arbiter, service)
    if not pids:
        raise RuntimeError(f"no {service} worker under arbiter {arbiter}")
    return pids[0]


async def wait_respawn(
    arbiter: int, service: str, old: int, limit_s: float, proc: subprocess.Popen[bytes]
) -> float | None:
    t = time.monotonic()
    while time.monotonic() - t < limit_s and proc.poll() is None:
        if any(p != old for p in worker_pids(arbiter, service)):
            return time.monotonic() - t
        await asyncio.sleep(0.1)
    return None


# --- the run --------------------------------------------------------------------------------------------------


def load_texts(data_dir: Path, n: int, seed: int) -> list[str]:
    texts = [
        r["text"]
        for name in SOURCES
        for r in iter_records(data_dir / name)
        if isinstance(r.get("text"), str) and 40 <= len(r["text"]) <= 2000
    ]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def register_tiny_model(home: Path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    subprocess.run(
        [sys.executable, "-m", "tests.support.tiny_model"], cwd=REPO, env=env, check=True, capture_output=True
    )


def start_server(home: Path, data_dir: Path, port: int, log: Path, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "SENTIMENT_PATHS__DATA_DIR": str(data_dir),
        "SENTIMENT_SERVICE__LOG_TEXT": "true",  # the token in each text ties an answer to its record
        "SENTIMENT_GATES__MAX_CPU_PERCENT": "101",  # other users of a shared box must not trigger resource_pressure
        **extra,
    }
    with open(log, "ab") as out:
        return subprocess.Popen(
            [BENTOML, "serve", "service:SentimentService", "--port", str(port), "--host", "127.0.0.1"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def wait_ready(url: str, proc: subprocess.Popen[bytes], limit_s: float) -> float:
    t = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=2) as c:
        while time.monotonic() - t < limit_s:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if (await c.get("/ready")).status_code == 200:
                    return time.monotonic() - t
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"/ready not 200 after {limit_s} s")


async def run_drill(
    h: Harness, d: Drill, proc: subprocess.Popen[bytes], data_dir: Path, args: argparse.Namespace
) -> None:
    arbiter = proc.pid
    d.start = h.now()
    await asyncio.sleep(args.pre_s)
    d.fault = h.now()
    if d.key in "abcd":
        service = SERVICES[d.key]
        pid = one_worker(arbiter, service)
        os.kill(pid, signal.SIGKILL)
        d.notes["respawn_s"] = await wait_respawn(arbiter, service, pid, args.recover_s, proc)
    elif d.key == "e":
        pid = one_worker(arbiter, "transformer")
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(args.hang_s)
        os.kill(pid, signal.SIGCONT)
        d.notes["stopped_s"] = args.hang_s
    elif d.key == "f":
        log, hole = data_dir / "predictions.jsonl", data_dir / "predictions.hole"
        hole.mkdir()
        exchange(log, hole)  # the log path is now a folder: every append fails, the records wait in memory
        await asyncio.sleep(args.hang_s)
        d.notes["health_during"] = sorted({v for t, v in h.health if t >= d.fault})
        exchange(log, hole)
        hole.rmdir()
    elif d.key == "g":
        await sigterm_drill(h, d, proc, args)
        d.end = h.now()
        return
    # Recovered: /ready 200 again, and a model answer (status ok) to a request sent after the fault.
    deadline = h.now() + args.recover_s
    while (
        h.now() < deadline
        and proc.poll() is None
        and not (h.ready_now() and h.first_ok_after(d.fault) is not None and h.now() - d.fault > 0.5)
    ):
        await asyncio.sleep(0.1)
    d.notes["recovered"] = h.ready_now() and h.first_ok_after(d.fault) is not None
    d.notes["server_alive"] = proc.poll() is None
    if not d.notes["server_alive"]:  # BENTOML_CONTAINERIZED: no respawn, the arbiter gives up
        h.sending = False
        d.notes["server_exit_code"] = proc.returncode
        d.notes["last_answer_after_s"] = max((r.done - d.fault for r in h.reqs if r.contract and r.done), default=None)
    await asyncio.sleep(args.settle_s)
    d.notes["health_after"] = h.health[-1][1] if h.health else None
    d.end = h.now()


async def sigterm_drill(h: Harness, d: Drill, proc: subprocess.Popen[bytes], args: argparse.Namespace) -> None:
    """A burst on top of the load, so that requests are surely in flight, then SIGTERM to the arbiter only."""
    client = httpx.AsyncClient(base_url=h.url, timeout=30, limits=httpx.Limits(max_connections=None))
    base = len(h.reqs)
    for i in range(args.burst):
        task = asyncio.create_task(h._one(client, 10_000_000 + i))
        h._tasks.add(task)
        task.add_done_callback(h._tasks.discard)
    await asyncio.sleep(0.05)
    d.fault = h.now()
    os.kill(proc.pid, signal.SIGTERM)
    h.sending = False  # only requests already sent count: the drain is about them
    in_flight = [r for r in h.reqs[:] if r.done is None]
    t = time.monotonic()
    exit_s = None
    while time.monotonic() - t < args.exit_limit_s:
        if proc.poll() is not None:
            exit_s = time.monotonic() - t
            break
        await asyncio.sleep(0.05)
    await h.drain(timeout=5)
    await client.aclose()
    d.notes.update(
        in_flight=len(in_flight),
        drained=sum(r.contract for r in in_flight),
        lost_in_flight=sum(not r.contract for r in in_flight),
        exit_s=exit_s,
        exit_code=proc.returncode,
        burst_base=base,
    )


def ledger(data_dir: Path) -> tuple[Counter[str], ReadStats]:
    """Records per token over the live log and its rotated pieces; ReadStats counts torn or corrupt lines."""
    stats = ReadStats()
    seen: Counter[str] = Counter()
    for path in sorted(data_dir.glob("predictions*.jsonl*")):
        if path.is_file():
            for rec in iter_records(path, stats):
                m = TOKEN.search(str(rec.get("text") or ""))
                if m:
                    seen["qz" + m.group(1)] += 1
    return seen, stats


def summarise(h: Harness, d: Drill, records: Counter[str]) -> dict[str, Any]:
    reqs = [r for r in h.reqs if d.start <= r.sent < d.end or (d.key == "g" and r.seq >= 10_000_000)]
    answered = [r for r in reqs if r.contract]
    in_flight_at_fault = [r for r in reqs if r.sent < d.fault and (r.done is None or r.done > d.fault)]
    transport = [r for r in reqs if r.error]
    non_contract = [r for r in reqs if r.done is not None and not r.error and not r.contract]
    lost = [r for r in answered if records[token(r.seq)] == 0]
    doubled = [r for r in answered if records[token(r.seq)] > 1]
    ready = [(round(t - d.fault, 2), v) for t, v in h.ready if d.start <= t < d.end]
    to_503 = next((t for t, v in ready if t >= 0 and v != "200"), None)
    back = next((t for t, v in ready if to_503 is not None and t > to_503 and v == "200"), None)
    first_ok = h.first_ok_after(d.fault)
    out = {
        "drill": d.key,
        "title": TITLES[d.key],
        "sent": len(reqs),
        "answered_200": len(answered),
        "non_contract": len(non_contract),
        "non_contract_codes": dict(Counter(str(r.code) for r in non_contract)),
        "transport_errors": len(transport),
        "transport_error_kinds": dict(Counter(r.error for r in transport)),
        "transport_errors_in_flight_at_fault": sum(1 for r in transport if r in in_flight_at_fault),
        "unanswered": sum(1 for r in reqs if r.done is None),
        "reasons": dict(
            Counter(
                f"{r.status}/{r.reason_code}" if r.reason_code else r.status
                for r in answered
                if r.done is not None and r.done >= d.fault
            ).most_common()
        ),
        "ready_timeline": ready,
        "ready_503_after_s": to_503,
        "ready_200_after_s": back,
        "first_ok_after_s": None if first_ok is None or d.key == "g" else round(first_ok - d.fault, 2),
        "records_lost": len(lost),
        "records_doubled": len(doubled),
        "health": [(round(t - d.fault, 2), v) for t, v in h.health if d.start <= t < d.end],
        **d.notes,
    }
    return out


def table(rows: list[dict[str, Any]], torn: int) -> str:
    def s(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)

    head = (
        "| drill | sent | non-contract | conn. errors | reasons after the fault | /ready 503 at | /ready 200 at "
        "| first `ok` at | lost / doubled records | notes |\n|---|---:|---:|---:|---|---:|---:|---:|---:|---|"
    )
    lines = [head]
    for r in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in r["reasons"].items() if k not in ("ok", "rejected")) or "-"
        notes = []
        if r.get("respawn_s") is not None:
            notes.append(f"respawned in {r['respawn_s']:.1f} s")
        if "health_during" in r:
            notes.append(f"/health during: {'/'.join(r['health_during'])}, after: {r.get('health_after')}")
        if r["drill"] == "g":
            notes.append(
                f"{r['drained']}/{r['in_flight']} in-flight answered, exit in {s(r['exit_s'])} s "
                f"(code {r['exit_code']})"
            )
        if r.get("recovered") is False:
            notes.append("NOT recovered" + ("" if r.get("server_alive") else ", server gone"))
        lines.append(
            f"| {r['drill']} {r['title']} | {r['sent']} | {r['non_contract']} | {r['transport_errors']} | {reasons} "
            f"| {s(r['ready_503_after_s'])} | {s(r['ready_200_after_s'])} | {s(r['first_ok_after_s'])} "
            f"| {r['records_lost']} / {r['records_doubled']} | {'; '.join(notes)} |"
        )
    lines.append(f"\nTorn or corrupt lines in predictions.jsonl: {torn}. Times in seconds from the fault.")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings()
    texts = load_texts(settings.paths.shared_data_dir, 3000, args.seed)
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    home = Path(args.bentoml_home) if args.bentoml_home else work / "bentoml"
    data_dir = work / "var"
    extra: dict[str, str] = {}
    if not args.bentoml_home:
        register_tiny_model(home)
        extra["SENTIMENT_GATES__CONFIDENCE_GATE"] = "0.34"  # the random model's answers are all "ok"
    if args.containerized:
        extra["BENTOML_CONTAINERIZED"] = "true"
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = work / "server.log"
    proc = start_server(home, data_dir, port, server_log, extra)
    rows: list[dict[str, Any]] = []
    try:
        startup_s = await wait_ready(url, proc, args.start_limit_s)
        print(f"server ready in {startup_s:.1f} s on {url} (log {server_log})", flush=True)
        h = Harness(url, texts, args.rate)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=50)
        async with (
            httpx.AsyncClient(base_url=url, timeout=args.timeout_s, limits=limits) as load_client,
            httpx.AsyncClient(base_url=url, timeout=1.0) as probe,
        ):
            budget = 600.0  # bounded whatever happens
            loader = asyncio.create_task(h.load(load_client, budget))
            poller = asyncio.create_task(h.poll(probe, budget))
            drills: list[Drill] = []
            for key in args.drills:
                d = Drill(key)
                print(f"drill {key}: {TITLES[key]}", flush=True)
                try:
                    await run_drill(h, d, proc, data_dir, args)
                except Exception as exc:  # report what broke instead of losing the run
                    d.notes["error"] = f"{type(exc).__name__}: {exc}"
                    d.end = h.now()
                drills.append(d)
                if proc.poll() is not None:
                    break
            h.sending = False
            await loader
            await h.drain()
            h.polling = False
            await poller
        if proc.poll() is None:
            stop_group(proc, timeout=30)  # flushes nothing the answers depend on; the ledger is read after
        records, stats = ledger(data_dir)
        rows = [summarise(h, d, records) for d in drills]
        tracked = {token(r.seq) for r in h.reqs}
        report = {
            "machine": {"cpus": os.cpu_count(), "note": "shared 2-core box; client and server on loopback"},
            "config": {
                "rate_rps": args.rate,
                "pre_s": args.pre_s,
                "settle_s": args.settle_s,
                "hang_s": args.hang_s,
                "model": "tiny random" if not args.bentoml_home else "from --bentoml-home",
                "containerized": args.containerized,
                "startup_s": round(startup_s, 1),
            },
            "drills": rows,
            "torn_lines": stats.skipped,
            "records_total": stats.records,
            "records_untracked": sum(v for k, v in records.items() if k not in tracked),
            "server_log": str(server_log),
        }
        return report
    finally:
        if proc.poll() is None:
            stop_group(proc, timeout=30)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
            if not args.bentoml_home:
                shutil.rmtree(home, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drills", default="a,b,c,d,e,f,g", help="comma-separated drill letters (g ends the run)")
    p.add_argument("--rate", type=float, default=20.0, help="open-loop requests per second")
    p.add_argument("--pre-s", type=float, default=3.0, help="load before each fault")
    p.add_argument("--settle-s", type=float, default=3.0, help="load after each recovery")
    p.add_argument("--hang-s", type=float, default=6.0, help="SIGSTOP length (e) and unwritable time (f)")
    p.add_argument("--recover-s", type=float, default=60.0, help="longest wait for recovery per drill")
    p.add_argument("--burst", type=int, default=40, help="extra concurrent requests just before the SIGTERM (g)")
    p.add_argument("--exit-limit-s", type=float, default=60.0)
    p.add_argument("--timeout-s", type=float, default=30.0, help="client timeout per request")
    p.add_argument("--start-limit-s", type=float, default=240.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--bentoml-home", help="serve the model in this BentoML home instead of a tiny random one")
    p.add_argument("--containerized", action="store_true", help="run with BENTOML_CONTAINERIZED=true")
    p.add_argument("--output-dir", type=Path, help="default: <reports_dir>/chaos")
    p.add_argument("--keep", action="store_true", help="keep the temporary store, data dir and server log")
    args = p.parse_args(argv)
    args.drills = [k.strip() for k in args.drills.split(",") if k.strip()]
    unknown = [k for k in args.drills if k not in TITLES]
    if unknown:
        p.error(f"unknown drills {unknown}; pick from {','.join(TITLES)}")
    if "g" in args.drills[:-1]:
        p.error("g stops the server: it can only be the last drill")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(main_async(args))
    md = table(report["drills"], report["torn_lines"])
    out = args.output_dir or load_settings().paths.reports_dir / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    name = "chaos-containerized" if args.containerized else "chaos"
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text(md + "\n")
    print(md)
    print(f"\nwritten: {out / (name + '.json')}, {out / (name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
