"""Pseudonyms: user ids replaced by a keyed hash that only the key's holder can reverse.

A pseudonym is the HMAC-SHA256 of the id under a secret key, as its first
:data:`LENGTH` hex digits (64 bits: a collision among ten million users has odds of about
three in a million, and one found is refused, never merged). The same key gives
the same pseudonym in every run, so runs, feedback and exports line up; without the key an
id cannot be recovered from its pseudonym, nor tested by hashing guesses.

Reversing needs the key *and* the shop's own list of real ids: a hash is not decrypted, the
list is hashed again and matched. That is what exporting lists back to the shop does
(``penchant export --reveal-ids``); the ``pseudonymize`` preprocessor and the CLI share
these functions, so both always agree.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from penchant.errors import DataError, PipelineError

#: Hex digits kept of each HMAC: 64 bits.
LENGTH = 16
#: Shortest key accepted: a short key could be found by trying keys against known ids.
MIN_KEY = 16
#: The environment variable the documentation and the CLI use by default.
KEY_ENV = "PENCHANT_PSEUDONYM_KEY"
_ADVICE = "make one with: python -c 'import secrets; print(secrets.token_hex(32))'"


def check_key(key: str | None, where: str) -> bytes:
    """The key as bytes, or a :class:`PipelineError` saying at ``where`` what is wrong."""
    if not key or len(key) < MIN_KEY:
        size = "empty" if not key else f"{len(key)} characters long"
        raise PipelineError(f"{where}: the pseudonym key is {size}; it needs at least "
                            f"{MIN_KEY} characters ({_ADVICE})")
    return key.encode("utf-8")


def key_from_env(name: str = KEY_ENV) -> bytes:
    """The key held by environment variable ``name``, checked."""
    value = os.environ.get(name)
    if value is None:
        raise PipelineError(f"environment variable {name} is not set: it must hold the "
                            f"pseudonym key the run was made with ({_ADVICE})")
    return check_key(value, f"environment variable {name}")


def pseudonyms(ids: Iterable[str], key: bytes) -> list[str]:
    """Each id's pseudonym, in order."""
    return [hmac.new(key, str(i).encode("utf-8"), hashlib.sha256).hexdigest()[:LENGTH]
            for i in ids]


def pseudonymize(ids: pd.Index, key: bytes, where: str) -> pd.Index:
    """Distinct ``ids`` as their pseudonyms (same order and name); two ids that would share
    one are refused rather than silently made one user."""
    hidden = pd.Index(pseudonyms(ids, key), dtype="string", name=ids.name)
    if hidden.has_duplicates:
        raise DataError(f"{where}: two user ids got the same pseudonym; use another key")
    return hidden


def read_ids(path: Path) -> list[str]:
    """Real ids from a text file, one per line (blank lines skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the list of ids: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text: {exc}") from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: holds no ids; write one real user id per line")
    return ids


def reveal(frame: pd.DataFrame, column: str, key: bytes, real_ids: Iterable[str],
           where: str) -> pd.DataFrame:
    """``frame`` with the pseudonyms in ``column`` turned back into the real ids that
    ``real_ids`` holds. Every pseudonym must match one: a wrong key or an incomplete list
    is an error, never a half-revealed result."""
    real = list(dict.fromkeys(real_ids))
    table = dict(zip(pseudonyms(real, key), real, strict=True))
    values = frame[column].astype("string")
    unknown = pd.unique(values[~values.isin(table)].dropna())
    if len(unknown):
        shown = ", ".join(map(repr, unknown[:5])) + (" …" if len(unknown) > 5 else "")
        raise DataError(f"{where}: {len(unknown)} pseudonym(s) in column {column!r} match "
                        f"none of the {len(real)} ids given ({shown}): the key is not the "
                        "run's, or the list lacks those users")
    return frame.assign(**{column: values.map(table).astype("string")})
