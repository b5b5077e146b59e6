"""Drop events that cannot be used, and say which lines they came from.

Malformed means what :meth:`penchant.Events.malformed` says (no user, no item, or a time
that did not parse) plus an infinite ``value``: that is always a broken number, and one would
poison every sum or mean downstream. A missing value (NaN) is kept: ``value`` is optional,
and ``fill-missing`` is the step that decides what an absent value should be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from penchant import Dataset, Preprocessor
from penchant_plugins.preprocess._rows import keep_rows

if TYPE_CHECKING:
    from penchant import Context

#: Row numbers kept in the run report; the log line shows fewer.
REPORTED_ROWS = 100
LOGGED_ROWS = 10


class DropMalformed(Preprocessor):
    """Removes unusable rows, reporting how many and where, instead of failing the run."""

    name = "drop-malformed"
    description = "Drops events with no user or item, a bad time or an infinite value"

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        frame = dataset.events.frame
        bad = dataset.events.malformed() | np.isinf(frame["value"])
        rows = frame.loc[bad, "row"].tolist()
        ctx.report[self.name] = {"dropped": len(rows), "rows": rows[:REPORTED_ROWS]}
        shown = ", ".join(map(str, rows[:LOGGED_ROWS])) + (" …" if len(rows) > LOGGED_ROWS
                                                          else "")
        ctx.log(f"{self.name}: dropped {len(rows)} malformed row(s)"
                + (f" (rows {shown})" if rows else ""))
        return dataset.with_events(keep_rows(dataset.events, ~bad),
                                   note=f"{self.name}: -{len(rows)} events")
