"""Item and user side tables: lookups indexed by the original id, as text.

Every source reads its side tables its own way (a file, a database table, a collection) and
hands the frame to :func:`index_by_id`, so ids are checked and typed alike everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from penchant import DataError, PipelineError
from penchant_plugins.sources._csvfiles import (
    check_no_implicit_index,
    csv_errors,
    read_header,
    require_file,
)

#: Side-table parameter → the canonical id its rows are keyed by.
SIDE_TABLE_IDS = {"items": "item", "users": "user"}

#: Tried after the events file's delimiter: side tables often come from another export.
_COMMON_DELIMITERS = (",", "\t", ";", "|")


def check_side_table_specs(params: Any, where: str, key: str, what: str,
                           example: str) -> None:
    """Each given side table names its data by ``key`` (``path`` or ``table``), not the
    other; ``what`` says where this source reads side tables from, ``example`` a value."""
    other = "table" if key == "path" else "path"
    for kind in SIDE_TABLE_IDS:
        spec = params[kind]
        if spec is not None and (key not in spec or other in spec):
            raise PipelineError(f"{where}: key {kind!r}: this source reads side tables "
                                f"from {what}; write {kind} = {{ {key} = "
                                f"\"{example.format(kind=kind)}\", id = \"...\" }}")


def load_side_table(path: Path, given: str, id_column: str, kind: str, delimiter: str,
                    encoding: str) -> pd.DataFrame:
    """The table at ``path`` indexed by ``id_column`` (stripped text, named ``kind``).

    The delimiter is the first of the events file's and the common ones under which the
    header contains ``id_column``: that settles it from the header alone, compressed or not.
    """
    require_file(path, given)
    candidates = tuple(dict.fromkeys((delimiter, *_COMMON_DELIMITERS)))
    found = _find_delimiter(path, id_column, candidates, encoding)
    with csv_errors(path, encoding):
        table = pd.read_csv(path, sep=found, encoding=encoding, dtype={id_column: str})
    check_no_implicit_index(table, path, first_line=2)
    return index_by_id(table, id_column, kind, str(path), first_row=2, row_name="line")


def index_by_id(table: pd.DataFrame, id_column: str, kind: str, origin: str,
                first_row: int = 1, row_name: str = "row") -> pd.DataFrame:
    """``table`` indexed by ``id_column`` as stripped text (index named ``kind``).

    ``first_row`` is the number of the table's first row in the user's terms (2 for a CSV
    file's first data line), so that a bad id is named where the user will find it.
    """
    if id_column not in table.columns:
        raise DataError(f"{origin}: no id column {id_column!r}; it has "
                        f"{', '.join(map(repr, map(str, table.columns)))}. Set `id` in the "
                        f"side table, e.g. {{ ..., id = \"{kind}_id\" }}")
    table = table.reset_index(drop=True)
    ids = table.pop(id_column)
    if pd.api.types.is_float_dtype(ids):
        ids = ids.astype("Int64")
    ids = ids.astype("string").str.strip().replace("", pd.NA)
    _check_ids(ids, origin, id_column, first_row, row_name)
    table.index = pd.Index(ids, dtype="string", name=kind)
    return table


def _find_delimiter(path: Path, id_column: str, candidates: Sequence[str],
                    encoding: str) -> str:
    for candidate in candidates:
        if id_column in read_header(path, candidate, encoding):
            return candidate
    columns = read_header(path, candidates[0], encoding)
    raise DataError(f"{path}: no id column {id_column!r}; the file has "
                    f"{', '.join(map(repr, columns))}. Set `id` in the side table, "
                    f"e.g. {{ path = \"...\", id = {columns[0]!r} }}")


def _check_ids(ids: pd.Series, origin: str, id_column: str, first_row: int,
               row_name: str) -> None:
    """A lookup needs one row per id: empty or repeated ids make joins ambiguous."""
    empty = ids.index[ids.isna()]
    if len(empty):
        rows = ", ".join(str(i + first_row) for i in empty[:10])
        raise DataError(f"{origin}: {len(empty)} row(s) with an empty {id_column!r} "
                        f"({row_name}s {rows})")
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        shown = ", ".join(map(repr, repeated[:10]))
        raise DataError(f"{origin}: {len(repeated)} id(s) in {id_column!r} appear more than "
                        f"once: {shown}")
