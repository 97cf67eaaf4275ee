"""Several `bentoml serve` replicas writing logs under one shared root, read back by the dashboard and drift.

The layout of deploy/ (one data dir per pod on a shared volume, ``/data/<pod>/``) on one machine: server ``a``
writes to ``root/pod-a``; servers ``b`` and ``c`` both write to ``root/pod-b``, the case of two processes on one
folder (which the append-only writer allows, exactly as for the workers of one server: whole lines under
``flock`` on ``O_APPEND``, rotation under the same lock). Each server runs two API workers and rotates its logs
every 16 kB, so readers go through many rotated pieces written concurrently. No model: tiers 2 and 3 answer, so
the human queue fills as well. Every answered request must be seen exactly once, from the right replica folder,
by the dashboard's loaders and by the drift reader, and no line in any file may be torn.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import string
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard import loaders
from drift.windows import WindowSpec, read_windows
from sentiment.settings import DriftSettings
from tests.support.server import Server

pytestmark = pytest.mark.slow

REVIEWS = [
    "The strings arrived quickly and sound bright and warm. Great value, ticket {}",
    "Terrible product, broke after a day. Awful. ticket {}",
    "The box was blue and it came on Tuesday with the manual, ticket {}",  # neither tier answers: queued
    "Cheap plastic, cracked within a week, very disappointed, ticket {}",
]
TOKEN = re.compile(r"ticket (zq[a-z]+)")
PER_SERVER = 60


def token(server: str, i: int) -> str:
    """Letters only, so PII masking (which looks at digits) leaves it alone."""
    return f"zq{server}" + "".join(string.ascii_lowercase[int(d)] for d in f"{i:03d}")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Server]]]:
    base = tmp_path_factory.mktemp("replicas")
    home, root = base / "bentoml", base / "volume"
    home.mkdir()
    env = {
        "SENTIMENT_SERVICE__LOG_TEXT": "true",
        "SENTIMENT_SERVICE__WORKERS": "2",
        "SENTIMENT_ROTATION__MAX_BYTES": "16000",
    }
    started: dict[str, Server] = {}
    try:
        for name, folder in (("a", "pod-a"), ("b", "pod-b"), ("c", "pod-b")):
            started[name] = Server(home, root / folder, env, base / f"{name}.log")
        for s in started.values():
            s.wait("/health")
        yield root, started
    finally:
        for s in started.values():
            s.stop()


def _send(servers: dict[str, Server]) -> dict[str, str]:
    """All servers at once, eight requests in flight each: token -> the server that answered it."""
    jobs = [(name, token(name, i), REVIEWS[i % len(REVIEWS)]) for i in range(PER_SERVER) for name in servers]

    def post(job: tuple[str, str, str]) -> tuple[str, str, int]:
        name, tok, text = job
        r = servers[name].client.post("/predict", json={"text": text.format(tok)})
        assert set(r.json()) == {"label", "confidence", "status", "reason"}
        return name, tok, r.status_code

    with concurrent.futures.ThreadPoolExecutor(8 * len(servers)) as pool:
        done = list(pool.map(post, jobs))
    assert all(code == 200 for _, _, code in done)
    return {tok: name for name, tok, _ in done}


def _raw_lines(root: Path, log: str) -> list[dict[str, Any]]:
    """Every line of every piece, parsed on its own: a torn or glued line fails here."""
    stem, suffix = log.split(".")
    files = sorted(root.glob(f"*/{stem}*.{suffix}"))
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    return [json.loads(line) for line in lines]


def test_every_answer_of_every_replica_is_read_once_from_its_folder(replicas: tuple[Path, dict[str, Server]]) -> None:
    root, servers = replicas
    sent = _send(servers)
    folder = {"a": "pod-a", "b": "pod-b", "c": "pod-b"}
    raw = _raw_lines(root, "predictions.jsonl")
    rid_token = {r["request_id"]: TOKEN.search(r["text"]).group(1) for r in raw}  # type: ignore[union-attr]
    assert len(raw) == len(rid_token) and Counter(rid_token.values()) == Counter(list(sent)), "each logged once"
    assert len(list(root.glob("*/predictions.*.jsonl"))) >= 4, "the logs rotated while written"

    # The dashboard: both folders, every record once, tagged with the folder its server writes to, in time order.
    frame = loaders.load_predictions(root / "predictions.jsonl", 10_000, replicas=True).frame
    assert len(frame) == len(sent) and frame["request_id"].is_unique
    assert {rid_token[rid]: rep for rid, rep in zip(frame["request_id"], frame["replica"], strict=True)} == {
        tok: folder[name] for tok, name in sent.items()
    }
    assert frame["ts"].is_monotonic_increasing

    # The queue panel's loader: exactly the reviews the chain handed to humans, once each.
    humans = {rid for rid, tier in ((r["request_id"], r["tier"]) for r in raw) if tier == "human"}
    assert humans, "the neutral review reaches tier 3 without a model"
    queue = loaders.load_queue(root / "human_queue.jsonl", 10_000, replicas=True).frame
    assert sorted(queue["request_id"]) == sorted(humans)
    assert {TOKEN.search(t).group(1) for t in queue["text"]} == {rid_token[rid] for rid in humans}  # type: ignore[union-attr]
    assert len(_raw_lines(root, "human_queue.jsonl")) == len(humans)

    # The drift reader: one window over both folders counts every record and samples every text (cap > total).
    drift = DriftSettings(gate_sample=1000, embedding_sample=10, score_sample=10)
    spec = WindowSpec(label="all", path=root / "predictions.jsonl", replicas=True)
    (window,) = read_windows([spec], frozenset(), drift, 0.6, progress=False)
    assert window.info.n == len(sent) and window.info.skipped_lines == 0
    assert Counter(TOKEN.search(t).group(1) for t in window.texts) == Counter(list(sent))  # type: ignore[union-attr]
