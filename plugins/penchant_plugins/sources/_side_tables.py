"""Item and user side tables from CSV files: lookups indexed by the original id, as text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from penchant import DataError
from penchant_plugins.sources._csvfiles import (
    check_no_implicit_index,
    csv_errors,
    read_header,
    require_file,
)

#: Tried after the events file's delimiter: side tables often come from another export.
_COMMON_DELIMITERS = (",", "\t", ";", "|")


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
    ids = table.pop(id_column).astype("string").str.strip().replace("", pd.NA)
    _check_ids(ids, path, id_column)
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


def _check_ids(ids: pd.Series, path: Path, id_column: str) -> None:
    """A lookup needs one row per id: empty or repeated ids make joins ambiguous."""
    empty = ids.index[ids.isna()]
    if len(empty):
        lines = ", ".join(str(i + 2) for i in empty[:10])
        raise DataError(f"{path}: {len(empty)} row(s) with an empty {id_column!r} "
                        f"(lines {lines})")
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        shown = ", ".join(map(repr, repeated[:10]))
        raise DataError(f"{path}: {len(repeated)} id(s) in {id_column!r} appear more than "
                        f"once: {shown}")
