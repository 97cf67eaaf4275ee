"""HTTP tests against real `bentoml serve` processes: the tiny model server and a server with an empty store.

Two servers for the whole module (each is five processes: API, transformer, language, rules, arbiter). The
tiny model's confidence gate is put between its answers so one server yields ok, fallback and rejected.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from sentiment.jsonl import tail_records
from tests.support import REPO
from tests.support.server import Server

pytestmark = pytest.mark.slow

ENGLISH = [
    "The strings arrived quickly and sound bright and warm. Great value.",
    "Terrible product, broke after a day. Awful.",
    "It is fine I guess, does the job for the price.",
    "Excellent quality strings, my guitar sounds amazing now",
    "Worst purchase ever, returned it immediately",
    "The box was blue and it came on Tuesday with the manual",
    "Average product, nothing special but it works",
    "I love these, best picks I have bought",
    "Cheap plastic, cracked within a week, very disappointed",
    "Shipping took forever but the cable itself is good",
]
API_KEY = "test-key-5b0f2c"
KEY_DIGEST = hashlib.sha256(API_KEY.encode()).hexdigest()  # the server holds only this
REJECTED = ["ok", "Ceci est un produit vraiment excellent, je le recommande à tous mes amis."]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    root = tmp_path_factory.mktemp("api")
    home, empty_home = root / "bentoml", root / "bentoml-empty"
    empty_home.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.tiny_model", *ENGLISH],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"},
        check=True,
    )
    confidences = json.loads(out.stdout.strip().splitlines()[-1])["confidences"]
    gate = statistics.median(confidences)  # half the English texts pass the gate, half fall back
    started = {
        # A loaded CI box must not turn model answers into `overload` ones: the budgets have their own tests.
        "model": Server(
            home,
            root / "var",
            {
                "SENTIMENT_GATES__CONFIDENCE_GATE": str(gate),
                "SENTIMENT_SERVICE__LATENCY_BUDGET_S": "30",
                "SENTIMENT_SERVICE__BATCH_LATENCY_BUDGET_S": "60",
                # hot swap and shadow scoring are watched closely in the last test
                "SENTIMENT_SERVICE__ALIAS_POLL_S": "0.5",
                "SENTIMENT_SERVICE__SHADOW_SHARE": "1.0",
            },
            root / "model.log",
        ),
        # The bare server also checks API keys: its client sends the key, test_api_keys sends none or a wrong one.
        "bare": Server(
            empty_home,
            root / "var-bare",
            {
                "SENTIMENT_SERVICE__WORKERS": "2",
                "TEST_API_KEY": API_KEY,
                "SENTIMENT_SECURITY__API_KEYS": json.dumps([f"sha256:{KEY_DIGEST}"]),
            },
            root / "bare.log",
        ),
    }
    try:
        for s in started.values():
            s.wait("/health")
        yield started
    finally:
        for s in started.values():
            s.stop()


@pytest.fixture(scope="module")
def api(servers: dict[str, Server]) -> Server:
    servers["model"].wait("/ready")
    return servers["model"]


@pytest.fixture(scope="module")
def bare(servers: dict[str, Server]) -> Server:
    return servers["bare"]


def _predict(server: Server, text: str) -> dict:
    r = server.client.post("/predict", json={"text": text})
    assert r.status_code == 200, r.text
    return r.json()


def test_health_is_ok_and_ready_flips_once_the_model_is_loaded(servers: dict[str, Server]) -> None:
    s = servers["model"]
    assert s.client.get("/health").json() == {"status": "ok", "problems": []}
    ready = s.wait("/ready")
    assert ready.json()["model"].startswith("review-sentiment:")
    assert s.client.get("/readyz").status_code == 200


def test_without_a_model_the_service_starts_answers_through_fallbacks_and_is_not_ready(bare: Server) -> None:
    assert bare.client.get("/health").json() == {"status": "ok", "problems": []}
    ready = _wait_for(
        lambda: (
            (r := bare.client.get("/ready")).status_code == 503 and "not in the model store" in r.json()["reason"] and r
        ),
        "the empty store to be reported",
        60,
    )
    assert ready.json()["status"] == "not_ready"
    assert bare.client.get("/model/info").status_code == 503
    by_rules = _predict(bare, "Terrible product, broke after a day. Awful.")
    assert by_rules["status"] == "fallback" and by_rules["label"] == "negative"
    assert by_rules["reason"].startswith("model_unavailable:")
    to_human = _predict(bare, "The box was blue and it came on Tuesday with the manual")
    assert to_human["status"] == "fallback" and to_human["label"] is None
    assert to_human["reason"].startswith("human_review: model_unavailable")
    queued = [r["text"] for r in tail_records(bare.data_dir / "human_queue.jsonl", 50)]
    assert "The box was blue and it came on Tuesday with the manual" in queued


def test_predict_returns_exactly_the_contract(api: Server) -> None:
    body = _predict(api, ENGLISH[0])
    assert set(body) == {"label", "confidence", "status", "reason"}
    assert body["status"] in {"ok", "fallback"} and 0.0 <= body["confidence"] <= 1.0
    assert api.client.post("/predict", json={"text": REJECTED[1]}).json()["reason"].startswith("not_english:")


@pytest.mark.parametrize("text", ["", " ", "\n\t  "])
def test_empty_or_whitespace_text_is_422_before_inference(api: Server, text: str) -> None:
    before = api.client.get("/stats").json()["total_requests"]
    r = api.client.post("/predict", json={"text": text})
    assert r.status_code == 422, r.text
    assert api.client.post("/predict_batch", json={"texts": [ENGLISH[0], text]}).status_code == 422
    assert api.client.get("/stats").json()["total_requests"] == before  # nothing reached the chain


@pytest.mark.parametrize(
    ("path", "content", "headers", "expected"),
    [
        ("/predict", b"this is not json", {"content-type": "application/json"}, 422),
        ("/predict", b'{"text": "unterminated', {"content-type": "application/json"}, 422),
        ("/predict", b"[1, 2, 3]", {"content-type": "application/json"}, 422),
        ("/predict", b'{"text": 42}', {"content-type": "application/json"}, 422),
        ("/predict", b'{"review": "right text, wrong field"}', {"content-type": "application/json"}, 422),
        ("/predict", b"\xff\xfe\x00garbage", {"content-type": "application/json"}, 422),
        ("/predict_batch", b'{"texts": "not a list"}', {"content-type": "application/json"}, 422),
        ("/predict_batch", json.dumps({"texts": ["x" * 10] * 257}).encode(), {"content-type": "application/json"}, 422),
        ("/predict", json.dumps({"text": "a" * 5_000_000}).encode(), {"content-type": "application/json"}, 413),
    ],
)
def test_garbage_bodies_get_a_clear_4xx(api: Server, path: str, content: bytes, headers: dict, expected: int) -> None:
    r = api.client.post(path, content=content, headers=headers)
    assert r.status_code == expected, r.text
    assert "error" in r.json()


def test_batch_answers_every_text_in_order(api: Server) -> None:
    texts = [ENGLISH[1], REJECTED[0], ENGLISH[6], REJECTED[1], ENGLISH[3], "x" * 6000, ENGLISH[5]]
    r = api.client.post("/predict_batch", json={"texts": texts})
    assert r.status_code == 200, r.text
    batch = r.json()["predictions"]
    singles = [_predict(api, t) for t in texts]
    assert len(batch) == len(texts)
    for b, s in zip(batch, singles, strict=True):  # padding in a batch moves probabilities by ~1e-7
        code_b, code_s = b["reason"].split(":")[0], s["reason"].split(":")[0]
        assert (b["label"], b["status"], code_b) == (s["label"], s["status"], code_s)
        assert b["confidence"] == pytest.approx(s["confidence"], abs=1e-4)
    assert [p["reason"].split(":")[0] for p in batch if p["status"] == "rejected"] == [
        "too_short",
        "not_english",
        "too_long",
    ]


def test_concurrent_requests_get_the_answers_they_get_alone(api: Server) -> None:
    """Concurrent requests share runner calls (api/coalesce.py) and int8 batches: neither may change an answer."""
    texts = [f"{ENGLISH[i % len(ENGLISH)]} (order {i})" for i in range(24)] + REJECTED
    alone = [_predict(api, t) for t in texts]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda t: _predict(api, t), texts))
    assert together == alone


def test_stats_track_a_mixed_sequence_of_ok_fallback_and_rejected(api: Server) -> None:
    before = api.client.get("/stats").json()
    sequence = ENGLISH + REJECTED + ENGLISH[:3]
    answers = [_predict(api, t) for t in sequence]
    seen = Counter(a["status"] for a in answers)
    reasons = [a["reason"][:90] for a in answers]
    assert seen["ok"] and seen["fallback"] and seen["rejected"], f"test needs all three statuses, got {seen}: {reasons}"
    after = api.client.get("/stats").json()
    assert after["total_requests"] - before["total_requests"] == len(sequence)
    assert after["window_size"] - before["window_size"] == len(sequence)
    for status in ("ok", "fallback", "rejected"):
        assert after["status_breakdown"][status] - before["status_breakdown"][status] == seen[status]
    reached_model = len(sequence) - seen["rejected"]
    hist_delta = sum(after["confidence_histogram"].values()) - sum(before["confidence_histogram"].values())
    assert hist_delta == reached_model
    assert 0.0 < after["rolling_confidence"] <= 1.0 and 0.0 <= after["rolling_oov_rate"] <= 1.0
    est = after["performance_estimate"]  # every answer that reached the model logged its probabilities
    assert est["n"] >= reached_model and est["model_tag"].startswith("review-sentiment:")
    assert est["accuracy"]["lo"] <= est["accuracy"]["value"] <= est["accuracy"]["hi"]
    assert set(est["per_class"]) == {"negative", "neutral", "positive"} and "share" in est["per_class"]["neutral"]
    assert f'model_tag="{est["model_tag"]}"' in api.client.get("/metrics").text  # /stats refreshed the gauges


def test_stats_are_shared_by_all_workers(bare: Server) -> None:
    before = bare.client.get("/stats").json()
    n = 24
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: _predict(bare, f"{ENGLISH[i % 10]} #{i}")["status"], range(n)))
    assert len(statuses) == n
    for _ in range(8):  # several reads, answered by either worker: all must agree
        after = bare.client.get("/stats").json()
        assert after["total_requests"] - before["total_requests"] == n
        assert after["window_size"] - before["window_size"] == n


def test_predictions_log_and_metrics(api: Server) -> None:
    _predict(api, ENGLISH[2])
    rec = tail_records(api.data_dir / "predictions.jsonl", 1)[0]
    for field in (
        "ts",
        "request_id",
        "text_len",
        "label",
        "confidence",
        "status",
        "reason",
        "oov_rate",
        "latency_ms",
        "model_tag",
    ):
        assert field in rec
    assert rec["text"] is None and rec["model_tag"].startswith("review-sentiment:") and rec["latency_ms"] > 0
    assert len(rec["probs"]) == 3 and abs(sum(rec["probs"]) - 1.0) < 1e-4
    assert abs(max(rec["probs"]) - rec["model_confidence"]) < 1e-6  # the served vector, rounded to six places
    metrics = api.client.get("/metrics").text
    for series in (
        "sentiment_predictions_total{",
        "sentiment_model_confidence_bucket",
        "sentiment_oov_rate_bucket",
        'sentiment_request_latency_seconds_bucket{le="0.1",tier="',
        'runner="transformer"',
    ):
        assert series in metrics, series


def test_trends_count_answers_by_source_and_topic(api: Server) -> None:
    """Metadata is logged and rolled up; the answer keeps its four fields; bad windows are a 4xx."""
    r = api.client.post("/predict", json={"text": ENGLISH[0], "source": "shop-a", "topic": "strings"})
    assert r.status_code == 200 and set(r.json()) == {"label", "confidence", "status", "reason"}
    batch = api.client.post("/predict_batch", json={"texts": ENGLISH[:3], "source": "shop-a"})
    assert batch.status_code == 200
    recs = tail_records(api.data_dir / "predictions.jsonl", 4)
    assert [(x["source"], x["topic"]) for x in recs] == [("shop-a", "strings")] + [("shop-a", None)] * 3
    trends = api.client.get("/trends", params={"window": "day", "source": "shop-a"}).json()
    day = trends["windows"][-1]
    assert day["count"] == 4 and sum(day["labels"].values()) <= 4 and 0 < day["mean_confidence"] <= 1
    assert day["estimate"]["n"] == 4 and set(day["estimate"]["per_class"]) == {"negative", "neutral", "positive"}
    only = api.client.get("/trends", params={"window": "hour", "source": "shop-a", "topic": "strings"}).json()
    assert sum(w["count"] for w in only["windows"]) == 1
    assert api.client.get("/trends", params={"window": "month"}).status_code == 422
    assert api.client.get("/trends", params={"start": "yesterday"}).status_code == 422
    assert api.client.post("/predict", json={"text": ENGLISH[0], "source": "x" * 101}).status_code in (400, 422)


def test_model_info_and_openapi(api: Server) -> None:
    info = api.client.get("/model/info").json()
    assert info["labels"] == ["negative", "neutral", "positive"]
    assert info["tag"].startswith("review-sentiment:") and info["base_model"] and info["temperature"] > 0
    assert info["backend"] == "onnx-int8"  # the export of the served checkpoint passed its check against PyTorch
    paths = api.client.get("/docs.json").json()["paths"]
    for p in ("/predict", "/predict_batch", "/health", "/ready", "/stats", "/model/info"):
        assert p in paths


def _real_reviews(shared: Path, n_english: int = 48) -> list[str]:
    """Evenly spaced real reviews of three English files, plus French and Chinese ones for the language gate."""
    picked: list[str] = []
    for name, n in (
        ("amazon2014_musical_instruments_5core.jsonl", n_english // 2),
        ("amazon_reviews_us_gift_card_sample.jsonl", n_english // 2),
        ("amazon_reviews_pds_sample_fr.jsonl", 4),
        ("zh_waimai_10k.jsonl", 4),
    ):
        lines = (shared / name).read_text(encoding="utf-8").splitlines()
        picked += [json.loads(lines[i])["text"] for i in range(0, len(lines), max(1, len(lines) // n))][:n]
    return picked


def test_service_and_in_process_chain_answer_real_reviews_alike(api: Server, shared_data: Path, tmp_path: Path) -> None:
    """One tier sequence (fallback/sequence.py) behind both: the same model, gates and backend give the same
    four fields for every review, escalations included."""
    from fallback.chain import Chain
    from sentiment.model.inference import SentimentModel
    from sentiment.settings import load_settings
    from tests.support.models import isolated_store

    texts = _real_reviews(shared_data)
    r = api.client.post("/predict_batch", json={"texts": texts})
    assert r.status_code == 200, r.text
    served = r.json()["predictions"]
    tag = api.client.get("/model/info").json()["tag"]
    settings = load_settings(
        gates={"confidence_gate": float(api.env["SENTIMENT_GATES__CONFIDENCE_GATE"]), "max_cpu_percent": 101.0},
        paths={"data_dir": tmp_path},
    )
    with isolated_store(api.home):
        model = SentimentModel.from_store(
            tag, num_threads=1, backend=settings.service.backend, onnx_cache=tmp_path / "onnx"
        )
    local = [t.prediction.model_dump(mode="json") for t in Chain(settings, model).classify_many(texts)]
    reasons = [a["reason"][:100] for a in served][:8]
    assert Counter(a["status"] for a in served) == Counter(a["status"] for a in local), reasons
    assert served == local
    assert {a["status"] for a in served} == {"ok", "fallback", "rejected"}


def test_a_client_budget_too_short_for_the_model_is_answered_by_the_rules(api: Server) -> None:
    r = api.client.post("/predict", json={"text": ENGLISH[1]}, headers={"X-Latency-Budget-Ms": "1"})
    assert r.status_code == 200
    answer = r.json()
    assert answer["status"] == "fallback" and answer["reason"].startswith("overload: ")
    assert answer["label"] == "negative"  # "Terrible ... broke ... Awful": the rules' answer
    assert _predict(api, ENGLISH[1])["reason"].split(":")[0] != "overload"  # without the header the model answers


def test_api_keys_guard_the_prediction_endpoints_only(bare: Server) -> None:
    body = {"text": "Terrible product, broke after a day. Awful."}
    with httpx.Client(base_url=bare.url, timeout=30) as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"X-API-Key": API_KEY + "x"}):
            r = anonymous.post("/predict", json=body, headers=headers)
            assert r.status_code == 401 and "API key" in r.json()["error"]
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.post("/predict", json=body, headers={"X-API-Key": API_KEY}).status_code == 200
        for open_path in ("/health", "/metrics"):
            assert anonymous.get(open_path).status_code == 200
        assert anonymous.get("/ready").status_code == 503  # open, and honest: this server has no model
    assert 'sentiment_refused_requests_total{why="unauthorized"}' in bare.client.get("/metrics").text


def test_no_machine_path_in_any_response(api: Server) -> None:
    info = api.client.get("/model/info").text
    assert str(REPO) not in info and "/work/" not in info and "site-packages" not in info
    assert api.client.get("/model/info").json()["base_model"]


def test_health_degrades_while_the_log_cannot_be_written_and_no_record_is_lost(api: Server) -> None:
    from sentiment.jsonl import iter_records

    log = api.data_dir / "predictions.jsonl"
    _predict(api, ENGLISH[0])  # the log exists
    before = sum(1 for _ in iter_records(log))
    aside = log.with_name("predictions.aside")
    log.rename(aside)
    log.mkdir()  # a folder where the log should be: every append fails (also for root, unlike chmod)
    try:
        answers = [_predict(api, t) for t in ENGLISH[:3]]
        assert all(a["status"] in ("ok", "fallback") for a in answers)  # answering never depends on the log
        health = api.client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert "predictions.jsonl: 3 records wait" in health.json()["problems"][0]
    finally:
        log.rmdir()
        aside.rename(log)
    _predict(api, ENGLISH[3])
    assert api.client.get("/health").json() == {"status": "ok", "problems": []}
    assert sum(1 for _ in iter_records(log)) == before + 4


def test_the_openapi_document_is_what_the_service_answers(api: Server) -> None:
    """Schema-aware fuzzing of every route (schemathesis, all its checks, malformed bodies and content types
    included): no server error, and every status code, header and body is one the document declares."""
    schema = schemathesis.openapi.from_url(f"{api.url}/docs.json")
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/predict_batch", "/health", "/ready", "/model/info"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            case.call_and_validate()  # every built-in check

        fuzz()


def _wait_for(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_challenger_shadow_promotion_and_rollback_in_a_running_service(api: Server) -> None:
    """Last in the module: it moves the api server's aliases, and puts them back."""
    import threading

    from sentiment.jsonl import iter_records
    from sentiment.model.aliases import AliasRegistry
    from tests.support.models import isolated_store
    from tests.support.tiny_model import register_tiny_model

    info = lambda: api.client.get("/model/info").json()  # noqa: E731
    old = info()["tag"]
    with isolated_store(api.home):
        new = register_tiny_model(seed=1)
        registry = AliasRegistry("review-sentiment")
        assert registry.state().champion == old  # registering never moves the champion

        answers: list[tuple[int, dict[str, Any]]] = []
        stop = threading.Event()

        def steady_load() -> None:
            with httpx.Client(base_url=api.url, timeout=30) as client:
                i = 0
                while not stop.is_set():
                    r = client.post("/predict", json={"text": f"{ENGLISH[i % len(ENGLISH)]} #{i}"})
                    answers.append((r.status_code, r.json()))
                    i += 1
                    time.sleep(0.05)

        load = threading.Thread(target=steady_load)
        load.start()
        try:
            registry.promote("challenger", new, "shadow it first")
            _wait_for(lambda: info().get("challenger") == new, "the challenger to load")
            shadow = _wait_for(lambda: api.client.get("/stats").json()["shadow"], "shadow records")
            assert shadow["challenger_tag"] == new and shadow["champion_tag"] == old
            assert 0.0 <= shadow["agreement"] <= 1.0 and shadow["n"] >= 1
            assert "sentiment_shadow_total{" in api.client.get("/metrics").text
            registry.promote("champion", new, "test promotion", force=True)
            _wait_for(lambda: info()["tag"] == new, "the promotion to be served")
            _wait_for(
                lambda: any(r.get("model_tag") == new for r in iter_records(api.data_dir / "predictions.jsonl")),
                "a record from the new version",
            )
            assert api.client.get("/ready").json()["model"] == new
            registry.rollback("test rollback")
            _wait_for(lambda: info()["tag"] == old, "the rollback to be served")
            time.sleep(1.0)  # answers right after the swap back
        finally:
            stop.set()
            load.join()
    assert len(answers) > 20
    assert [a for a in answers if a[0] != 200] == []  # no failed answer across two swaps
    for _, body in answers:
        assert set(body) == {"label", "confidence", "status", "reason"}
