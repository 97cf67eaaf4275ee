"""The adaptation loop end to end in a running service: reviews of one product line go through `bentoml serve`, the
labelling sample and the human queue fill, labels are saved through the dashboard's own writer, `sentiment-retrain
--recalibrate` adapts the champion, the gate promotes it on held-out labels of that line, and the running service
hot-swaps to it: /model/info names the new version and what it was adapted on, and its answers on the line change.

The champion is the tiny random model, calibrated as if positive reviews were rare (class bias -4), and the product
line is gift-card reviews, nearly all positive: the class-mix shift recalibration exists to correct. The tiny model's
base-split figures are noise, so the base tolerance is opened for this test (the gate's own tests check it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.loaders import save_label
from sentiment.contract import Label
from sentiment.jsonl import iter_records
from sentiment.settings import GateSettings, PathSettings
from sentiment.validation import Validated, validate
from tests.support import REPO
from tests.support.models import BLITZER, isolated_store, small_config
from tests.support.server import Server

pytestmark = pytest.mark.slow
GIFT_CARDS = PathSettings().shared_data_dir / "amazon_reviews_us_gift_card_sample.jsonl"
LIFECYCLE = {
    "SENTIMENT_LIFECYCLE__BASE_TOLERANCE": "1.0",
    "SENTIMENT_LIFECYCLE__MIN_TARGET_LABELS": "20",
    "SENTIMENT_LIFECYCLE__BOOTSTRAP_RESAMPLES": "500",
}


def _product_line(n: int) -> list[tuple[str, Label]]:
    gates = GateSettings()
    out: list[tuple[str, Label]] = []
    for line in GIFT_CARDS.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        v = validate(r["text"], gates)
        if isinstance(v, Validated) and len(v.text) >= 25 and r.get("rating"):
            stars = int(r["rating"])
            out.append((v.text, Label.negative if stars <= 2 else Label.neutral if stars == 3 else Label.positive))
        if len(out) == n:
            break
    return out


def _register_champion(home: Path) -> str:
    from sentiment.model.registry import ModelMetadata, save_to_store
    from sentiment.settings import Settings
    from tests.support.tiny_model import build_tiny_checkpoint
    from training.data import build_dataset

    cfg = small_config("tiny-random-distilbert", data=[BLITZER], split="stratified", max_test_per_source=60)
    s = Settings()
    ds = build_dataset(cfg, s.gates, s.paths.shared_data_dir)
    meta = ModelMetadata(
        base_model="tiny-random-distilbert",
        profile="tiny",
        class_bias=[0.0, 0.0, -4.0],
        train_config=cfg.model_dump(mode="json"),
        data_fingerprint=ds.fingerprint,
    )
    with isolated_store(home):
        return save_to_store("review-sentiment", build_tiny_checkpoint(home.parent / "tiny"), meta, frozenset())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("adapt_loop")
    home = root / "bentoml"
    _register_champion(home)
    env = {
        "SENTIMENT_SERVICE__LATENCY_BUDGET_S": "30",
        "SENTIMENT_SERVICE__BATCH_LATENCY_BUDGET_S": "120",
        "SENTIMENT_SERVICE__ALIAS_POLL_S": "0.5",
        "SENTIMENT_LABELLING__MAX_MARGIN": "0.3",
        "SENTIMENT_LABELLING__RANDOM_SHARE": "0.5",
        "SENTIMENT_LABELLING__DAILY_CAP": "1000",
    }
    s = Server(home, root / "var", env, root / "server.log")
    try:
        s.wait("/ready")
        yield s
    finally:
        s.stop()


def _run(module: str, server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BENTOML_HOME": str(server.home),
        "BENTOML_DO_NOT_TRACK": "true",
        "SENTIMENT_PATHS__DATA_DIR": str(server.data_dir),
        **LIFECYCLE,
    }
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True)


def _answers(server: Server, texts: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(0, len(texts), 50):
        r = server.client.post("/predict_batch", json={"texts": texts[i : i + 50]})
        assert r.status_code == 200, r.text
        out += r.json()["predictions"]
    return out


def test_labels_from_the_sample_and_queue_adapt_the_running_service(server: Server) -> None:
    line = _product_line(300)
    truth = {text.casefold(): label for text, label in line}
    assert Counter(truth.values())[Label.positive] > 0.8 * len(truth)
    champion = server.client.get("/model/info").json()
    assert champion["adaptation"] is None
    before = _answers(server, [t for t, _ in line])

    # The sample and the queue fill; an operator labels both through the dashboard's writer.
    sample = list(iter_records(server.data_dir / "labelling_sample.jsonl"))
    queue = list(iter_records(server.data_dir / "human_queue.jsonl"))
    assert len(sample) > 50 and {r["selection"] for r in sample} == {"margin", "random"}
    labels_file = server.data_dir / "human_labels.jsonl"
    saved = 0
    for r in [*queue, *sample]:
        label = truth.get(r["text"].casefold())
        if label is not None:
            save_label(labels_file, r["request_id"], r["text"], label, "e2e-operator")
            saved += 1
    assert saved > 80

    adapted = _run("scripts.retrain", server, "--recalibrate")
    assert adapted.returncode == 0, adapted.stderr + adapted.stdout
    result = json.loads(adapted.stdout.strip().splitlines()[-1])
    assert result["decision"] == "recalibrated" and result["champion"] == champion["tag"]

    gate = _run("scripts.models", server, "gate")
    assert gate.returncode == 0, gate.stderr + gate.stdout
    assert "held-out labels (product line)" in gate.stdout and "-> promoted" in gate.stdout

    deadline = time.monotonic() + 120
    while (info := server.client.get("/model/info").json())["tag"] != result["tag"]:
        assert time.monotonic() < deadline, "the running service never swapped to the adapted version"
        time.sleep(0.5)
    assert info["adaptation"]["method"] == "recalibrate"
    assert info["adaptation"]["from_tag"] == champion["tag"] and info["adaptation"]["labels"] == result["labels"]
    after = _answers(server, [t for t, _ in line])
    positive = [sum(a["label"] == "positive" for a in answers) for answers in (before, after)]
    assert positive[1] > positive[0]
