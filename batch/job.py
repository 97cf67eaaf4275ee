"""Batch scoring with Ray Data: files of reviews in, the same files with the service's answer on every row out.

The answer for a text is the one ``POST /predict`` gives: a pool of Ray actors, each loading the serving model once
(``SentimentModel`` exactly as the transformer runner loads it) and running the one tier sequence
(:class:`fallback.sequence.TierSequence`) over :class:`fallback.tiers.LocalTiers` with the service's gates,
confidence gate, neutral band, language check and rules. Two deliberate differences from the service, neither of
which changes an answer the service gives when it is not overloaded: no latency budget (a batch waits for the
model, so no ``overload`` answers) and no resource guard (the job itself is what keeps the CPUs busy).

Resumable by construction. The driver cuts the input into numbered blocks (``block_rows`` lines or rows each) and
records the cut in ``OUTPUT/_plan.json``; each block's answers are written to ``OUTPUT/part-NNNNN.<ext>`` through a
temporary file and a rename, so a part exists whole or not at all. A second run with the same plan skips every
block whose part exists: a job killed halfway scores only what is missing and writes no row twice.

Blocks are planned here rather than by Ray Data's own readers for two reasons: those readers (pyarrow's JSON and
CSV parsers) abort the whole job on one malformed line or undecodable byte, where a bad row must become a
``rejected`` row; and they give no stable row numbering, which resuming needs. Ray Data schedules the numbered
blocks over the actor pool (``map_batches``, one block per batch) and streams the per-block summaries back.

Formats: JSON Lines, CSV (the csv module: values stay the exact strings of the input, undecodable bytes included)
and Parquet (pyarrow: the input's columns and types unchanged). Any filesystem pyarrow knows (local paths,
``s3://``, ``gs://``, ``hdfs://``...). Compressed text files are not split (a gzip stream cannot be cut into
blocks): decompress them first.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import itertools
import json
import logging
import os
import resource
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel

from fallback.decide import Trace, Traced
from fallback.queue import HumanQueue
from fallback.sequence import TierSequence
from fallback.tiers import LocalTiers
from sentiment.contract import Prediction, Reason
from sentiment.model.registry import ModelMetadata
from sentiment.settings import Settings

log = logging.getLogger(__name__)

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")
EXTENSIONS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
OUTPUT_FIELDS = ("label", "confidence", "status", "reason", "model_version")
PLAN_FILE = "_plan.json"
SUMMARY_FILE = "_summary.json"
# Texts per run of the sequence: one tier-1 call each, far inside the model's time limit (gates.model_timeout_s).
SEQUENCE_CHUNK = 128
_READ_CHUNK = 8 << 20


# --- plan -----------------------------------------------------------------------------------------------------------


class SourceFile(BaseModel):
    path: str
    size: int
    mtime_ns: int | None = None


class Block(BaseModel):
    """One numbered slice of one input file: bytes [start, end) of a text file, or rows [start, end) of a Parquet
    row group. ``first_row`` numbers its first line or row within the file (0-based, header excluded)."""

    index: int
    path: str
    start: int
    end: int
    first_row: int
    row_group: int | None = None


class Plan(BaseModel):
    input: str
    format: Format
    text_column: str
    block_rows: int
    files: list[SourceFile]
    blocks: list[Block]
    csv_header: list[str] | None = None

    def same_job(self, other: Plan) -> bool:
        return self.model_dump(exclude={"blocks"}) == other.model_dump(exclude={"blocks"})

    @property
    def job_id(self) -> str:
        """Stable across reruns: the request ids of escalations carry it, so a re-queued review is recognisable."""
        key = json.dumps(self.model_dump(exclude={"blocks"}, mode="json"), sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:10]


def detect_format(path: str, given: str | None = None) -> Format:
    if given:
        for fmt in FORMATS:
            if given == fmt:
                return fmt
        raise ValueError(f"unknown format {given!r}: one of {', '.join(FORMATS)}")
    name = path.rstrip("/").lower()
    for ext, fmt in EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    if name.endswith((".gz", ".bz2", ".zst", ".xz")):
        raise ValueError(f"{path}: compressed input cannot be cut into blocks; decompress it first")
    raise ValueError(f"cannot tell the format of {path!r} from its name: pass --format ({', '.join(FORMATS)})")


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for a path or URI (local paths as they are)."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), str(Path(uri).resolve())
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path


def _input_files(fs: pafs.FileSystem, path: str, fmt: Format) -> list[SourceFile]:
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(path)
    if info.type == pafs.FileType.File:
        infos = [info]
    else:  # a folder: every file of the format in it, in name order
        infos = sorted(
            (
                i
                for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))
                if i.type == pafs.FileType.File
                and EXTENSIONS.get(Path(i.path).suffix.lower()) == fmt
                and not Path(i.path).name.startswith(("_", "."))
            ),
            key=lambda i: i.path,
        )
        if not infos:
            raise FileNotFoundError(f"no .{fmt} files under {path}")
    return [SourceFile(path=i.path, size=i.size or 0, mtime_ns=i.mtime_ns) for i in infos]


def _lines(f: Any, start: int = 0) -> Iterator[bytes]:
    """Lines of a binary stream, each with its line ending, from byte ``start``."""
    if start:
        f.seek(start)
    rest = b""
    while True:
        chunk = f.read(_READ_CHUNK)
        if not chunk:
            break
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            yield line + b"\n"
    if rest:
        yield rest


def _cut(path: str, ends: Iterable[int], start: int, block_rows: int, first_index: int) -> list[Block]:
    """Blocks of ``block_rows`` records, from the byte offset at which each record ends."""
    blocks: list[Block] = []
    pos, first = start, 0
    for row, pos in enumerate(ends, 1):
        if row - first == block_rows:
            blocks.append(Block(index=first_index + len(blocks), path=path, start=start, end=pos, first_row=first))
            start, first = pos, row
    if pos > start:
        blocks.append(Block(index=first_index + len(blocks), path=path, start=start, end=pos, first_row=first))
    return blocks


def _plan_lines(fs: pafs.FileSystem, src: SourceFile, block_rows: int, first_index: int) -> list[Block]:
    with fs.open_input_file(src.path) as f:
        return _cut(src.path, itertools.accumulate(len(line) for line in _lines(f)), 0, block_rows, first_index)


def _csv_records(f: Any, start: int = 0) -> Iterator[tuple[list[str], int]]:
    """CSV records and the byte offset just after each (quoted line breaks inside a field included)."""
    consumed = start

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in _lines(f, start):
            consumed += len(line)
            yield line.decode("utf-8", errors="surrogateescape")

    for record in csv.reader(lines()):
        yield record, consumed


def _plan_csv(fs: pafs.FileSystem, src: SourceFile, block_rows: int, first_index: int) -> tuple[list[Block], list[str]]:
    with fs.open_input_file(src.path) as f:
        records = _csv_records(f)
        try:
            header, start = next(records)
        except StopIteration:
            return [], []
        return _cut(src.path, (end for _, end in records), start, block_rows, first_index), header


def _plan_parquet(fs: pafs.FileSystem, src: SourceFile, block_rows: int, first_index: int) -> list[Block]:
    meta = pq.ParquetFile(src.path, filesystem=fs).metadata
    blocks: list[Block] = []
    row = 0
    for rg in range(meta.num_row_groups):
        n = meta.row_group(rg).num_rows
        for lo in range(0, n, block_rows):
            hi = min(n, lo + block_rows)
            blocks.append(
                Block(
                    index=first_index + len(blocks), path=src.path, start=lo, end=hi, first_row=row + lo, row_group=rg
                )
            )
        row += n
    return blocks


def _check_columns(names: list[str], text_column: str, where: str) -> None:
    """Refuse before any work: an input without the text column, or with a column the answer would overwrite."""
    if text_column not in names:
        raise ValueError(f"{where} has no column {text_column!r} (columns: {names}): see --text-column")
    clash = sorted(set(names) & set(OUTPUT_FIELDS))
    if clash:
        raise ValueError(f"{where} already has column(s) {clash}: the output would overwrite them")


def plan(input_uri: str, fmt: Format, text_column: str, block_rows: int) -> Plan:
    """Number the blocks of the input: the same input and block size always give the same plan."""
    if block_rows < 1:
        raise ValueError("block_rows must be at least 1")
    fs, path = filesystem(input_uri)
    files = _input_files(fs, path, fmt)
    blocks: list[Block] = []
    header: list[str] | None = None
    for src in files:
        if fmt == "jsonl":
            blocks += _plan_lines(fs, src, block_rows, len(blocks))
        elif fmt == "csv":
            got, this_header = _plan_csv(fs, src, block_rows, len(blocks))
            if header is not None and this_header and this_header != header:
                raise ValueError(f"{src.path}: CSV header differs from the first file's")
            header = header or this_header
            blocks += got
        else:
            _check_columns(pq.ParquetFile(src.path, filesystem=fs).schema_arrow.names, text_column, src.path)
            blocks += _plan_parquet(fs, src, block_rows, len(blocks))
    if header is not None:
        _check_columns(header, text_column, "the CSV header")
    return Plan(
        input=input_uri,
        format=fmt,
        text_column=text_column,
        block_rows=block_rows,
        files=files,
        blocks=blocks,
        csv_header=header,
    )


def part_name(index: int, fmt: Format) -> str:
    return f"part-{index:05d}.{fmt}"


def prepare_output(output_uri: str, new: Plan) -> tuple[Plan, set[int]]:
    """The plan to run (the recorded one when resuming) and the blocks already done. Refuses to mix jobs."""
    fs, out = filesystem(output_uri)
    fs.create_dir(out, recursive=True)
    plan_path = f"{out}/{PLAN_FILE}"
    if fs.get_file_info(plan_path).type == pafs.FileType.File:
        with fs.open_input_stream(plan_path) as f:
            recorded = Plan.model_validate_json(f.read())
        if not recorded.same_job(new):
            raise ValueError(
                f"{output_uri} holds another job's output (input, format, text column, block size or "
                "input files differ): choose an empty output folder"
            )
        current = recorded
    else:
        _write_atomic(fs, plan_path, new.model_dump_json(indent=1).encode())
        current = new
    names = {Path(i.path).name for i in fs.get_file_info(pafs.FileSelector(out)) if i.type == pafs.FileType.File}
    done = {b.index for b in current.blocks if part_name(b.index, current.format) in names}
    return current, done


def _write_atomic(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, path)  # a rename on local disks: the part appears whole or not at all


# --- reading and writing blocks ---------------------------------------------------------------------------------------


_MISSING = object()


@dataclass
class Rows:
    """One block's rows as read: what the writer needs to reproduce them, and each row's raw text value."""

    texts: list[object]
    records: list[Any]  # jsonl: dicts (or a stand-in for an unreadable line); csv: lists of strings
    table: pa.Table | None = None  # parquet
    unreadable: dict[int, str] | None = None  # row -> why it could not be read at all


def _as_text(value: object) -> object:
    """Undecodable bytes were kept as lone surrogates (surrogateescape); give the gates the bytes back, as the
    service would get them, so they are judged (bad_encoding) instead of silently replaced."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", errors="surrogateescape") if _only_escapes(value) else value
    return value


def _only_escapes(value: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in value)


def read_block(fs: pafs.FileSystem, plan_: Plan, block: Block) -> Rows:
    col = plan_.text_column
    if plan_.format == "parquet":
        pf = pq.ParquetFile(block.path, filesystem=fs)
        assert block.row_group is not None
        table = pf.read_row_group(block.row_group).slice(block.start, block.end - block.start)
        texts = table.column(col).to_pylist() if col in table.column_names else [_MISSING] * table.num_rows
        return Rows(texts=texts, records=[], table=table)
    with fs.open_input_file(block.path) as f:
        f.seek(block.start)
        data = f.read(block.end - block.start)
    if plan_.format == "csv":
        header = plan_.csv_header or []
        records = [r for r in csv.reader(io.StringIO(data.decode("utf-8", errors="surrogateescape"), newline="")) if r]
        pos = header.index(col) if col in header else None
        texts = [_as_text(r[pos]) if pos is not None and pos < len(r) else _MISSING for r in records]
        unreadable = {
            i: f"row has {len(r)} fields, the header {len(header)}"
            for i, r in enumerate(records)
            if len(r) != len(header)
        }
        return Rows(texts=texts, records=records, unreadable=unreadable)
    rows: list[Any] = []
    texts = []
    unreadable = {}
    for n, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8", errors="surrogateescape"))
        except ValueError as exc:
            rec = None
            why = f"line {block.first_row + n + 1} is not JSON ({exc.__class__.__name__})"
        else:
            why = f"line {block.first_row + n + 1} is a JSON {type(rec).__name__}, not an object"
        if isinstance(rec, dict):
            texts.append(_as_text(rec.get(col, _MISSING)))
            rows.append(rec)
        else:
            unreadable[len(rows)] = why
            texts.append(_MISSING)
            rows.append({"_line": block.first_row + n + 1, "_raw": line.decode("utf-8", errors="surrogateescape")})
    return Rows(texts=texts, records=rows, unreadable=unreadable)


def _answer_columns(answers: Sequence[Prediction], tag: str) -> dict[str, list[Any]]:
    return {
        "label": [a.label.value if a.label is not None else None for a in answers],
        "confidence": [a.confidence for a in answers],
        "status": [a.status.value for a in answers],
        "reason": [a.reason for a in answers],
        "model_version": [tag] * len(answers),
    }


def render_block(plan_: Plan, rows: Rows, answers: Sequence[Prediction], tag: str) -> bytes:
    """The block's rows unchanged, each followed by its answer, in the input's format."""
    cols = _answer_columns(answers, tag)
    if plan_.format == "parquet":
        assert rows.table is not None
        table = rows.table
        types = {"confidence": pa.float64()}
        for name in OUTPUT_FIELDS:
            table = table.append_column(name, pa.array(cols[name], type=types.get(name, pa.string())))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return bytes(sink.getvalue().to_pybytes())
    if plan_.format == "csv":
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*(plan_.csv_header or []), *OUTPUT_FIELDS])
        for i, record in enumerate(rows.records):
            writer.writerow([*record, *("" if cols[n][i] is None else cols[n][i] for n in OUTPUT_FIELDS)])
        return buf.getvalue().encode("utf-8", errors="surrogateescape")
    out = bytearray()
    for i, record in enumerate(rows.records):
        row = {**record, **{n: cols[n][i] for n in OUTPUT_FIELDS}}
        line = json.dumps(row, ensure_ascii=False)
        try:
            out += line.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate that was a JSON escape, not a byte: keep it escaped
            out += json.dumps(row).encode()
        out += b"\n"
    return bytes(out)


# --- scoring --------------------------------------------------------------------------------------------------------


class ModelRef(BaseModel):
    """Where the serving model's files are and what they are; resolved once by the driver, loaded by each actor.
    On a cluster the path must be readable on every node (a shared filesystem or the same store)."""

    path: str
    metadata: ModelMetadata
    tag: str


def resolve_model(settings: Settings, tag: str | None = None) -> ModelRef:
    """The model the service would load: a pinned or given version, else the champion."""
    from sentiment.model.aliases import require_serving_tag
    from sentiment.model.registry import resolve

    path, meta, full_tag = resolve(tag or require_serving_tag(settings.model))
    return ModelRef(path=str(path), metadata=meta, tag=full_tag)


class _Tier1:
    """The model as the transformer runner calls it (``batch_size`` from the settings)."""

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model, self.batch_size = model, batch_size

    def predict(self, texts: Sequence[str]) -> Any:
        return self.model.predict(texts, batch_size=self.batch_size)

    def predict_outputs(self, texts: Sequence[str]) -> Any:
        return self.model.predict_outputs(texts, batch_size=self.batch_size)


def load_model(settings: Settings, model: ModelRef) -> Any:
    """The serving model exactly as the transformer runner loads it (threads, backend, ONNX cache)."""
    from sentiment.model.inference import SentimentModel

    svc = settings.service
    return SentimentModel(
        model.path,
        model.metadata,
        model.tag,
        svc.inference_threads,
        backend=svc.backend,
        onnx_cache=settings.paths.data_dir / "onnx",
    )


def prepare_model(settings: Settings, model: ModelRef) -> str:
    """Load the model once before the pool starts, so its ONNX export is cached: actors exporting at the same time
    trip over each other's temporary files (onnxruntime's quantiser writes a fixed ``*-inferred.onnx`` name) and
    one of them falls back to PyTorch, whose answers differ from the service's in the last digits."""
    loaded = load_model(settings, model)
    return str(loaded.backend)


class BlockScorer:
    """One Ray actor: loads the serving model once, then scores whole blocks, writing each block's part file."""

    def __init__(self, plan_json: str, output_uri: str, settings: Settings, model: ModelRef) -> None:
        from sentiment.language_id import warm_up

        self.plan = Plan.model_validate_json(plan_json)
        self.blocks = {b.index: b for b in self.plan.blocks}
        self.fs_in, _ = filesystem(self.plan.input)
        self.fs_out, self.out = filesystem(output_uri)
        loaded = load_model(settings, model)
        self.backend = str(loaded.backend)
        if self.backend != settings.service.backend:
            log.warning(
                "model on %s, not %s: answers may differ from the service's", self.backend, settings.service.backend
            )
        self.tag = model.tag
        self.tiers = LocalTiers(_Tier1(loaded, settings.model.inference_batch_size), settings.gates)
        # No pressure and no budget: see the module docstring. overlap=False: the language gate first, then the
        # model on what it accepted; the same answers as the service's overlap (tier 1 answers text by text).
        self.sequence = TierSequence(self.tiers, settings.gates, overlap=False)
        self.queue = HumanQueue.from_settings(settings)
        self.loop = asyncio.new_event_loop()
        warm_up()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        summaries = [self.score(self.blocks[int(i)]) for i in batch["block"]]
        return {k: [s[k] for s in summaries] for k in summaries[0]} if summaries else {}

    def score(self, block: Block) -> dict[str, Any]:
        start = time.perf_counter()
        final = f"{self.out}/{part_name(block.index, self.plan.format)}"
        if self.fs_out.get_file_info(final).type == pafs.FileType.File:  # finished since the driver looked
            return _summary(block, [], 0, start, self.backend, skipped=True)
        rows = read_block(self.fs_in, self.plan, block)
        answers, escalated = self.answer(block, rows)
        # Escalations before the part: a kill in between queues a review twice (same request id), never zero times.
        _write_atomic(self.fs_out, final, render_block(self.plan, rows, answers, self.tag))
        return _summary(block, answers, escalated, start, self.backend)

    def answer(self, block: Block, rows: Rows) -> tuple[list[Prediction], int]:
        ids = [f"batch-{self.plan.job_id}-{block.index:05d}-{i:06d}" for i in range(len(rows.texts))]
        out: list[Prediction | None] = [None] * len(rows.texts)
        unreadable = rows.unreadable or {}
        for i, why in unreadable.items():
            out[i] = Prediction.rejected(Reason.invalid_input, why)
        for i, text in enumerate(rows.texts):
            if text is _MISSING and i not in unreadable:
                out[i] = Prediction.rejected(Reason.invalid_input, f"no '{self.plan.text_column}' field")
        todo = [i for i, p in enumerate(out) if p is None]
        escalated = 0
        for lo in range(0, len(todo), SEQUENCE_CHUNK):
            chunk = todo[lo : lo + SEQUENCE_CHUNK]
            raws = [rows.texts[i] for i in chunk]
            traced = self.loop.run_until_complete(self.sequence.run(raws, [ids[i] for i in chunk]))
            escalated += sum(t.escalation is not None for t in traced)
            for i, t in zip(chunk, self.queue.escalate(traced), strict=True):
                out[i] = t.prediction
        return [p if p is not None else _no_answer(ids[i]).prediction for i, p in enumerate(out)], escalated


def _no_answer(request_id: str) -> Traced:  # unreachable: the sequence answers every text
    return Traced(
        prediction=Prediction.fallback(Reason.internal_error, "no answer", None, 0.0),
        trace=Trace(request_id=request_id, tier="gate"),
    )


def _summary(
    block: Block, answers: Sequence[Prediction], escalated: int, start: float, backend: str, skipped: bool = False
) -> dict[str, Any]:
    import psutil

    statuses = [a.status.value for a in answers]
    return {
        "block": block.index,
        "rows": len(answers),
        "skipped": skipped,
        "ok": statuses.count("ok"),
        "fallback": statuses.count("fallback"),
        "rejected": statuses.count("rejected"),
        "escalated": escalated,
        "seconds": time.perf_counter() - start,
        "pid": os.getpid(),
        "backend": backend,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


class JobResult(BaseModel):
    output: str
    format: Format
    blocks: int
    blocks_scored: int
    blocks_skipped: int
    rows: int
    ok: int
    fallback: int
    rejected: int
    escalated: int
    seconds: float  # wall time from planning to the last part, model loading included
    rows_per_s: float
    actor_busy_s: float  # time the actors spent on blocks (reading, scoring, writing), summed over actors
    actors: int
    model_version: str
    backends: list[str]  # what the actors ran tier 1 on (the service's backend unless an export failed)
    actor_peak_rss_mb: dict[str, float]


def run_job(
    input_uri: str,
    output_uri: str,
    settings: Settings,
    model: ModelRef,
    *,
    fmt: str | None = None,
    text_column: str = "text",
    block_rows: int = 1000,
    actors: int = 2,
) -> JobResult:
    """Score every block not yet written, on the Ray cluster this process is connected to (see :func:`ray_session`)."""
    import ray

    fmt_ = detect_format(input_uri, fmt)
    job, done = prepare_output(output_uri, plan(input_uri, fmt_, text_column, block_rows))
    todo = [b.index for b in job.blocks if b.index not in done]
    start = time.perf_counter()
    totals = {"rows": 0, "ok": 0, "fallback": 0, "rejected": 0, "escalated": 0, "scored": 0}
    busy = 0.0
    peaks: dict[str, float] = {}
    backends: set[str] = set()
    pool = max(1, min(actors, len(todo)))
    if todo:
        log.info("%d of %d blocks to score (%d done before), %d actors", len(todo), len(job.blocks), len(done), pool)
        ray.get(ray.remote(num_cpus=1)(prepare_model).remote(settings, model))
        ds = ray.data.from_items([{"block": i} for i in todo], override_num_blocks=len(todo))
        scored = ds.map_batches(
            BlockScorer,
            fn_constructor_kwargs={
                "plan_json": job.model_dump_json(),
                "output_uri": output_uri,
                "settings": settings,
                "model": model,
            },
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=1,
        )
        for s in scored.iter_rows():
            if s["skipped"]:
                continue
            totals["scored"] += 1
            for k in ("rows", "ok", "fallback", "rejected", "escalated"):
                totals[k] += int(s[k])
            peaks[str(s["pid"])] = max(peaks.get(str(s["pid"]), 0.0), float(s["peak_rss_mb"]))
            backends.add(str(s["backend"]))
            busy += float(s["seconds"])
    seconds = time.perf_counter() - start
    result = JobResult(
        output=output_uri,
        format=fmt_,
        blocks=len(job.blocks),
        blocks_scored=totals["scored"],
        blocks_skipped=len(job.blocks) - totals["scored"],
        rows=totals["rows"],
        ok=totals["ok"],
        fallback=totals["fallback"],
        rejected=totals["rejected"],
        escalated=totals["escalated"],
        seconds=seconds,
        rows_per_s=totals["rows"] / seconds if seconds > 0 else 0.0,
        actor_busy_s=busy,
        actors=pool if todo else 0,
        model_version=model.tag,
        backends=sorted(backends),
        actor_peak_rss_mb=peaks,
    )
    fs, out = filesystem(output_uri)
    _, done_now = prepare_output(output_uri, job)
    if len(done_now) == len(job.blocks):
        _write_atomic(fs, f"{out}/{SUMMARY_FILE}", result.model_dump_json(indent=1).encode())
    return result


@contextmanager
def ray_session(num_cpus: int | None = 2, address: str | None = None) -> Iterator[None]:
    """Connect to a cluster (``address``) or start a local Ray with at most ``num_cpus`` CPUs; always shut down.
    Already connected: use that connection and leave it open (the caller owns it)."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from an offline or private machine
    repo = str(Path(__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
    runtime_env = {"env_vars": {"PYTHONPATH": pythonpath}}  # actors import this checkout's code
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env, object_store_memory=256 * 2**20)
    try:
        yield
    finally:
        _shutdown_local(address is None)


def _shutdown_local(local: bool, timeout_s: float = 60.0) -> None:
    """``ray.shutdown`` and, for a local instance, wait until the processes it started (GCS, raylet, workers, all
    descendants of this process) are gone; any still there after ``timeout_s`` are killed by their id."""
    import psutil
    import ray

    started = psutil.Process().children(recursive=True) if local else []
    ray.shutdown()
    _, alive = psutil.wait_procs(started, timeout=timeout_s)
    for proc in alive:
        log.warning("Ray process %d outlived the shutdown; killing it", proc.pid)
        proc.kill()
