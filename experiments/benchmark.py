"""Open-loop load test of the BentoML service against the naive FastAPI baseline, on loopback, real reviews.

Open loop: request i is sent at ``start + i / rate`` whether or not earlier ones have answered, and its latency
is counted from that scheduled time, so a server that falls behind shows it (no coordinated omission).

Phases, all in one run so the ratios compare like with like:
1. service: 50 req/s for 60 s (targets p50 < 90 ms, p95 < 200 ms), a ladder of rates to find its capacity at
   p95 <= 200 ms, then a 200 req/s burst for 10 s (target: zero errors, requests queue); the server is let to
   drain its backlog between phases;
2. baseline (experiments/naive_baseline.py, same model): the same ladder.
Results go to ``reports/benchmark.json`` and ``reports/benchmark.png``.

    .venv/bin/python experiments/benchmark.py                       # the full run (~6 min)
    .venv/bin/python experiments/benchmark.py --quick --only service --env SENTIMENT_SERVICE__MAX_BATCH_SIZE=16
    .venv/bin/python -m experiments.benchmark --quick --only service --steady-only   # one lever: CPU ms per request
    .venv/bin/python -m experiments.benchmark --device cuda       # GPU machines only (-> reports/benchmark_gpu.json)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console

from sentiment.jsonl import iter_records
from sentiment.model.aliases import AliasRegistry, require_serving_tag
from sentiment.procs import free_port, stop_group
from sentiment.settings import GateSettings, load_settings

REPO = Path(__file__).resolve().parent.parent

console = Console(width=140)
ENGLISH_SOURCES = (
    "amazon2014_musical_instruments_5core.jsonl",
    "amazon2018_fashion_5core.jsonl",
    "amazon_reviews_us_gift_card_sample.jsonl",
    "blitzer_multidomain_sentiment.jsonl",
    "uci_amazon_cells_labelled.jsonl",
)
P95_BOUND_MS = 200.0
LADDER = (10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250)


class Phase(BaseModel):
    name: str
    target_rps: float
    duration_s: float
    sent: int
    ok: int
    errors: int
    error_kinds: dict[str, int] = Field(default_factory=dict)
    achieved_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    answers: dict[str, int] = Field(default_factory=dict)  # status / reason code of the service's answers
    bound_ms: float = P95_BOUND_MS  # the p95 a step must hold
    texts_per_request: int = 1  # > 1: /predict_batch requests
    reviews_per_s: float = 0.0

    @property
    def model_share(self) -> float | None:
        """Share of answers the model gave in time: `overload` answers came from the rules because it could not."""
        return 1.0 - self.answers.get("fallback/overload", 0) / self.ok if self.ok else None

    @property
    def holds(self) -> bool:
        """Sustained: no errors, p95 within the bound, (almost) everything offered answered in time, and by the
        model (an overloaded service answering from the rules is fast but is not keeping up)."""
        return (
            self.errors == 0
            and self.p95_ms is not None
            and self.p95_ms <= self.bound_ms
            and self.achieved_rps >= 0.95 * self.target_rps
            and (self.model_share or 0.0) >= 0.99
        )


def load_texts(data_dir: Path, n: int, seed: int) -> list[str]:
    """Real English reviews from the shared data, shuffled; long ones stay in (they are what costs)."""
    texts: list[str] = []
    for name in ENGLISH_SOURCES:
        texts += [r["text"] for r in iter_records(data_dir / name) if isinstance(r.get("text"), str)]
    rng = random.Random(seed)
    rng.shuffle(texts)
    return texts[:n]


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


async def open_loop(
    url: str,
    texts: list[str],
    rate: float,
    duration: float,
    name: str,
    timeout: float = 30.0,
    batch: int = 0,
    bound_ms: float = P95_BOUND_MS,
) -> Phase:
    """``batch`` > 0: each request is a /predict_batch of that many texts (``url`` names that route)."""
    import aiohttp

    n = int(rate * duration)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    last_done = 0.0

    async def one(session: aiohttp.ClientSession, scheduled: float, i: int) -> None:
        nonlocal last_done
        body_json: dict[str, Any] = (
            {"texts": [texts[(i * batch + k) % len(texts)] for k in range(batch)]}
            if batch
            else {"text": texts[i % len(texts)]}
        )
        try:
            async with session.post(url, json=body_json, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                body = await r.read()
                if r.status != 200:
                    errors[f"http {r.status}"] += 1
                    return
                parsed = json.loads(body)
                for ans in parsed.get("predictions", [parsed]):
                    if "status" in ans:
                        code = ans["reason"].split(":", 1)[0] if ans["reason"] else ""
                        answers[f"{ans['status']}{'/' + code if code else ''}"] += 1
        except TimeoutError:
            errors["timeout"] += 1
            return
        except aiohttp.ClientError as exc:
            errors[type(exc).__name__] += 1
            return
        now = loop.time()
        latencies.append((now - scheduled) * 1000.0)
        last_done = max(last_done, now)

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = loop.time() + 0.05
        tasks = []
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, scheduled, i)))
        await asyncio.gather(*tasks)
    span = max(last_done - start, duration) if latencies else duration
    phase = Phase(
        name=name,
        target_rps=rate,
        duration_s=duration,
        sent=n,
        ok=len(latencies),
        errors=sum(errors.values()),
        error_kinds=dict(errors),
        achieved_rps=round(len(latencies) / span, 2),
        p50_ms=_pct(latencies, 0.50),
        p95_ms=_pct(latencies, 0.95),
        p99_ms=_pct(latencies, 0.99),
        max_ms=max(latencies) if latencies else None,
        answers=dict(answers.most_common()),
        bound_ms=bound_ms,
        texts_per_request=max(batch, 1),
        reviews_per_s=round(len(latencies) * max(batch, 1) / span, 1),
    )
    fmt = lambda v: f"{v:7.1f}" if v is not None else "    n/a"  # noqa: E731
    console.print(
        f"  {name:<28} {rate:6.0f} req/s x {duration:4.0f}s  achieved {phase.achieved_rps:6.1f}/s  "
        + (f"({phase.reviews_per_s:.0f} reviews/s)  " if batch else "")
        + f"p50 {fmt(phase.p50_ms)}  p95 {fmt(phase.p95_ms)}  p99 {fmt(phase.p99_ms)} ms  errors {phase.errors}"
        + ("" if phase.holds else "  [bold red]x[/]")
    )
    return phase


class Server:
    """A server process group on loopback; started, waited for, and stopped by its group id."""

    def __init__(self, cmd: list[str], env: dict[str, str], port: int, ready_path: str, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 300.0) -> float:
        import httpx

        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self._log.name}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=5).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.url}{self.ready_path} not ready after {timeout:.0f}s")

    def stop(self) -> None:
        stop_group(self.proc, timeout=30)
        self._log.close()


def bento_server(env: dict[str, str], port: int, log: Path) -> Server:
    """This repo's BentoML service on loopback, ready when ``/ready`` says so."""
    bentoml = str(Path(sys.executable).parent / "bentoml")
    return Server(
        [bentoml, "serve", "service:SentimentService", "--host", "127.0.0.1", "--port", str(port)],
        env,
        port,
        "/ready",
        log,
    )


async def _until(server: Server, check: Any, what: str, limit_s: float = 180.0) -> dict[str, Any]:
    """Poll /model/info until ``check`` holds for it."""
    import httpx

    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                info = (await client.get(server.url + "/model/info")).json()
                if check(info):
                    return dict(info)
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.25)
    raise RuntimeError(f"timed out waiting for {what}")


async def shadow_cost(server: Server, url: str, texts: list[str], challenger: str) -> dict[str, Any]:
    """p95 at 50 req/s without, then with a challenger shadowing (at the configured share), side by side."""
    registry = AliasRegistry(load_settings().model.name)
    off = await open_loop(url, texts, 50, 30, "50 req/s, no challenger")
    registry.promote("challenger", challenger, "benchmark: shadow cost")
    try:
        await _until(server, lambda i: i.get("challenger") == challenger, "the challenger to load")
        await settle(url)
        on = await open_loop(url, texts, 50, 30, "50 req/s, challenger shadowed")
    finally:
        registry.clear_challenger("benchmark: shadow cost measured", "experiments/benchmark.py")
    ratio = on.p95_ms / off.p95_ms if on.p95_ms and off.p95_ms else None
    console.print(f"  shadow on / off p95: {ratio:.2f}x" if ratio else "  shadow cost: n/a")
    return {"off": off.model_dump(), "on": on.model_dump(), "p95_ratio": ratio}


async def swap_under_load(server: Server, url: str, texts: list[str], other: str, data_dir: Path) -> dict[str, Any]:
    """30 req/s for 60 s: promote ``other`` after 10 s, roll back once it serves; errors and p99 across both swaps."""
    registry = AliasRegistry(load_settings().model.name)
    before = (await _until(server, lambda i: "tag" in i, "the model card"))["tag"]

    async def swaps() -> dict[str, float]:
        t0 = time.monotonic()
        await asyncio.sleep(10)
        registry.promote("champion", other, "benchmark: hot swap under load", force=True)
        await _until(server, lambda i: i.get("tag") == other, "the promotion to serve")
        promoted = time.monotonic() - t0
        await asyncio.sleep(5)
        registry.rollback("benchmark: hot swap measured")
        await _until(server, lambda i: i.get("tag") == before, "the rollback to serve")
        return {
            "promoted_serving_after_s": round(promoted, 1),
            "rolled_back_serving_after_s": round(time.monotonic() - t0, 1),
        }

    phase, when = await asyncio.gather(open_loop(url, texts, 30, 60, "30 req/s across two swaps"), swaps())
    tags = Counter(r.get("model_tag") for r in iter_records(data_dir / "predictions.jsonl"))
    non_contract = phase.ok - sum(phase.answers.values())
    console.print(f"  swap: errors {phase.errors}, non-contract {non_contract}, p99 {phase.p99_ms} ms, {when}")
    return {
        **phase.model_dump(),
        **when,
        "non_contract": non_contract,
        "from": before,
        "to": other,
        "records_by_version": {str(k): v for k, v in tags.items()},
    }


def server_processes(server: Any) -> list[tuple[str, Any]]:
    """Each live process of the server with its name: its BentoML service, or ``arbiter`` for the root (the whole
    naive endpoint)."""
    import psutil

    root = psutil.Process(server.proc.pid)
    out = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        out.append(
            (
                cmd[cmd.index("--service-name") + 1]
                if "--service-name" in cmd
                else "api"
                if proc != root
                else "arbiter",
                proc,
            )
        )
    return out


def cpu_seconds(server: Server) -> dict[str, float]:
    """CPU time so far of each process of the server (named by its BentoML service) and of this load generator."""
    import psutil

    out: dict[str, float] = {}
    for name, proc in server_processes(server):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[name] = out.get(name, 0.0) + times.user + times.system
    me = psutil.Process().cpu_times()
    out["load generator"] = me.user + me.system
    return out


def cpu_per_request(before: dict[str, float], after: dict[str, float], answered: int) -> dict[str, float]:
    """Milliseconds of CPU per answered request, by process: where a request's cost goes."""
    rows = {k: round((after[k] - before.get(k, 0.0)) * 1000.0 / max(answered, 1), 2) for k in after}
    rows["total"] = round(sum(rows.values()), 2)
    return rows


def pin_threads(proc: Any, cpus: set[int]) -> None:
    """Every thread of ``proc`` onto ``cpus``: sched_setaffinity on a pid moves only its main thread, and threads the
    others start later inherit their creator's set."""
    for t in proc.threads():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(t.id, cpus)


def pin(server: Any, layout: dict[str, set[int]]) -> dict[str, list[int]]:
    """Apply a taskset layout: ``client`` is this load generator, ``server`` every process of the server under test,
    any other key the processes of that name (``transformer``, ``language``, ...; names as in the CPU table), which
    win over ``server``. Returns each process's CPUs as read back."""
    import psutil

    if "client" in layout:
        pin_threads(psutil.Process(), layout["client"])
    seen: dict[str, list[int]] = {}
    for name, proc in server_processes(server):
        cpus = layout.get(name, layout.get("server"))
        if cpus is not None:
            pin_threads(proc, cpus)
        seen[name] = sorted(proc.cpu_affinity())
    unknown = set(layout) - {"client", "server", *seen}
    if unknown:
        raise SystemExit(f"--pin: no process named {sorted(unknown)}; names: {sorted(seen)}")
    return seen


def parse_layout(specs: list[str]) -> dict[str, set[int]]:
    """``NAME=CPUS`` pairs, CPUS as taskset writes them (``0``, ``0,1``, ``0-1``)."""
    layout: dict[str, set[int]] = {}
    for spec in specs:
        name, _, cpus = spec.partition("=")
        chosen: set[int] = set()
        for part in cpus.split(","):
            lo, _, hi = part.partition("-")
            chosen |= set(range(int(lo), int(hi or lo) + 1))
        if not name or not chosen <= os.sched_getaffinity(0):
            raise SystemExit(f"--pin {spec}: want NAME=CPUS with CPUS among {sorted(os.sched_getaffinity(0))}")
        layout[name] = chosen
    return layout


async def settle(url: str, quiet_ms: float = 300.0, limit_s: float = 120.0) -> None:
    """Wait until an overloaded server has worked off its backlog, so one phase does not bill the next."""
    import aiohttp

    deadline = time.monotonic() + limit_s
    fast = 0
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and fast < 3:  # three quick answers in a row: the queues are empty
            start = time.perf_counter()
            try:
                async with session.post(url, json={"text": "settling: is the queue empty yet?"}) as r:
                    await r.read()
            except aiohttp.ClientError:
                pass
            fast = fast + 1 if (time.perf_counter() - start) * 1000.0 < quiet_ms else 0
            await asyncio.sleep(1.0)


async def ladder(
    url: str,
    texts: list[str],
    step_s: float,
    name: str,
    rates: tuple[float, ...] = LADDER,
    batch: int = 0,
    bound_ms: float = P95_BOUND_MS,
) -> tuple[list[Phase], float]:
    """Raise the rate until the p95 bound breaks; capacity = best achieved rate among the steps that held."""
    steps: list[Phase] = []
    for rate in rates:
        phase = await open_loop(url, texts, rate, step_s, f"{name} ladder", batch=batch, bound_ms=bound_ms)
        steps.append(phase)
        if not phase.holds:
            break
        await settle(url)
    held = [p.achieved_rps for p in steps if p.holds]
    return steps, max(held) if held else 0.0


def service_env(data_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
    return {
        "SENTIMENT_PATHS__DATA_DIR": str(data_dir),
        # Every English review must reach the model: under load the CPU guard would hand texts to the rules and
        # flatter the throughput. The memory guard stays on.
        "SENTIMENT_GATES__MAX_CPU_PERCENT": "101",
        "BENTOML_DO_NOT_TRACK": "true",
        **overrides,
    }


async def run_service(args: argparse.Namespace, texts: list[str], tmp: Path) -> dict[str, Any]:
    port = free_port()
    env = service_env(tmp / "var", args.env)
    console.print(f"[bold]BentoML service[/] ({' '.join(f'{k}={v}' for k, v in args.env.items()) or 'defaults'})")
    server = bento_server(env, port, tmp / "service.log")
    try:
        startup = server.wait_ready()
        url = server.url + "/predict"
        pinned = pin(server, args.pin)
        await open_loop(url, texts, 20, 5 if args.quick else 10, "warm-up")
        out: dict[str, Any] = {"startup_s": round(startup, 1), "config": args.env}
        if args.pin:
            out["cpus"] = pinned
        if not args.ladder_only and not args.bursts_only:
            before = cpu_seconds(server)
            steady = await open_loop(
                url, texts, args.steady_rps, 20 if args.quick else 60, f"steady {args.steady_rps:.0f} req/s"
            )
            out["steady"] = steady.model_dump()
            out["steady_cpu_ms_per_request"] = cpu_per_request(before, cpu_seconds(server), steady.ok)
            console.print(f"  CPU ms per request: {out['steady_cpu_ms_per_request']}")
            await settle(url)
        if args.other_version and not args.bursts_only:
            out["shadow_cost"] = await shadow_cost(server, url, texts, args.other_version)
            await settle(url)
            out["swap"] = await swap_under_load(server, url, texts, args.other_version, tmp / "var")
            await settle(url)
        if not args.bursts_only and not args.steady_only:
            steps, cap = await ladder(url, texts, args.step_s, "service")
            out["ladder"] = [p.model_dump() for p in steps]
            out["capacity_rps_at_p95_200ms"] = cap
        if not args.ladder_only and not args.steady_only:
            out["bursts"] = []
            for rate in args.bursts:
                await settle(url)
                burst = await open_loop(url, texts, rate, args.burst_s, f"burst {rate:.0f} req/s", timeout=120)
                status_5xx = sum(n for kind, n in burst.error_kinds.items() if kind.startswith("http 5"))
                out["bursts"].append({**burst.model_dump(), "model_share": burst.model_share, "http_5xx": status_5xx})
                console.print(
                    f"    answered by the model: {burst.model_share:.1%}, HTTP 5xx: {status_5xx}"
                    if burst.model_share is not None
                    else "    nothing answered"
                )
        return out
    finally:
        server.stop()


async def run_baseline(args: argparse.Namespace, texts: list[str], tmp: Path, backend: str) -> dict[str, Any]:
    port = free_port()
    console.print(f"[bold]naive FastAPI baseline[/] on {backend} (one forward pass per request)")
    server = Server(
        [sys.executable, "-m", "experiments.naive_baseline", "--port", str(port), "--backend", backend],
        {"BENTOML_DO_NOT_TRACK": "true"},
        port,
        "/docs",
        tmp / f"baseline-{backend}.log",
    )
    try:
        startup = server.wait_ready()
        url = server.url + "/predict"
        # The naive endpoint is one process: it gets the CPUs of the whole service (``server``), not a service's.
        pinned = pin(server, {k: v for k, v in args.pin.items() if k in ("client", "server")})
        await open_loop(url, texts, 10, 5 if args.quick else 10, "warm-up")
        before = cpu_seconds(server)
        steps, cap = await ladder(url, texts, args.step_s, f"baseline {backend}")
        cpu = cpu_per_request(before, cpu_seconds(server), sum(p.ok for p in steps))
        console.print(f"  CPU ms per request over the ladder: {cpu}")
        return {
            "backend": backend,
            "startup_s": round(startup, 1),
            "ladder": [p.model_dump() for p in steps],
            "capacity_rps_at_p95_200ms": cap,
            "ladder_cpu_ms_per_request": cpu,
            **({"cpus": pinned} if args.pin else {}),
        }
    finally:
        server.stop()


GPU_SINGLE_LADDER = (100, 200, 400, 800, 1200, 1600, 2400, 3200)
GPU_BATCH_LADDER = (10, 25, 50, 100, 150, 200, 300)  # requests/s of --gpu-batch texts each
GPU_BATCH_P95_MS = 50.0  # issue 14's goal: >= 10,000 reviews/s through /predict_batch at p95 < 50 ms per request


def require_cuda() -> str:
    """The GPU's name, or a clear stop: this section needs a CUDA machine and never runs in CI."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(
            "--device cuda: no CUDA device here (torch.cuda.is_available() is False; torch "
            f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). The GPU section needs a machine with "
            "an NVIDIA GPU and a CUDA build of torch; it is never run in CI."
        )
    return str(torch.cuda.get_device_name(0))


def gpu_ceiling(texts: list[str], tag: str, batch_sizes: tuple[int, ...] = (32, 64, 128, 256)) -> list[dict[str, Any]]:
    """Reviews/s of the model alone on the GPU (tokenising included, no HTTP): what the service can approach."""
    from sentiment.model.inference import SentimentModel
    from sentiment.model.registry import resolve

    path, meta, full = resolve(tag)
    model = SentimentModel(path, meta, full, device="cuda")
    rows = []
    for bs in batch_sizes:
        model.predict_outputs(texts[: bs * 2], batch_size=bs)  # CUDA context, kernels, allocator
        start = time.perf_counter()
        model.predict_outputs(texts, batch_size=bs)  # returns numpy: the GPU has finished
        rate = len(texts) / (time.perf_counter() - start)
        rows.append({"batch_size": bs, "reviews_per_s": round(rate, 1)})
        console.print(f"  GPU only, batch {bs:4d}: {rate:9.0f} reviews/s")
    return rows


async def run_gpu(args: argparse.Namespace, texts: list[str], tmp: Path) -> dict[str, Any]:
    """The service with its transformer runner on the GPU: reviews/s through /predict and /predict_batch."""
    port = free_port()
    env = service_env(
        tmp / "var-gpu",
        {
            "SENTIMENT_SERVICE__DEVICE": "cuda",
            "SENTIMENT_SERVICE__BACKEND": "torch",
            "SENTIMENT_SERVICE__WORKERS": str(args.gpu_api_workers),
            # Calls carry many texts each and the GPU answers a padded batch at once: let batches be large.
            "SENTIMENT_SERVICE__MAX_BATCH_SIZE": "64",
            "SENTIMENT_SERVICE__COALESCE_MAX_TEXTS": "256",
            "SENTIMENT_SERVICE__COALESCE_GATHER_MS": "2",
            "SENTIMENT_MODEL__INFERENCE_BATCH_SIZE": "256",
            **args.env,
        },
    )
    console.print(f"[bold]BentoML service, transformer on the GPU[/] ({args.gpu_api_workers} API workers)")
    server = bento_server(env, port, tmp / "service-gpu.log")
    try:
        startup = server.wait_ready()
        await open_loop(server.url + "/predict", texts, 50, 5, "warm-up")
        single, single_cap = await ladder(
            server.url + "/predict", texts, args.step_s, "GPU /predict", GPU_SINGLE_LADDER
        )
        await settle(server.url + "/predict")
        batch, batch_cap = await ladder(
            server.url + "/predict_batch",
            texts,
            args.step_s,
            "GPU /predict_batch",
            GPU_BATCH_LADDER,
            batch=args.gpu_batch,
            bound_ms=GPU_BATCH_P95_MS,
        )
        best_batch = max((p.reviews_per_s for p in batch if p.holds), default=0.0)
        console.print(
            f"  through /predict: {single_cap:.0f} reviews/s at p95 <= {P95_BOUND_MS:.0f} ms; through "
            f"/predict_batch ({args.gpu_batch} texts): {best_batch:.0f} reviews/s at p95 <= "
            f"{GPU_BATCH_P95_MS:.0f} ms (goal 10,000)"
        )
        return {
            "startup_s": round(startup, 1),
            "api_workers": args.gpu_api_workers,
            "single": [p.model_dump() for p in single],
            "single_reviews_per_s": single_cap,
            "batch": [p.model_dump() for p in batch],
            "batch_texts_per_request": args.gpu_batch,
            "batch_reviews_per_s_at_p95_50ms": best_batch,
            "batch_capacity_rps": batch_cap,
        }
    finally:
        server.stop()


def component_costs(texts: list[str], tag: str, cache: Path, gates: GateSettings, n: int = 64) -> list[dict[str, Any]]:
    """Milliseconds per text of each piece of work, in this process (no HTTP): what the knobs buy."""
    from sentiment.language_id import detect_language, warm_up
    from sentiment.model.inference import SentimentModel
    from sentiment.preprocess import normalize

    sample = [normalize(t).text for t in texts[:n]]
    rows: list[dict[str, Any]] = []

    def timed(what: str, fn: Any, **cfg: Any) -> None:
        start = time.perf_counter()
        fn()
        ms = (time.perf_counter() - start) * 1000.0 / len(sample)
        rows.append({"what": what, **cfg, "ms_per_text": round(ms, 2)})
        console.print(f"  {what:<22} {json.dumps(cfg):<48} {ms:7.2f} ms/text")

    for backend in ("torch", "onnx", "onnx-int8"):
        for threads in (1, 2):
            model = SentimentModel.from_store(tag, num_threads=threads, backend=backend, onnx_cache=cache)
            model.predict_outputs(sample[:8])  # first call pays for lazy initialisation
            for bs in (1, 8, 32):
                timed(
                    "transformer",
                    functools.partial(model.predict_outputs, sample, batch_size=bs),
                    backend=model.backend,
                    threads=threads,
                    batch_size=bs,
                )
    warm_up()  # models and word lists load on first use; the runner does this at start-up
    timed("language gate", lambda: [detect_language(t, gates) for t in sample])
    from fallback.keywords import KeywordRules

    rules = KeywordRules()
    timed("keyword rules", lambda: [rules.match(t) for t in sample])
    return rows


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (
        ("service", "BentoML service (batched)"),
        ("baseline", "naive FastAPI, PyTorch (tutorial)"),
        ("baseline_like", "naive FastAPI, same backend as the service"),
    ):
        steps = report.get(key, {}).get("ladder", [])
        if steps:
            ax.plot(
                [s["target_rps"] for s in steps],
                [s["p95_ms"] or float("nan") for s in steps],
                marker="o",
                label=f"{label}: {report[key]['capacity_rps_at_p95_200ms']:.0f} req/s",
            )
    ax.axhline(P95_BOUND_MS, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("offered load (req/s, open loop)")
    ax.set_ylabel("p95 latency (ms)")
    ax.set_yscale("log")
    ax.set_title("Capacity at p95 <= 200 ms, real reviews, 2-core CPU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["service", "baseline", "none"])
    p.add_argument("--quick", action="store_true", help="shorter phases, for tuning")
    p.add_argument("--ladder-only", action="store_true", help="skip the steady and burst phases")
    p.add_argument("--step-s", type=float, default=10.0, help="seconds per ladder step")
    p.add_argument("--env", nargs="*", default=[], help="KEY=VALUE settings for the service (SENTIMENT_...)")
    p.add_argument("--texts", type=int, default=3000)
    p.add_argument("--out", type=Path, help="JSON report (default reports/benchmark.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--components", action="store_true", help="also time model/langdetect/rules per text in-process")
    p.add_argument("--bursts", type=float, nargs="*", default=[200.0, 400.0], help="burst rates (req/s)")
    p.add_argument("--burst-s", type=float, default=30.0, help="seconds per burst")
    p.add_argument("--bursts-only", action="store_true", help="only the bursts (overload behaviour)")
    p.add_argument(
        "--steady-only",
        action="store_true",
        help="only the steady phase: latency and CPU ms per request by process (one lever at a time)",
    )
    p.add_argument("--steady-rps", type=float, default=50.0, help="rate of the steady phase")
    p.add_argument("--other-version", help="a stored version to shadow, then to promote and roll back under load")
    p.add_argument(
        "--pin",
        nargs="*",
        default=[],
        metavar="NAME=CPUS",
        help="taskset layout: client=0 server=1 (every server process; the naive endpoints get the same), "
        "or per service: transformer=1 review-sentiment=0 language=0 rules=0 arbiter=0",
    )
    p.add_argument(
        "--baselines",
        nargs="*",
        choices=["torch", "like"],
        default=["torch", "like"],
        help="which naive endpoints the baseline phase runs",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: only the GPU section (model ceiling, then the service with its transformer on the GPU)",
    )
    p.add_argument("--gpu-api-workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) - 2)))
    p.add_argument("--gpu-batch", type=int, default=64, help="texts per /predict_batch request in the GPU section")
    args = p.parse_args(argv)
    args.env = dict(kv.split("=", 1) for kv in args.env)
    args.pin = parse_layout(args.pin)
    settings = load_settings()
    if args.device == "cuda":
        return gpu_main(args, settings)
    texts = load_texts(settings.paths.shared_data_dir, args.texts, args.seed)
    lengths = [len(t) for t in texts]
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "note": "shared 2-core box; client, service and baseline on loopback"},
        **({"layout": {k: sorted(v) for k, v in args.pin.items()}} if args.pin else {}),
        "model_tag": require_serving_tag(settings.model),
        "texts": {
            "n": len(texts),
            "sources": list(ENGLISH_SOURCES),
            "median_chars": statistics.median(lengths),
            "p95_chars": sorted(lengths)[int(0.95 * (len(lengths) - 1))],
        },
        "p95_bound_ms": P95_BOUND_MS,
    }
    if args.components:
        console.print("[bold]per-text cost of each component[/] (in-process, 64 real reviews)")
        tag = require_serving_tag(settings.model)
        report["components"] = component_costs(texts, tag, settings.paths.data_dir / "onnx", settings.gates)
    # Server logs and the service's own predictions log stay for inspection, away from the real var/ files.
    settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="benchmark-", dir=settings.paths.data_dir))
    console.print(f"server logs: {work}")
    if args.only in (None, "service"):
        report["service"] = asyncio.run(run_service(args, texts, work))
    if args.only in (None, "baseline"):
        # Two baselines in the same run: the tutorial one (PyTorch) and the like-for-like one (the service's own
        # backend), so that the ratio that matters compares the same model on the same runtime.
        if "torch" in args.baselines:
            report["baseline"] = asyncio.run(run_baseline(args, texts, work, "torch"))
        if settings.service.backend != "torch" and "like" in args.baselines:
            report["baseline_like"] = asyncio.run(run_baseline(args, texts, work, settings.service.backend))
    for key, ratio in (("baseline_like", "like_for_like_ratio"), ("baseline", "throughput_ratio")):
        if "service" in report and key in report and report[key]["capacity_rps_at_p95_200ms"]:
            report[ratio] = round(
                report["service"]["capacity_rps_at_p95_200ms"] / report[key]["capacity_rps_at_p95_200ms"], 2
            )
            console.print(f"[bold]capacity ratio service / {key} at p95 <= 200 ms: {report[ratio]}x")
    out = args.out or settings.paths.committed_reports_dir / "benchmark.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if args.only is None:
        plot(report, out.with_suffix(".png"))
    console.print(f"wrote {out}")
    return 0


def gpu_main(args: argparse.Namespace, settings: Any) -> int:
    """The GPU section on its own: it needs other settings (torch, large batches, more API workers)."""
    gpu = require_cuda()
    texts = load_texts(settings.paths.shared_data_dir, max(args.texts, 10_000), args.seed)
    tag = require_serving_tag(settings.model)
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": gpu,
        "cpus": os.cpu_count(),
        "model_tag": tag,
    }
    console.print(f"[bold]GPU section[/] on {gpu}, {os.cpu_count()} CPUs")
    report["gpu_only"] = gpu_ceiling(texts, tag)
    settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="benchmark-gpu-", dir=settings.paths.data_dir))
    report["service"] = asyncio.run(run_gpu(args, texts, work))
    out = args.out or settings.paths.committed_reports_dir / "benchmark_gpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
