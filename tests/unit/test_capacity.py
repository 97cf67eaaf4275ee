"""The capacity model (experiments/capacity.py): replica counts follow the benchmark's figures, whatever they are."""

from __future__ import annotations

import json
from pathlib import Path

from experiments import capacity


def _inputs(tmp_path: Path, ms: dict[str, float], model_ms: float = 6.0) -> list[str]:
    bench = {
        "when": "then",
        "model_tag": "m:1",
        "service": {"steady_cpu_ms_per_request": ms, "capacity_rps_at_p95_200ms": 20.0, "config": {}},
    }
    backends = {"backends": [{"backend": "onnx-int8", "ms_per_text_1_thread": model_ms}]}
    (tmp_path / "b.json").write_text(json.dumps(bench))
    (tmp_path / "m.json").write_text(json.dumps(backends))
    return [
        "--benchmark",
        str(tmp_path / "b.json"),
        "--backends",
        str(tmp_path / "m.json"),
        "--out",
        str(tmp_path / "capacity.json"),
    ]


def test_replicas_are_cores_over_the_target_and_follow_a_new_benchmark(tmp_path: Path) -> None:
    ms = {
        "arbiter": 0.0,
        "review-sentiment": 5.0,
        "language": 4.0,
        "rules": 0.5,
        "transformer": 10.0,
        "load generator": 1.0,
        "total": 20.5,
    }
    args = [*_inputs(tmp_path, ms), "--rate", "100", "--utilisation", "0.5"]
    assert capacity.main(args) == 0
    report = json.loads((tmp_path / "capacity.json").read_text())
    rows = {r["process"]: r for r in report["cpu"]["per_service"]}
    assert list(rows) == ["review-sentiment", "language", "rules", "transformer"]  # no arbiter, client or total
    # transformer: 100/s x 10 ms = 1 core; at 50% that is 2 one-core replicas. Rules: 0.05 core, still 1.
    assert (rows["transformer"]["cores_busy"], rows["transformer"]["replicas"]) == (1.0, 2)
    assert (rows["language"]["replicas"], rows["rules"]["replicas"], rows["review-sentiment"]["replicas"]) == (1, 1, 1)
    whole = report["cpu"]["all_in_one"]
    # 19.5 ms per request (client left out): a 2-core pod at 50% carries 51.3/s, so 2 pods; measured 20/s: 5 pods.
    assert (whole["bento_cpu_ms_per_request"], whole["pods_by_cpu"], whole["pods_by_measured_capacity"]) == (19.5, 2, 5)
    gpu = report["gpu_projected"]
    assert gpu["pod_cpu_ms_per_request_besides_model"] == 4.0  # 10 ms transformer - 6 ms model
    faster = {**ms, "transformer": 30.0}
    assert capacity.main([*_inputs(tmp_path, faster), "--rate", "100", "--utilisation", "0.5"]) == 0
    again = json.loads((tmp_path / "capacity.json").read_text())
    assert next(r for r in again["cpu"]["per_service"] if r["process"] == "transformer")["replicas"] == 6


def test_encoder_flops_match_a_hand_count() -> None:
    # one layer, hidden 2, ffn 4, 3 tokens: projections 4*2*2 + ffn 2*2*4 = 32 MACs per token -> 2*3*32 = 192,
    # attention 2 * (3*3*2) MACs -> 2*2*18 = 72
    assert capacity.encoder_flops(layers=1, hidden=2, ffn=4, tokens=3) == 192 + 72


def test_the_committed_benchmark_gives_a_table() -> None:
    report = capacity.model(capacity.parse_args(["--out", "/dev/null"]))
    text = capacity.table(report)
    assert "transformer runner" in text and "GPU transformer pods" in text
    assert report["gpu_projected"]["transformer_gpu_pods"] >= 1


def test_a_transformer_cheaper_than_the_model_alone_gives_no_cpu_bound_but_still_a_table(tmp_path: Path) -> None:
    # A steady phase where some answers were `overload` never reached the model: the transformer's CPU per request
    # can then fall below the model's own cost per text, and the pod's CPU side is not measured.
    ms = {"review-sentiment": 4.0, "language": 2.0, "rules": 0.1, "transformer": 5.0}
    assert capacity.main([*_inputs(tmp_path, ms, model_ms=8.0), "--rate", "100"]) == 0
    report = json.loads((tmp_path / "capacity.json").read_text())
    gpu = report["gpu_projected"]
    assert (gpu["pod_cpu_ms_per_request_besides_model"], gpu["pod_cpu_side_reviews_per_s"]) == (0.0, None)
    assert gpu["bound"] == "GPU"
    assert "no CPU-side bound measured" in capacity.table(report)
