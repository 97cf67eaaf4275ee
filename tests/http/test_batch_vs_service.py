"""Batch scoring gives every review the answer ``POST /predict`` gives it: a real `bentoml serve` with a tiny
registered model, and ``batch.job`` on a local Ray (2 CPUs) with the same store, gates and backend, over a few
hundred real reviews (English from three sources, French and Chinese for the language gate).

The server's latency budgets are set far above what the tiny model needs, so no answer becomes ``overload``: the
batch job has no budget at all.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.models import isolated_store
from tests.support.server import Server

pytestmark = pytest.mark.slow
SOURCES = (
    ("amazon2014_musical_instruments_5core.jsonl", 120),
    ("amazon_reviews_us_gift_card_sample.jsonl", 90),
    ("amazon2018_fashion_5core.jsonl", 50),
    ("amazon_reviews_pds_sample_fr.jsonl", 15),
    ("zh_waimai_10k.jsonl", 15),
)


def real_reviews(shared: Path) -> list[dict[str, str]]:
    """Evenly spaced reviews of each file, each with an id naming where it came from."""
    rows = []
    for name, n in SOURCES:
        lines = (shared / name).read_text(encoding="utf-8").splitlines()
        step = max(1, len(lines) // n)
        for i in range(0, len(lines), step)[:n]:
            text = json.loads(lines[i])["text"]
            if text.strip():  # the service answers blank text with 422, not a prediction
                rows.append({"review_id": f"{name.split('.')[0]}:{i}", "text": text})
    return rows


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[tuple[Server, float]]:
    root = tmp_path_factory.mktemp("batch-api")
    home = root / "bentoml"
    probe = [r["text"] for r in real_reviews(shared_data)[:60]]
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.tiny_model", *probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"},
        check=True,
    )
    gate = statistics.median(json.loads(out.stdout.strip().splitlines()[-1])["confidences"])
    server = Server(
        home,
        root / "var",
        {
            "SENTIMENT_GATES__CONFIDENCE_GATE": str(gate),
            "SENTIMENT_SERVICE__LATENCY_BUDGET_S": "120",
            "SENTIMENT_SERVICE__BATCH_LATENCY_BUDGET_S": "240",
        },
        root / "server.log",
    )
    try:
        server.wait("/ready")
        yield server, gate
    finally:
        server.stop()


def test_batch_answers_every_real_review_exactly_as_post_predict(
    served: tuple[Server, float], shared_data: Path, tmp_path: Path
) -> None:
    from batch.job import ray_session, resolve_model, run_job
    from sentiment.settings import load_settings

    server, gate = served
    rows = real_reviews(shared_data)
    assert len(rows) >= 250

    def ask(text: str) -> dict:
        r = server.client.post("/predict", json={"text": text})
        assert r.status_code == 200, r.text
        return r.json()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        online = dict(zip([r["review_id"] for r in rows], pool.map(ask, [r["text"] for r in rows]), strict=True))
    assert not [a for a in online.values() if a["reason"].startswith(("overload", "resource_pressure"))]

    src = tmp_path / "reviews.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    settings = load_settings(gates={"confidence_gate": gate}, paths={"data_dir": tmp_path / "var"})
    with isolated_store(server.home):
        model = resolve_model(settings)  # the champion of the server's store, as the service resolves it
    assert model.tag == server.client.get("/model/info").json()["tag"]
    with ray_session(num_cpus=2):
        result = run_job(str(src), str(tmp_path / "out"), settings, model, block_rows=64, actors=2)
    assert result.rows == len(rows) and result.backends == [settings.service.backend]

    batch = {}
    for part in sorted((tmp_path / "out").glob("part-*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert row.pop("model_version") == model.tag
            batch[row.pop("review_id")] = row
    assert batch.keys() == online.keys()
    differ = [
        (k, online[k], batch[k])
        for k in online
        if {f: batch[k][f] for f in ("label", "confidence", "status", "reason")} != online[k]
    ]
    assert not differ, differ[:3]
    statuses = Counter(a["status"] for a in online.values())
    assert set(statuses) == {"ok", "fallback", "rejected"}, statuses
    assert any(a["reason"].startswith("human_review") for a in online.values())
