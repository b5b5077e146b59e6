"""Row selection shared by the preprocessors that drop events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from penchant import Events


def keep_rows(events: Events, mask: pd.Series | np.ndarray) -> Events:
    """``events.select(mask)`` without the categories that no remaining row uses.

    Otherwise a dropped user or item would live on as a category, and anything that reads
    ``.cat.categories`` (an id index, a count of items) would still see it.
    """
    frame = events.select(mask).frame
    for col in ("user", "item", "event"):
        frame[col] = _without_unused(frame[col])
    return Events(frame)


def _without_unused(column: pd.Series) -> pd.Series:
    """``cat.remove_unused_categories()`` in one counting pass instead of a sort.

    pandas sorts every code to find the used ones, seconds per call on tens of millions of
    events; counting is linear and skips the rebuild when every category is still used.
    """
    codes = column.cat.codes.to_numpy()
    categories = column.cat.categories
    used = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0
    if used.all():
        return column
    new_codes = np.where(codes >= 0, np.cumsum(used)[codes] - 1, -1)
    return pd.Series(pd.Categorical.from_codes(new_codes, categories=categories[used],
                                               ordered=column.cat.ordered),
                     index=column.index, name=column.name)
