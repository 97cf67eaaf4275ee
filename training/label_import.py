"""Labels made elsewhere (Label Studio, Argilla, a spreadsheet): a CSV or JSON Lines file of text and label, checked
and appended to the operators' labels file, where retraining and the gate read them like any other label.

A row needs a text (column ``text``) and a label (column ``label`` or ``sentiment``: negative, neutral or positive,
any case). Each row becomes its own label record, so duplicates and conflicting labels for the same text are merged
and counted exactly as for labels made in the dashboard (:func:`training.evalset.load_human_labels`).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sentiment.contract import LABELS, Label
from sentiment.jsonl import append_records
from sentiment.records import HumanLabel
from sentiment.settings import Settings
from sentiment.validation import Validated, validate
from training.evalset import HumanLabelStats, load_human_labels

TEXT_COLUMNS = ("text",)
LABEL_COLUMNS = ("label", "sentiment")


class ImportResult(BaseModel):
    file: str
    rows: int
    imported: int
    unreadable: int  # not a JSON object / no text or label column
    unknown_label: int
    rejected_text: int  # fails the serving input checks (empty, too short or long, bad encoding)
    labels_file: str
    merged: HumanLabelStats  # every label in the labels file after the import, as retraining reads it


class LabelFileError(Exception):
    """The file cannot be read as CSV or JSON Lines of text and label."""


def _rows(path: Path) -> Iterator[dict[str, Any] | None]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {c.strip().lower() for c in reader.fieldnames} & set(TEXT_COLUMNS):
                raise LabelFileError(f"{path}: no 'text' column (columns: {reader.fieldnames})")
            for row in reader:
                yield {(k or "").strip().lower(): v for k, v in row.items()}
        return
    if path.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        raise LabelFileError(f"{path}: expected .csv or .jsonl")
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                yield None
                continue
            yield {str(k).lower(): v for k, v in raw.items()} if isinstance(raw, dict) else None


def _first(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next((row[n] for n in names if row.get(n) not in (None, "")), None)


def import_labels(path: Path, settings: Settings, labeller: str = "") -> ImportResult:
    """Check every row, append the good ones as labels (one write), and return what happened to each kind."""
    stamp = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    who = labeller or f"import:{path.name}"
    rows = unreadable = unknown = rejected = 0
    records: list[HumanLabel] = []
    for i, row in enumerate(_rows(path)):
        rows += 1
        text = _first(row, TEXT_COLUMNS) if row is not None else None
        label = _first(row, LABEL_COLUMNS) if row is not None else None
        if not isinstance(text, str) or label is None:
            unreadable += 1
            continue
        name = str(label).strip().lower()
        if name not in LABELS:
            unknown += 1
            continue
        if not isinstance(validate(text, settings.gates), Validated):
            rejected += 1
            continue
        records.append(HumanLabel(request_id=f"import-{stamp}-{i}", text=text, label=Label(name), labeller=who))
    labels_file = settings.paths.human_labels
    if records:
        labels_file.parent.mkdir(parents=True, exist_ok=True)
        append_records(labels_file, records, fsync=True)
    return ImportResult(
        file=str(path),
        rows=rows,
        imported=len(records),
        unreadable=unreadable,
        unknown_label=unknown,
        rejected_text=rejected,
        labels_file=str(labels_file),
        merged=load_human_labels(labels_file, settings.gates, max_conflict_examples=0).stats,
    )
