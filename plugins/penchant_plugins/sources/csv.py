"""The built-in CSV source: events, and optional item/user side tables, from delimited files.

The events file is read in chunks of text columns; each chunk is typed at once (categorical
ids, UTC times) and only that compact form is kept, so memory follows the events, not the
text. Every event keeps ``row``, its line in the file, so a bad value can be reported where
the user will find it. Line numbers assume one record per line: blank lines are counted (and
skipped), but a quoted field spanning lines shifts the numbers after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pandas.io.common import get_handle

from penchant import DataError, Dataset, Events, Param, PipelineError, Source
from penchant_plugins.sources._csvfiles import (
    check_no_implicit_index,
    csv_errors,
    estimate_rows,
    normalise_delimiter,
    read_header,
    require_file,
)
from penchant_plugins.sources._side_tables import (
    SIDE_TABLE_IDS,
    check_side_table_specs,
    load_side_table,
)

if TYPE_CHECKING:
    from penchant import Context, ParamValues

#: Lines whose times decide what ``time_unit = "auto"`` means for the whole file.
TIME_SAMPLE = 1000


class CsvSource(Source):
    """Events from one CSV/TSV file; compression (.gz, .bz2, .zip, .xz, .zst) by file name."""

    name = "csv"
    description = "Events (and item/user tables) from CSV or TSV files, compressed or not"
    params = (
        Param("path", "path", required=True,
              help="events file; relative paths start at the pipeline file's folder"),
        Param("delimiter", "str", ",", help="field separator: one character, or \"tab\""),
        Param("header", "bool", True, help="whether the first line names the columns"),
        Param("names", "list", items="str",
              help="column names for a file without a header (they replace a header)"),
        Param("encoding", "str", "utf-8", help="text encoding, e.g. \"latin-1\""),
        Param("chunk_size", "int", 200_000, min=1,
              help="lines read at a time; lower it to use less memory while loading"),
    )

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: str | Path | None = None) -> None:
        super().__init__(params, where, base_dir)
        where = where or f"[{self.name}]"
        try:
            self.delimiter = normalise_delimiter(self.params.delimiter)
        except ValueError as exc:
            raise PipelineError(f"{where}: key 'delimiter': {exc}") from exc
        if not self.params.header and not self.params.names:
            raise PipelineError(f"{where}: a file without a header needs `names`, e.g. "
                                "names = [\"user_id\", \"item_id\", \"timestamp\"]")
        repeated = sorted({n for n in self.params.names or () if self.params.names.count(n) > 1})
        if repeated:
            raise PipelineError(f"{where}: key 'names': {', '.join(map(repr, repeated))} "
                                "given more than once; each column needs its own name")
        check_side_table_specs(self.params, where, "path", "files", "{kind}.csv")
        self.path = self.resolve_path(self.params.path)

    def describe_origin(self) -> str:
        return str(self.path)

    def available_columns(self) -> list[str]:
        if self.params.names:
            return list(self.params.names)
        require_file(self.path, self.params.path)
        return read_header(self.path, self.delimiter, self.params.encoding)

    def load(self, ctx: Context) -> Dataset:
        require_file(self.path, self.params.path)
        self._check_mapping(self.available_columns())
        events = self._read_events(ctx)
        return Dataset(events, items=self._side_table("items"), users=self._side_table("users"),
                       provenance=(f"csv: {len(events)} events from {self.path}",))

    def _check_mapping(self, columns: list[str]) -> None:
        missing = [f"columns.{key} = {col!r}" for key, col in self.params.columns.items()
                   if col not in columns]
        if missing:
            raise DataError(f"{self.path}: no column for {'; '.join(missing)}; the file has "
                            f"{', '.join(map(repr, columns))}")

    def sample(self, ctx: Context, rows: int) -> Dataset:
        require_file(self.path, self.params.path)
        self._check_mapping(self.available_columns())
        return Dataset(self._read_events(ctx, nrows=rows), items=self._side_table("items"),
                       users=self._side_table("users"))

    def count(self) -> int | None:
        """Data lines, blank ones left out (one record per line, as line numbers assume)."""
        require_file(self.path, self.params.path)
        with csv_errors(self.path, self.params.encoding), \
                get_handle(self.path, "rb", compression="infer", is_text=False) as handle:
            lines = sum(1 for line in handle.handle if line.strip())
        return max(0, lines - int(self.params.header))

    def _read_events(self, ctx: Context, nrows: int | None = None) -> Events:
        first_line = 2 if self.params.header else 1
        builder = self.events_builder(ctx, str(self.path), row_name="line",
                                      total=nrows or estimate_rows(self.path,
                                                                   self.params.header),
                                      time_unit=self._time_unit())
        with csv_errors(self.path, self.params.encoding), \
                self._read(chunksize=self.params.chunk_size, nrows=nrows) as reader:
            for chunk in reader:
                check_no_implicit_index(chunk, self.path, first_line)
                builder.add(self._canonical(chunk, first_line), consumed=len(chunk))
        return builder.finish()

    def _read(self, **options: Any) -> Any:
        """``pd.read_csv`` of the events file as text columns, line numbers kept exact."""
        return pd.read_csv(self.path, sep=self.delimiter, encoding=self.params.encoding,
                           dtype=str, header=0 if self.params.header else None,
                           names=self.params.names, skip_blank_lines=False, **options)

    def _time_unit(self) -> str:
        """``time_unit``, with ``"auto"`` settled once per file from its first lines.

        ``parse_times`` decides ``"auto"`` per call and reads the whole call as ISO when any
        value is not a number, so one bad epoch time would blank every time of its chunk, and
        chunks could be read differently. Deciding from a sample read once, whatever the
        chunk size, keeps a bad time a one-row problem.
        """
        if self.params.time_unit != "auto":
            return self.params.time_unit
        with csv_errors(self.path, self.params.encoding):
            sample = self._read(nrows=TIME_SAMPLE)[self.params.columns["time"]].dropna()
        if sample.empty:
            return "auto"
        numeric = pd.to_numeric(sample, errors="coerce").notna()
        return "s" if numeric.mean() >= 0.5 else "iso"

    def _canonical(self, chunk: pd.DataFrame, first_line: int) -> pd.DataFrame:
        """Mapped columns under canonical names, plus ``row``; blank lines left out."""
        frame = pd.DataFrame({key: chunk[col] for key, col in self.params.columns.items()})
        frame["row"] = chunk.index.to_numpy(dtype="int64") + first_line
        return frame[~chunk.isna().all(axis=1)]

    def _side_table(self, kind: str) -> pd.DataFrame | None:
        spec = self.params[kind]
        if spec is None:
            return None
        id_column = spec.get("id", self.params.columns[SIDE_TABLE_IDS[kind]])
        return load_side_table(self.resolve_path(spec["path"]), spec["path"], id_column,
                               SIDE_TABLE_IDS[kind], self.delimiter, self.params.encoding)

