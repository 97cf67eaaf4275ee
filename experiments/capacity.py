"""Capacity model: how many replicas of each service a sustained load needs, from the benchmark's measured CPU.

    python -m experiments.capacity                 # reports/benchmark.json -> reports/capacity.json, table on stdout
    python -m experiments.capacity --rate 833.3 --utilisation 0.75 --gpu-pod-workers 4

Measured (read from the files, so a new benchmark gives a new table): CPU milliseconds per answered request of
each process in the benchmark's steady phase (``service.steady_cpu_ms_per_request`` in ``--benchmark``), the whole
Bento's capacity at p95 <= 200 ms on its 2-core box (``service.capacity_rps_at_p95_200ms``), and the model's own
cost per text on one thread (``ms_per_text_1_thread`` of the backend in ``--backends``).

Arithmetic on those (CPU rows): a service needs ``rate x ms / 1000`` cores; a replica is one worker process, at most
one core busy, run at ``--utilisation`` (the HPA's CPU target in deploy/) so it has headroom. The per-request CPU
was measured at 50 req/s, where the runner calls carry few texts each; at higher rates batches grow and it can only
fall, so these counts are upper bounds for this code on this kind of core.

Projected, not measured (no GPU here): the transformer on GPU pods. The GPU side from arithmetic: the encoder's
FLOPs per review at ``--gpu-tokens`` tokens (every review padded to that length) over ``--gpu-tflops`` effective
FLOP/s. The CPU side of such a pod: what the transformer process spends per request besides the model (measured
transformer CPU per request minus the model's own measured cost per text), on ``--gpu-pod-workers`` processes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Seed 004: "50,000 posts per minute sustained".
SEED_004_RATE = 50_000 / 60
# The benchmark names each process by its BentoML service; the API process is the Bento's entry service.
SERVICES = {
    "review-sentiment": "API (entry service)",
    "api": "API (entry service)",
    "language": "language runner",
    "rules": "rules runner",
    "transformer": "transformer runner",
}
# Not counted: the circus arbiter (one per pod, idle), the load generator (the client) and the total.


def encoder_flops(layers: int, hidden: int, ffn: int, tokens: int) -> float:
    """Forward FLOPs of one sequence through a BERT-style encoder (2 per multiply-add): the projections and the
    feed-forward block on every token, plus attention's scores and weighted sum (quadratic in the length)."""
    dense = 2 * tokens * layers * (4 * hidden * hidden + 2 * hidden * ffn)
    attention = 2 * layers * 2 * tokens * tokens * hidden
    return float(dense + attention)


def cpu_rows(ms: dict[str, float], rate: float, utilisation: float) -> list[dict[str, Any]]:
    rows = []
    for proc in SERVICES:
        if proc not in ms:
            continue
        cost = ms[proc]
        cores = rate * cost / 1000.0
        rows.append(
            {
                "service": SERVICES[proc],
                "process": proc,
                "cpu_ms_per_request": cost,
                "rps_per_replica": round(1000.0 / cost * utilisation, 1) if cost else None,
                "cores_busy": round(cores, 2),
                "replicas": max(1, math.ceil(cores / utilisation)),
            }
        )
    return rows


def model(args: argparse.Namespace) -> dict[str, Any]:
    bench = json.loads(args.benchmark.read_text())
    svc = bench["service"]
    ms: dict[str, float] = svc["steady_cpu_ms_per_request"]
    backend = (svc.get("config") or {}).get("SENTIMENT_SERVICE__BACKEND", args.backend)
    model_ms = next(
        b["ms_per_text_1_thread"] for b in json.loads(args.backends.read_text())["backends"] if b["backend"] == backend
    )
    rate, util = args.rate, args.utilisation
    rows = cpu_rows(ms, rate, util)
    bento_ms = sum(r["cpu_ms_per_request"] for r in rows)
    capacity = svc.get("capacity_rps_at_p95_200ms")
    per_pod_cpu = 1000.0 / bento_ms * args.pod_cores * util

    flops = encoder_flops(args.layers, args.hidden, args.ffn, args.gpu_tokens)
    gpu_rps = args.gpu_tflops * 1e12 / flops
    side_ms = max(ms.get("transformer", 0.0) - model_ms, 0.0)
    side_rps = args.gpu_pod_workers * 1000.0 / side_ms if side_ms else math.inf
    gpu_pod_rps = min(gpu_rps, side_rps) * util
    gpu_pods = max(1, math.ceil(rate / gpu_pod_rps))
    cpu_others = [r for r in rows if r["process"] != "transformer"]
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rate_reviews_per_s": round(rate, 1),
        "utilisation": util,
        "measured": {
            "benchmark": str(
                args.benchmark.relative_to(REPO) if args.benchmark.is_relative_to(REPO) else args.benchmark
            ),
            "benchmark_when": bench.get("when"),
            "benchmark_machine": bench.get("machine"),
            "model_tag": bench.get("model_tag"),
            "backend": backend,
            "steady_phase": {k: (svc.get("steady") or {}).get(k) for k in ("name", "achieved_rps", "p95_ms")},
            "steady_cpu_ms_per_request": ms,
            "bento_capacity_rps_at_p95_200ms_on_2_cores": capacity,
            "model_ms_per_text_1_thread": model_ms,
            "model_ms_source": str(
                args.backends.relative_to(REPO) if args.backends.is_relative_to(REPO) else args.backends
            ),
        },
        "cpu": {
            "per_service": rows,
            "all_in_one": {
                "bento_cpu_ms_per_request": round(bento_ms, 2),
                "pod_cores": args.pod_cores,
                "pods_by_cpu": math.ceil(rate / per_pod_cpu),
                "pods_by_measured_capacity": math.ceil(rate / capacity) if capacity else None,
            },
        },
        "gpu_projected": {
            "assumptions": {
                "encoder": {"layers": args.layers, "hidden": args.hidden, "ffn": args.ffn},
                "tokens_per_review_padded": args.gpu_tokens,
                "effective_tflops": args.gpu_tflops,
                "workers_per_pod": args.gpu_pod_workers,
            },
            "gflop_per_review": round(flops / 1e9, 2),
            "gpu_reviews_per_s": round(gpu_rps),
            "pod_cpu_ms_per_request_besides_model": round(side_ms, 2),
            "pod_cpu_side_reviews_per_s": round(side_rps) if math.isfinite(side_rps) else None,
            "bound": "GPU" if gpu_rps <= side_rps else "the pod's CPU (runner protocol, not the model)",
            "pod_reviews_per_s_at_utilisation": round(gpu_pod_rps),
            "transformer_gpu_pods": gpu_pods,
            "cpu_replicas_beside_them": {r["process"]: r["replicas"] for r in cpu_others},
        },
    }


def table(report: dict[str, Any]) -> str:
    """The README's table (Markdown)."""
    m, cpu, gpu = report["measured"], report["cpu"], report["gpu_projected"]
    rate, util = report["rate_reviews_per_s"], report["utilisation"]
    side = gpu["pod_cpu_side_reviews_per_s"]
    # None when the transformer's measured CPU per request is at or below the model's own cost per text (e.g. a
    # steady phase where some answers were `overload` and never reached the model): no CPU-side bound is measured.
    side_text = f"{side:,} reviews/s" if side is not None else "no CPU-side bound measured"
    lines = [
        f"Load: {rate:,.1f} reviews/s (seed 004: 50,000/min), one request per review, every replica at "
        f"{util:.0%} CPU. Measured inputs: `{m['benchmark']}` ({m['benchmark_when']}, model `{m['model_tag']}`, "
        f"`{m['backend']}`), model alone {m['model_ms_per_text_1_thread']} ms per text (`{m['model_ms_source']}`).",
        "",
        "| service | CPU ms per request (measured) | reviews/s per 1-core replica at target | cores busy | replicas |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in cpu["per_service"]:
        lines.append(
            f"| {r['service']} | {r['cpu_ms_per_request']} | {r['rps_per_replica']} | {r['cores_busy']} | "
            f"**{r['replicas']}** |"
        )
    a = cpu["all_in_one"]
    total = sum(r["replicas"] for r in cpu["per_service"])
    lines += [
        f"| each service scaled on its own (all on CPU) | | | | **{total}** one-core replicas |",
        f"| whole Bento in one pod of {a['pod_cores']} cores | {a['bento_cpu_ms_per_request']} | | | "
        f"**{a['pods_by_cpu']}** pods by CPU; **{a['pods_by_measured_capacity']}** by the measured capacity "
        f"({m['bento_capacity_rps_at_p95_200ms_on_2_cores']} req/s at p95 <= 200 ms per 2 cores) |",
        "",
        "| transformer on GPU pods (projected) | figure |",
        "| --- | --- |",
        f"| encoder FLOPs per review, padded to {gpu['assumptions']['tokens_per_review_padded']} tokens "
        f"| {gpu['gflop_per_review']} GFLOP (arithmetic) |",
        f"| one GPU at {gpu['assumptions']['effective_tflops']} effective TFLOP/s | {gpu['gpu_reviews_per_s']:,} "
        "reviews/s (assumed rate) |",
        f"| the pod's CPU besides the model: transformer CPU minus the model's own (both measured) | "
        f"{gpu['pod_cpu_ms_per_request_besides_model']} ms per request, {gpu['assumptions']['workers_per_pod']} "
        f"workers = {side_text} |",
        f"| one pod at {util:.0%}, bound by {gpu['bound']} | {gpu['pod_reviews_per_s_at_utilisation']:,} reviews/s |",
        f"| **GPU transformer pods** | **{gpu['transformer_gpu_pods']}** of {gpu['assumptions']['workers_per_pod']} "
        "cores, beside one-core CPU replicas: "
        + ", ".join(f"{SERVICES[k]} {v}" for k, v in gpu["cpu_replicas_beside_them"].items())
        + " |",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", type=Path, default=REPO / "reports" / "benchmark.json")
    p.add_argument(
        "--backends",
        type=Path,
        default=REPO / "reports" / "model" / "backends.json",
        help="the model's own cost per text, by backend",
    )
    p.add_argument("--backend", default="onnx-int8", help="when the benchmark's config does not name one")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "capacity.json")
    p.add_argument("--rate", type=float, default=SEED_004_RATE, help="reviews per second to carry")
    p.add_argument("--utilisation", type=float, default=0.75, help="CPU target per replica (deploy/: the HPA's)")
    p.add_argument("--pod-cores", type=int, default=2, help="cores of an all-in-one pod (deploy/: limits.cpu)")
    g = p.add_argument_group("GPU projection (assumptions)")
    g.add_argument("--layers", type=int, default=6, help="encoder layers (all-MiniLM-L6-v2: 6)")
    g.add_argument("--hidden", type=int, default=384, help="hidden size (all-MiniLM-L6-v2: 384)")
    g.add_argument("--ffn", type=int, default=1536, help="feed-forward size (all-MiniLM-L6-v2: 1536)")
    g.add_argument("--gpu-tokens", type=int, default=256, help="tokens per review, padded (the full profile's max)")
    g.add_argument(
        "--gpu-tflops",
        type=float,
        default=8.0,
        help="effective FP16 TFLOP/s one GPU sustains on batches of short sequences (T4-class: ~12%% of its 65 peak)",
    )
    g.add_argument("--gpu-pod-workers", type=int, default=4, help="transformer worker processes (cores) per GPU pod")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = model(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
