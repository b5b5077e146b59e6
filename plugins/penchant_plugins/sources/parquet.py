"""The built-in Parquet source: events, and optional item/user side tables, from Parquet files.

``path`` is one file or a folder of them, hive partitions included (``date=2024-01-01/…``:
the partition keys become columns that can be mapped like any other). Only the mapped columns
are read, in record batches of at most ``chunk_size`` rows, and each batch is handed to the
events builder and dropped, so memory follows the mapped columns and the chunk size plus the
typed result, not the files.

Every event keeps ``row``, its ordinal in the data (from 1, files in sorted path order), so a
bad value can be found again. That is why the ``since``/``until`` window is pushed down to
whole row groups and partitions (skipped by their statistics and keys, from the metadata) and
not as a row filter: a row filter would hide which rows it removed, and with them every later
row's ordinal. The builder then keeps the window exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from penchant import EPOCH_MS_FROM, DataError, Dataset, Events, Param, PipelineError, Source
from penchant_plugins.sources._side_tables import (
    SIDE_TABLE_IDS,
    check_side_table_specs,
    index_by_id,
)

if TYPE_CHECKING:
    from penchant import Context, ParamValues

#: Values whose magnitude decides what ``time_unit = "auto"`` means when statistics cannot.
TIME_SAMPLE = 1000
#: Record batches decoded ahead of the one being converted: enough to keep the reader busy,
#: few enough that memory still follows ``chunk_size``.
READAHEAD = 1
#: Suffixes of text files that a side table of this source cannot be.
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".bz2", ".zip", ".xz", ".zst")
_SOURCE_FILE = re.compile(r"Could not open Parquet input source '([^']+)'")
#: What pyarrow says of a file that is not Parquet at all (as opposed to a damaged one).
_NOT_PARQUET = ("magic bytes not found", "smaller than the minimum file footer")
_NANOSECONDS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@dataclass(frozen=True)
class _Part:
    """A run of consecutive row groups of one file, and the ordinal of its first row."""

    fragment: ds.ParquetFileFragment
    start: int
    rows: int


class ParquetSource(Source):
    """Events from a Parquet file or a folder of them (hive-partitioned or not)."""

    name = "parquet"
    description = "Events (and item/user tables) from Parquet files or partitioned folders"
    params = (
        Param("path", "path", required=True,
              help="a .parquet file or a folder of them (hive partitions such as "
                   "date=2024-01-01/ become columns); relative paths start at the pipeline "
                   "file's folder"),
        Param("chunk_size", "int", 500_000, min=1,
              help="rows converted at a time; lower it to use less memory while loading"),
    )

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: str | Path | None = None) -> None:
        super().__init__(params, where, base_dir)
        where = where or f"[{self.name}]"
        check_side_table_specs(self.params, where, "path", "Parquet files", "{kind}.parquet")
        for kind in SIDE_TABLE_IDS:
            spec = self.params[kind]
            if spec is not None and spec["path"].lower().endswith(_TEXT_SUFFIXES):
                raise PipelineError(f"{where}: key {kind!r}: {spec['path']!r} looks like a text "
                                    "file; the parquet source reads side tables from Parquet "
                                    "files only, so convert it to Parquet (or read everything "
                                    "with plugin = \"csv\")")
        self.path = self.resolve_path(self.params.path)

    def describe_origin(self) -> str:
        return str(self.path)

    def available_columns(self) -> list[str]:
        return list(open_dataset(self.path, self.params.path).schema.names)

    def load(self, ctx: Context) -> Dataset:
        dataset = open_dataset(self.path, self.params.path)
        self._check_mapping(dataset.schema.names)
        events = self._read_events(dataset, ctx)
        return Dataset(events, items=self._side_table("items"), users=self._side_table("users"),
                       provenance=(f"parquet: {len(events)} events from {self.path}",))

    def _check_mapping(self, columns: list[str]) -> None:
        missing = [f"columns.{key} = {col!r}" for key, col in self.params.columns.items()
                   if col not in columns]
        if missing:
            has = "the file has" if self.path.is_file() else "its files have"
            raise DataError(f"{self.path}: no column for {'; '.join(missing)}; {has} "
                            f"{', '.join(map(repr, columns))}")

    def _read_events(self, dataset: ds.FileSystemDataset, ctx: Context) -> Events:
        schema = dataset.schema
        fragments = sorted_fragments(dataset, self.path)
        time_field = schema.field(self.params.columns["time"])
        unit = self._time_unit(dataset, fragments, time_field)
        window = window_filter(time_field, unit, *self.window())
        total = sum(f.metadata.num_rows for f in fragments)
        builder = self.events_builder(ctx, str(self.path), total=total, time_unit=unit)
        projection = list(dict.fromkeys(self.params.columns.values()))
        ids = {self.params.columns[key] for key in ("user", "item")}
        done = 0  # rows of the data passed, read or skipped, when progress was last given
        with arrow_errors(self.path):
            for part in parts(fragments, window, schema, self.params.chunk_size):
                position = part.start
                batches = part.fragment.to_batches(
                    schema=schema, columns=projection, batch_size=self.params.chunk_size,
                    batch_readahead=READAHEAD, fragment_readahead=1)
                with arrow_errors(Path(part.fragment.path)):
                    for batch in batches:
                        if not batch.num_rows:
                            continue
                        frame = self._canonical(to_frame(batch, ids), position)
                        position += batch.num_rows
                        builder.add(frame, consumed=position - done)
                        done = position
                        del batch, frame
        if done < total:
            ctx.progress("load", total, total)
        return builder.finish()

    def _time_unit(self, dataset: ds.FileSystemDataset, fragments: list[ds.Fragment],
                   field: pa.Field) -> str:
        """``time_unit``, with ``"auto"`` settled once for the whole data.

        Pushing the window down needs to know what a number means before reading any, and
        settling it once keeps every chunk read alike. Statistics decide when every row
        group has them (metadata only); otherwise the first values do, as in the csv source.
        """
        unit = self.params.time_unit
        kind = _value_type(field.type)
        if unit != "auto" or pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            return unit
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if numeric:
            decided = _unit_from_statistics(fragments, field.name)
            if decided:
                return decided
        sample = dataset.head(TIME_SAMPLE, columns=[field.name]).column(0).to_pandas()
        if isinstance(sample.dtype, pd.CategoricalDtype):
            sample = sample.astype("string")
        numbers = pd.to_numeric(sample.dropna(), errors="coerce")
        if numbers.empty or (not numeric and numbers.notna().mean() < 0.5):
            return "auto" if numbers.empty else "iso"
        return "ms" if numbers.abs().median() > EPOCH_MS_FROM else "s"

    def _canonical(self, frame: pd.DataFrame, start: int) -> pd.DataFrame:
        """Mapped columns under canonical names, plus ``row``, the ordinal from 1."""
        out = pd.DataFrame({key: frame[col] for key, col in self.params.columns.items()},
                           copy=False)
        out["row"] = np.arange(start + 1, start + 1 + len(out), dtype=np.int64)
        return out

    def _side_table(self, kind: str) -> pd.DataFrame | None:
        spec = self.params[kind]
        if spec is None:
            return None
        path = self.resolve_path(spec["path"])
        dataset = open_dataset(path, spec["path"])
        id_column = spec.get("id", self.params.columns[SIDE_TABLE_IDS[kind]])
        if id_column not in dataset.schema.names:
            return index_by_id(pd.DataFrame(columns=dataset.schema.names), id_column,
                               SIDE_TABLE_IDS[kind], str(path))
        with arrow_errors(path):
            tables = [f.to_table(schema=dataset.schema)
                      for f in sorted_fragments(dataset, path)]
        table = pa.concat_tables(tables) if tables else dataset.schema.empty_table()
        return index_by_id(to_frame(table, {id_column}), id_column, SIDE_TABLE_IDS[kind],
                           str(path))


def open_dataset(path: Path, given: str) -> ds.FileSystemDataset:
    """The Parquet data at ``path``, or a :class:`DataError` saying why there is none."""
    shown = f"{path}" if given == str(path) else f"{path} (from {given!r})"
    if not path.exists():
        raise DataError(f"{shown}: does not exist")
    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{shown}: {_reason(exc, path)}") from exc
    if not dataset.files:
        raise DataError(f"{shown}: the folder holds no Parquet files")
    return dataset


@contextmanager
def arrow_errors(path: Path) -> Iterator[None]:
    """Re-raise what pyarrow raises on a damaged or foreign file as an error naming it."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: {_reason(exc, path)}") from exc


def _reason(exc: BaseException, path: Path) -> str:
    """pyarrow's message, shortened to the file at fault when it is not Parquet at all."""
    text = str(exc).strip() or type(exc).__name__
    if not any(sign in text for sign in _NOT_PARQUET):
        return f"cannot be read as Parquet: {text}"
    found = _SOURCE_FILE.search(text)
    culprit = "" if found is None or Path(found.group(1)) == path else f"{found.group(1)} is "
    return (f"{culprit}not a Parquet file (no Parquet footer); the parquet source reads only "
            "Parquet files (for CSV use plugin = \"csv\")")


def sorted_fragments(dataset: ds.FileSystemDataset, path: Path) -> list[ds.Fragment]:
    """Fragments in path order, footers read, so row ordinals do not depend on discovery."""
    fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
    with arrow_errors(path):
        for fragment in fragments:
            fragment.ensure_complete_metadata()
    return fragments


def parts(fragments: list[ds.Fragment], window: pc.Expression | None, schema: pa.Schema,
          chunk_size: int) -> Iterator[_Part]:
    """What to read, scan by scan: runs of consecutive row groups the window may reach.

    Row groups are kept by their statistics and partition keys; a run's rows are consecutive
    in the file, so their ordinals follow from the run's first. A run stops once it holds
    ``chunk_size`` rows: pyarrow decodes a scan's row groups ahead of the batches asked
    for, so one scan over a whole file would hold most of it in memory at once.
    """
    start = 0
    for fragment in fragments:
        groups = fragment.row_groups
        offsets = np.concatenate([[0], np.cumsum([g.num_rows for g in groups])]).astype(int)
        if window is None:
            kept = [g.id for g in groups]
        else:
            kept = [g.row_groups[0].id for g in fragment.split_by_row_group(window, schema)]
        for run in _runs(kept, [g.num_rows for g in groups], chunk_size):
            subset = (fragment if len(run) == len(groups)
                      else fragment.subset(row_group_ids=run))
            yield _Part(subset, start + int(offsets[run[0]]),
                        int(offsets[run[-1] + 1] - offsets[run[0]]))
        start += fragment.metadata.num_rows


def _runs(ids: list[int], sizes: list[int], limit: int) -> list[list[int]]:
    """``ids`` in order, cut where they are not consecutive or a run reaches ``limit`` rows."""
    runs: list[list[int]] = []
    rows = 0
    for i in sorted(ids):
        if runs and runs[-1][-1] == i - 1 and rows < limit:
            runs[-1].append(i)
            rows += sizes[i]
        else:
            runs.append([i])
            rows = sizes[i]
    return runs


def window_filter(field: pa.Field, unit: str, since: pd.Timestamp | None,
                  until: pd.Timestamp | None) -> pc.Expression | None:
    """``since <= time < until`` in the column's own terms, or None when it cannot be said.

    Bounds are rounded outwards (and clamped to the type), so the filter never keeps fewer
    rows than the window: it only decides what to skip, the builder decides exactly.
    """
    if since is None and until is None:
        return None
    kind = field.type
    if pa.types.is_timestamp(kind):
        per = _NANOSECONDS[kind.unit]
        slack = 0
    elif pa.types.is_integer(kind) and unit in ("s", "ms"):
        per, slack = _NANOSECONDS[unit], 0
    elif pa.types.is_floating(kind) and unit in ("s", "ms"):
        per, slack = _NANOSECONDS[unit], 1
    else:
        return None
    column = pc.field(field.name)
    terms = []
    if since is not None:
        terms.append(column >= _literal(since.value // per - slack, kind))
    if until is not None:
        terms.append(column < _literal(-(-until.value // per) + slack, kind))
    return terms[0] if len(terms) == 1 else terms[0] & terms[1]


def _literal(value: int, kind: pa.DataType) -> pa.Scalar:
    """``value`` as a scalar of the column's type, clamped to what that type can hold."""
    if pa.types.is_integer(kind):
        info = np.iinfo(kind.to_pandas_dtype())
        value = min(max(value, int(info.min)), int(info.max))
    elif pa.types.is_floating(kind):
        return pa.scalar(float(value), type=kind)
    return pa.scalar(value, type=kind)


def _value_type(kind: pa.DataType) -> pa.DataType:
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def _unit_from_statistics(fragments: list[ds.Fragment], column: str) -> str | None:
    """``"s"`` or ``"ms"`` when every row group's min/max agree on one; ``"auto"`` when they
    show both (each value is then read on its own, and nothing is pushed down); None when
    some row group has no statistics."""
    low, high, seen = np.inf, -np.inf, False
    for fragment in fragments:
        for group in fragment.row_groups:
            if not group.num_rows:
                continue
            stats = group.statistics.get(column)
            if not stats or stats.get("min") is None or stats.get("max") is None:
                return None
            low, high, seen = min(low, stats["min"]), max(high, stats["max"]), True
    if not seen:
        return None
    magnitudes = (abs(low), abs(high))
    if max(magnitudes) < EPOCH_MS_FROM:
        return "s"
    if min(magnitudes) > EPOCH_MS_FROM and (low > 0 or high < 0):
        return "ms"
    return "auto"


_NULLABLE_INTS = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                  pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
                  pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                  pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}


def to_frame(data: pa.RecordBatch | pa.Table, ids: set[str]) -> pd.DataFrame:
    """pandas columns the builder types without detours.

    Timestamps and dates arrive as datetime64 (not objects), strings as pandas strings and
    dictionaries as categoricals. Integer ``ids`` with nulls stay integers (nullable):
    as floats, ids past 2**53 (snowflake ids) would silently merge.
    """
    columns = {}
    for name, array in zip(data.column_names, data.columns, strict=True):
        if name in ids and pa.types.is_integer(array.type) and array.null_count:
            columns[name] = array.to_pandas(types_mapper=_NULLABLE_INTS.get)
        else:
            columns[name] = array.to_pandas(date_as_object=False)
    return pd.DataFrame(columns, copy=False)
