"""Batch scoring jobs (batch/job.py) with a tiny random model on a local Ray of 2 CPUs: formats round-trip, ids stay
with their rows, bad rows become ``rejected`` rows, a resumed job writes no row twice, escalations reach the queue,
and every answer is the in-process chain's (which tests/http shows is the service's).

One Ray instance for the module, shut down at the end with a check that none of its processes is left. Slow: each
job starts a pool of actors that import torch and load the model. The planning checks are in tests/unit/test_batch.py.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.job import (
    OUTPUT_FIELDS,
    ModelRef,
    ray_session,
    run_job,
)
from fallback.chain import Chain
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import ModelMetadata
from sentiment.records import QueueRecord
from sentiment.settings import Settings, load_settings
from tests.support.doubles import FixedGuard
from tests.support.tiny_model import build_tiny_checkpoint

pytestmark = pytest.mark.slow

TEXTS = [
    "The strings arrived quickly and sound bright and warm. Great value.",
    "Terrible product, broke after a day. Awful.",
    "It is fine I guess, does the job for the price.",
    "The box was blue and it came on Tuesday with the manual",
    "Average product, nothing special but it works",
    "I love these, best picks I have bought",
    "Cheap plastic, cracked within a week, very disappointed",
    "Shipping took forever but the cable itself is good",
    "Ceci est un produit vraiment excellent, je le recommande à tous mes amis.",
    "ok",
    "We received the parcel on a Monday and put it on the shelf next to the lamp",
    "Five stars, excellent sound and solid build",
    "The package contained two cables and a printed leaflet",
    "My neighbour collected it from the post office on Friday afternoon",
    "It is made of metal and measures twenty centimetres across",
]
NO_KEYWORDS = [TEXTS[3], TEXTS[10], TEXTS[12], TEXTS[13], TEXTS[14]]  # neither tier 2 nor a language problem


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelRef, SentimentModel]:
    ckpt = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")
    meta = ModelMetadata(base_model="tiny-random-distilbert", temperature=1.0, profile="tiny", metrics={})
    ref = ModelRef(path=str(ckpt), metadata=meta, tag="review-sentiment:tinytest")
    return ref, SentimentModel(
        ckpt, meta, ref.tag, 1, backend="onnx-int8", onnx_cache=tmp_path_factory.mktemp("onnx-local")
    )


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with ray_session(num_cpus=2):
        yield
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert not left, f"Ray processes left after shutdown: {[(p.pid, p.name()) for p in left]}"


@pytest.fixture(scope="module")
def job_settings(tmp_path_factory: pytest.TempPathFactory, tiny: tuple[ModelRef, SentimentModel]) -> Settings:
    """The confidence gate at the median of the tiny model's confidences on texts without keywords: some of them are
    answered by the model, the others go to the human queue."""
    _, model = tiny
    gate = statistics.median(float(max(p)) for p in model.predict(NO_KEYWORDS))
    data = tmp_path_factory.mktemp("batch-var")
    return load_settings(gates={"confidence_gate": gate}, paths={"data_dir": data}, service={"backend": "onnx-int8"})


def expected(settings: Settings, model: SentimentModel, tmp: Path, texts: list[object]) -> list[dict[str, Any]]:
    """The in-process chain's answers (its own queue file, so the job's queue is left to the job)."""
    local = settings.model_copy(update={"paths": settings.paths.model_copy(update={"data_dir": tmp})})
    return [t.prediction.model_dump(mode="json") for t in Chain(local, model, guard=FixedGuard()).classify_many(texts)]


def read_output(out: Path, fmt: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for part in sorted(out.glob(f"part-*.{fmt}")):
        if fmt == "jsonl":
            rows += [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines()]
        elif fmt == "csv":
            rows += list(csv.DictReader(io.StringIO(part.read_text(encoding="utf-8"), newline="")))
        else:
            rows += pq.read_table(part).to_pylist()
    return rows


def answer(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": row["label"] or None,
        "confidence": float(row["confidence"]),
        "status": row["status"],
        "reason": row["reason"],
    }


def test_every_format_round_trips_with_ids_columns_the_chains_answers_and_its_escalations(
    ray_local: None, tiny: tuple[ModelRef, SentimentModel], job_settings: Settings, tmp_path: Path
) -> None:
    ref, model = tiny
    rows = [{"review_id": f"R{i:03d}", "text": t, "stars": i % 5 + 1} for i, t in enumerate(TEXTS * 2)]
    want = dict(
        zip(
            [r["review_id"] for r in rows],
            expected(job_settings, model, tmp_path / "expected", [r["text"] for r in rows]),
            strict=True,
        )
    )
    assert {a["status"] for a in want.values()} == {"ok", "fallback", "rejected"}
    assert any(a["reason"].startswith("human_review") for a in want.values())
    queue = job_settings.paths.human_queue
    queued_before = len(queue.read_text().splitlines()) if queue.exists() else 0
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet", row_group_size=7)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with (tmp_path / "in.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["review_id", "text", "stars"])
        w.writeheader()
        w.writerows(rows)
    for fmt in ("jsonl", "csv", "parquet"):
        result = run_job(
            str(tmp_path / f"in.{fmt}"), str(tmp_path / f"out-{fmt}"), job_settings, ref, block_rows=5, actors=2
        )
        assert result.rows == len(rows) and result.blocks_scored == result.blocks, fmt
        assert result.backends == ["onnx-int8"], result  # the service's backend in every actor
        got = read_output(tmp_path / f"out-{fmt}", fmt)
        assert sorted(r["review_id"] for r in got) == sorted(want), fmt  # one row per input row
        originals = {r["review_id"]: r for r in rows}
        for row in got:
            src = originals[row["review_id"]]
            assert row["text"] == src["text"] and str(row["stars"]) == str(src["stars"]), fmt
            assert answer(row) == want[row["review_id"]], (fmt, row)
            assert row["model_version"] == ref.tag
        if fmt == "parquet":  # the input's own types are kept
            schema = pq.read_schema(next((tmp_path / "out-parquet").glob("part-*.parquet")))
            assert schema.field("stars").type == pa.int64() and schema.names[-5:] == list(OUTPUT_FIELDS)
        if fmt == "jsonl":  # tier-3 answers were queued as the service queues them, from the actors
            human = [r for r in got if r["reason"].startswith("human_review")]
            assert human and result.escalated == len(human)
            assert all(r["reason"].endswith("; queued for human review") and r["label"] is None for r in human)
            lines = queue.read_text().splitlines()[queued_before:]
            records = [QueueRecord.model_validate_json(line) for line in lines]
            assert sorted(r.text for r in records) == sorted(r["text"] for r in human)
            assert all(r.request_id.startswith("batch-") and r.reason_code for r in records)


def test_bad_rows_become_rejected_rows_and_the_job_goes_on(
    ray_local: None, tiny: tuple[ModelRef, SentimentModel], job_settings: Settings, tmp_path: Path
) -> None:
    ref, _ = tiny
    lines = [
        b'{"id": 1, "text": "Terrible product, broke after a day. Awful."}',
        b'{"id": 2, "text": null}',
        b'{"id": 3}',
        b'{"id": 4, "text": 42}',
        b'{"id": 5, "text": ["a", "list"]}',
        b'{"id": 6, "text": "\xff\xfe\xfa broken \xff\xfe\xfa\xff\xfe\xfa bytes"}',
        b"this line is not JSON",
        b'["an", "array"]',
        b'{"id": 9, "text": "   "}',
        b'{"id": 10, "text": "I love these, best picks I have bought"}',
    ]
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    result = run_job(str(src), str(tmp_path / "out"), job_settings, ref, block_rows=4, actors=2)
    assert result.rows == len(lines)
    out = b"".join(p.read_bytes() for p in sorted((tmp_path / "out").glob("part-*.jsonl"))).splitlines()
    assert b"\xff\xfe\xfa broken" in out[5]  # the input's bytes are written back as they were
    got = [json.loads(line.decode("utf-8", errors="replace")) for line in out]
    codes = [r["reason"].split(":")[0] if r["status"] == "rejected" else r["status"] for r in got]
    assert codes[1:9] == [
        "invalid_input",
        "invalid_input",
        "invalid_input",
        "invalid_input",
        "bad_encoding",
        "invalid_input",
        "invalid_input",
        "empty",
    ]
    assert {codes[0], codes[9]} <= {"ok", "fallback"}
    assert got[2]["id"] == 3 and "no 'text' field" in got[2]["reason"]
    assert got[6]["_raw"] == "this line is not JSON" and "line 7 is not JSON" in got[6]["reason"]
    assert all(r["label"] is None and r["confidence"] == 0.0 for r in got[1:9])


def test_a_resumed_job_scores_only_missing_blocks_and_writes_no_row_twice(
    ray_local: None, tiny: tuple[ModelRef, SentimentModel], job_settings: Settings, tmp_path: Path
) -> None:
    ref, _ = tiny
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"n": i, "text": TEXTS[i % len(TEXTS)]}) + "\n" for i in range(40)))
    out = tmp_path / "out"
    first = run_job(str(src), str(out), job_settings, ref, block_rows=6, actors=2)
    assert first.blocks == 7 and first.blocks_scored == 7
    parts = {p.name: p.read_bytes() for p in out.glob("part-*.jsonl")}
    # A job killed halfway: two parts never written, one rename never done (its temporary file left behind).
    (out / "part-00002.jsonl").unlink()
    (out / "part-00005.jsonl").rename(out / "part-00005.jsonl.deadbeef.tmp")
    (out / "_summary.json").unlink()
    again = run_job(str(src), str(out), job_settings, ref, block_rows=6, actors=2)
    assert (again.blocks_scored, again.blocks_skipped, again.rows) == (2, 5, 12)
    assert {p.name: p.read_bytes() for p in out.glob("part-*.jsonl")} == parts  # same answers, byte for byte
    ns = [json.loads(line)["n"] for p in sorted(out.glob("part-*.jsonl")) for line in p.read_text().splitlines()]
    assert sorted(ns) == list(range(40))  # exactly one row per input row
    assert json.loads((out / "_summary.json").read_text())["blocks"] == 7
    nothing = run_job(str(src), str(out), job_settings, ref, block_rows=6, actors=2)
    assert (nothing.blocks_scored, nothing.rows) == (0, 0)
