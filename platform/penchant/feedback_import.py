"""``penchant feedback import``: feedback files into the run store, batch by batch.

CSV (a header row naming the columns) or JSON lines (one object per line), chosen by the
file's suffix, gzip-compressed when it ends in ``.gz``. Columns: ``run_id`` (unless the
import gives the run), ``user``, ``item``, ``time``, ``kind``, and optionally ``rank`` and
``note``; others are ignored and named.

Each batch is checked, then stored in one transaction. A batch with a bad value stores
nothing and stops the import with every bad value in it named by file, line and column;
the batches before it stay stored. Because the store skips events it already holds,
importing the same file again, once fixed or after a crash midway, stores each event
exactly once.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from penchant import feedback
from penchant.errors import DataError
from penchant.store import RunStore

CSV_SUFFIXES = (".csv", ".tsv")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass
class ImportResult:
    rows: int = 0
    batches: int = 0
    recorded: feedback.Recorded = field(default_factory=feedback.Recorded)
    ignored_columns: list[str] = field(default_factory=list)


def import_file(path: str | Path, store: RunStore, run_id: int | None = None,
                batch: int | None = None, registry: Any = None) -> ImportResult:
    """Check and store every row of ``path``; see the module's description."""
    path = Path(path)
    batches = read_batches(path, feedback.batch_size(batch))
    result = ImportResult()
    origin = f"import {path.name}"
    while True:
        lines: list[int] = []
        try:
            raw, lines = next(batches, (None, []))
            if raw is None:
                break
            extra = set(raw.columns) - set(feedback.COLUMNS) - set(result.ignored_columns)
            result.ignored_columns += sorted(extra)
            checked = feedback.check(raw, str(path), lines, run_id, store)
        except DataError as exc:
            raise DataError(f"{exc}\n{_nothing_stored(result, lines)}") from None
        result.recorded.add(feedback.record(store, checked, origin, registry, batch=len(raw)))
        result.rows += len(raw)
        result.batches += 1
    return result


def _nothing_stored(result: ImportResult, lines: list[int]) -> str:
    batch = f"lines {lines[0]}–{lines[-1]}" if lines else "the batch it is in"
    before = (f"the {result.rows} row(s) before it were ({result.recorded.stored} new)"
              if result.rows else "nothing before it was")
    return (f"Nothing from {batch} was stored, {before}. Fix the file and import it "
            "again: events already stored are skipped.")


def read_batches(path: Path, size: int) -> Iterator[tuple[pd.DataFrame, list[int]]]:
    """Raw rows (values as text or JSON values) ``size`` at a time, with their lines."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(CSV_SUFFIXES):
        records = _csv_records(path, "\t" if name.endswith(".tsv") else ",")
    elif name.endswith(JSON_SUFFIXES):
        records = _json_records(path)
    else:
        raise DataError(f"{path}: feedback files are CSV (.csv, .tsv) or JSON lines "
                        "(.jsonl, .ndjson, .json), optionally gzip-compressed (.gz)")
    if not path.is_file():
        raise DataError(f"{path}: no such feedback file")
    return _batches(records, size)


def _batches(records: Iterator[tuple[int, dict[str, Any]]], size: int
             ) -> Iterator[tuple[pd.DataFrame, list[int]]]:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for line, record in records:
        rows.append(record)
        lines.append(line)
        if len(rows) == size:
            yield pd.DataFrame(rows, dtype=object), lines
            rows, lines = [], []
    if rows:
        yield pd.DataFrame(rows, dtype=object), lines


def _open(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _csv_records(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = [name.strip() for name in next(reader)]
            for fields in reader:
                if not fields or fields == [""]:
                    continue
                if len(fields) > len(header):
                    raise DataError(f"{path} line {reader.line_num}: {len(fields)} fields but "
                                    f"the header names {len(header)}")
                yield reader.line_num, dict(zip(header, fields, strict=False))
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
            raise DataError(f"{path} line {reader.line_num}: cannot be read as CSV: "
                            f"{exc}") from None


def _json_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open(path) as fh:
        number = 0
        try:
            for number, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path} line {number}, column {exc.colno}: not valid "
                                    f"JSON: {exc.msg}") from None
                except RecursionError:  # the decoder recurses per level of nesting
                    raise DataError(f"{path} line {number}: arrays or objects nested "
                                    "hundreds of levels deep; a feedback event is one flat "
                                    "JSON object") from None
                if not isinstance(record, dict):
                    raise DataError(f"{path} line {number}: expected a JSON object such as "
                                    '{"user": …, "item": …, "time": …, "kind": …}')
                column = _not_text(record)
                if column is not None:
                    raise DataError(f"{path} line {number}, column {column!r}: holds a lone "
                                    "surrogate escape (\\ud800 to \\udfff), which is no "
                                    "character; write the character itself")
                yield number, record
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
            raise DataError(f"{path} line {number + 1}: cannot be read: {exc}") from None


def _not_text(record: dict[str, Any]) -> str | None:
    """The first key whose name or value UTF-8 cannot encode. JSON can escape half of a
    surrogate pair ("\\ud800"), which decodes to no character: pandas' text columns and
    the store would fail on it with an error that names no line."""
    for key, value in record.items():
        try:
            key.encode("utf-8")
            if isinstance(value, str):
                value.encode("utf-8")
        except UnicodeEncodeError:
            return key
    return None
