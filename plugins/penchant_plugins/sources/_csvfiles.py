"""Reading delimited text with pandas, with pandas' errors turned into messages users can act on.

Shared by the events file and the side tables of the CSV source, so a bad encoding or a ragged
line reads the same wherever it happens.
"""

from __future__ import annotations

import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from penchant import DataError, PipelineError

_DELIMITER_ALIASES = {"tab": "\t", "\\t": "\t"}
#: Suffixes pandas decompresses by (``compression="infer"``); their size says nothing of rows.
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar", ".tgz")
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
#: How reading a damaged or truncated file fails: decompressors raise these (gzip's
#: ``BadGzipFile`` and bz2's bad streams are ``OSError``s), as does a file that vanished.
_UNREADABLE = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


def normalise_delimiter(text: str) -> str:
    """One character; ``"tab"`` and a literal backslash-t (TOML literal strings) mean a tab."""
    delimiter = _DELIMITER_ALIASES.get(text.lower(), text)
    if len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character or \"tab\", got {text!r}")
    if delimiter in "\r\n":
        raise ValueError("a line break ends a line, so it cannot separate fields; "
                         "use e.g. \",\" or \"tab\"")
    return delimiter


def require_file(path: Path, given: str) -> None:
    """Fail early, naming both what the pipeline wrote and where that led."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        shown = f"{path}" if given == str(path) else f"{path} (from {given!r})"
        raise DataError(f"{shown}: {what}")


@contextmanager
def csv_errors(path: Path, encoding: str) -> Iterator[None]:
    """Re-raise the ways pandas can fail on a text file as errors that name the file."""
    try:
        yield
    except UnicodeError as exc:  # UTF-16 without a byte-order mark is not a decode error
        detail = (f"{exc.reason}: byte 0x{exc.object[exc.start]:02x}"
                  if isinstance(exc, UnicodeDecodeError) else str(exc))
        raise DataError(f"{path}: cannot be read as {encoding} ({detail}); set `encoding` to "
                        "the file's encoding, e.g. \"latin-1\" or \"cp1252\"") from exc
    except LookupError as exc:
        raise PipelineError(f"{path}: unknown encoding {encoding!r}") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except pd.errors.ParserError as exc:
        ragged = _RAGGED.search(str(exc))
        if ragged:
            expected, line, saw = ragged.groups()
            raise DataError(f"{path}: line {line} has {saw} fields where the header has "
                            f"{expected}; check the delimiter and the quoting of that line"
                            ) from exc
        raise DataError(f"{path}: cannot be parsed: {exc}") from exc
    except _UNREADABLE as exc:
        raise DataError(f"{path}: cannot be read ({exc}); check that the file is complete "
                        "and that its suffix (.gz, .bz2, .zip, .xz, .zst) matches its "
                        "compression") from exc


def read_header(path: Path, delimiter: str, encoding: str) -> list[str]:
    """Column names from the first line only, refusing a name given twice: pandas would
    read the second as ``name.1``, and a mapping naming it would silently take the first."""
    with csv_errors(path, encoding):
        first = pd.read_csv(path, sep=delimiter, encoding=encoding, header=None, nrows=1,
                            dtype=str, keep_default_na=False)
    names = [str(c) for c in first.iloc[0]] if len(first) else []
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        columns = {n: [str(i + 1) for i, m in enumerate(names) if m == n] for n in twice}
        where = ", ".join(f"{n!r} (columns {', '.join(at)})" for n, at in columns.items())
        raise DataError(f"{path}: line 1 names the same column more than once: {where}; "
                        "rename them so each column has one name")
    return names


def check_no_implicit_index(frame: pd.DataFrame, path: Path, first_line: int) -> None:
    """Refuse rows longer than the header.

    pandas quietly turns the surplus leading fields into an index when every data line has
    more fields than the header names (a trailing delimiter does it), which would shift each
    value into the wrong column.
    """
    if not isinstance(frame.index, pd.RangeIndex):
        fields = frame.index.nlevels + len(frame.columns)
        raise DataError(f"{path}: line {first_line} has {fields} fields where the header "
                        f"names {len(frame.columns)}; remove trailing delimiters or fix "
                        "the header (or `names`)")


def estimate_rows(path: Path, header: bool) -> int:
    """Data lines in the file, guessed from the first megabyte; 0 when it cannot be told.

    Only feeds the progress bar, so a cheap guess beats a second pass over the file.
    """
    if path.suffix.lower() in _COMPRESSED:
        return 0
    size = path.stat().st_size
    with path.open("rb") as file:
        sample = file.read(1 << 20)
    if not sample:
        return 0
    return max(0, round(size * sample.count(b"\n") / len(sample)) - int(header))
