"""Batch scoring (batch/job.py) without Ray: the input format, the block plan (the same every time, CSV fields
with line breaks kept whole), an output folder of another job refused, and a bad text column refused before any work.
The jobs themselves run on Ray in tests/batch/.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.job import detect_format, plan, prepare_output


def test_format_comes_from_the_extension_or_the_flag() -> None:
    assert detect_format("a/b.jsonl") == "jsonl" and detect_format("x.CSV") == "csv"
    assert detect_format("s3://bucket/part.parquet") == "parquet" and detect_format("data.txt", "csv") == "csv"
    with pytest.raises(ValueError, match="decompress"):
        detect_format("reviews.jsonl.gz")
    with pytest.raises(ValueError, match="--format"):
        detect_format("reviews.txt")


def test_blocks_are_numbered_the_same_way_every_time_and_csv_fields_may_hold_line_breaks(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(10):
            w.writerow([i, f'line one\nline two of review {i}, "quoted"'])
    first = plan(str(src), "csv", "text", 3)
    assert [b.first_row for b in first.blocks] == [0, 3, 6, 9]
    assert first == plan(str(src), "csv", "text", 3) and first.csv_header == ["id", "text"]
    data = src.read_bytes()
    chunks = [list(csv.reader(io.StringIO(data[b.start : b.end].decode(), newline=""))) for b in first.blocks]
    assert [[r[0] for r in c] for c in chunks] == [["0", "1", "2"], ["3", "4", "5"], ["6", "7", "8"], ["9"]]


def test_an_output_folder_of_another_job_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"text": "x"}\n' * 5)
    b.write_text('{"text": "y"}\n' * 5)
    prepare_output(str(tmp_path / "out"), plan(str(a), "jsonl", "text", 2))
    with pytest.raises(ValueError, match="another job"):
        prepare_output(str(tmp_path / "out"), plan(str(b), "jsonl", "text", 2))
    with pytest.raises(ValueError, match="another job"):
        prepare_output(str(tmp_path / "out"), plan(str(a), "jsonl", "text", 3))


def test_a_missing_text_column_or_one_named_like_an_answer_field_is_refused_before_any_work(tmp_path: Path) -> None:
    pq.write_table(pa.table({"text": ["a review"], "label": ["positive"]}), tmp_path / "in.parquet")
    with pytest.raises(ValueError, match="label"):
        plan(str(tmp_path / "in.parquet"), "parquet", "text", 10)
    with pytest.raises(ValueError, match="--text-column"):
        plan(str(tmp_path / "in.parquet"), "parquet", "review_body", 10)
    (tmp_path / "in.csv").write_text("id,body\n1,a fine review\n")
    with pytest.raises(ValueError, match="--text-column"):
        plan(str(tmp_path / "in.csv"), "csv", "text", 10)
    assert len(plan(str(tmp_path / "in.csv"), "csv", "body", 10).blocks) == 1
