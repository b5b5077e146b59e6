"""Incremental reads: what a source read before, so a run reads only what is new.

A source that reads incrementally names its data by an *identity* (a mapping of what decides
which rows it gets: the masked database, the table or query, the column mapping, the time
window). The host keeps, per identity, the events read so far (a Parquet file under
``$PENCHANT_HOME/sources``) and the high-water mark, the largest time value read, in the run
store. The next run reads only rows beyond the mark and adds them to those events. Changing
anything in the identity starts over with a full read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from penchant import atomic
from penchant.data import Events
from penchant.errors import StoreError
from penchant.paths import inside

if TYPE_CHECKING:
    from penchant.store import RunStore


@dataclass(frozen=True)
class Increment:
    """The events a source read up to ``mark`` (a JSON value in the source's own terms)."""

    events: Events
    mark: Any
    run_id: int | None


def identity_key(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()
                          ).hexdigest()


class Increments:
    """The run's view of the stored marks; sources reach it as ``ctx.increments``."""

    def __init__(self, store: RunStore, folder: Path, run_id: int | None) -> None:
        self.store, self.folder, self.run_id = store, Path(folder), run_id

    def last(self, identity: Mapping[str, Any]) -> Increment | None:
        """What was read before under this identity; None when nothing was (or its events
        file is gone, in which case the source reads everything again)."""
        row = self.store.source_mark(identity_key(identity))
        path = self._own(row["events_path"]) if row is not None else None
        if path is None or not path.is_file():
            return None
        return Increment(Events(pd.read_parquet(path)), row["mark"], row["run_id"])

    def save(self, identity: Mapping[str, Any], events: Events, mark: Any) -> Path:
        """Keep ``events`` (everything read so far) and ``mark``; the file is in place before
        the store points at it, and the file it replaces is removed only after."""
        key = identity_key(identity)
        path = self.folder / key[:16] / f"events-{self.run_id or 0:05d}.parquet"
        atomic.write_with(path, lambda tmp: events.frame.to_parquet(tmp, index=False))
        old = self.store.save_source_mark(key, self.run_id, mark, str(path), len(events))
        if old and (own := self._own(old)) is not None:
            own.unlink(missing_ok=True)
        return path

    def _own(self, recorded: str) -> Path | None:
        """A recorded events file, when it lies in this folder. One elsewhere (a run store
        edited or shared with another home) is neither read nor deleted: the source reads
        everything again and its new file replaces the record."""
        try:
            return inside(self.folder, recorded, "incremental events file")
        except StoreError:
            return None
