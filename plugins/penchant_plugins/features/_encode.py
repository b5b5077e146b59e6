"""Side tables as dense numeric blocks: one encoder for user and item attributes alike."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from penchant import DataError


def encode_table(table: pd.DataFrame | None, index: pd.Index, columns: Sequence[str],
                 max_levels: int, where: str) -> tuple[np.ndarray, list[str]]:
    """Rows aligned to ``index`` (zeros for ids the table lacks); numeric columns as
    z-scores (missing → 0, the mean), others one-hot over their ``max_levels`` most common
    values. Returns the block and a name per column, for explanations and debugging."""
    if table is None:
        raise DataError(f"{where}: the source has no side table to read attributes from; "
                        "name one in [source] (items = {...} or users = {...})")
    chosen = list(columns) or list(table.columns)
    missing = [c for c in chosen if c not in table.columns]
    if missing:
        raise DataError(f"{where}: column(s) {', '.join(missing)} are not in the side table; "
                        f"it has: {', '.join(map(str, table.columns))}")
    aligned = table.reindex(pd.Index(index, dtype="string"))
    blocks, names = [], []
    for column in chosen:
        values = aligned[column]
        if pd.api.types.is_numeric_dtype(table[column]) and not pd.api.types.is_bool_dtype(
                table[column]):
            raw = table[column].astype("float64")
            if raw.dropna().ge(0).all() and raw.max() > 100 * max(raw.median(), 1e-9):
                raw, values = np.log1p(raw), np.log1p(values.astype("float64"))
            mean, std = raw.mean(), raw.std() or 1.0
            blocks.append(((values.astype("float64") - mean) / std).fillna(0.0)
                          .to_numpy()[:, None])
            names.append(column)
        else:
            levels = table[column].astype("string").value_counts().index[:max_levels]
            codes = pd.Categorical(values.astype("string"), categories=levels).codes
            onehot = np.zeros((len(index), len(levels)), dtype=np.float32)
            hit = codes >= 0
            onehot[np.flatnonzero(hit), codes[hit]] = 1.0
            blocks.append(onehot)
            names.extend(f"{column}={level}" for level in levels)
    block = np.concatenate(blocks, axis=1).astype(np.float32) if blocks else \
        np.zeros((len(index), 0), dtype=np.float32)
    return block, names
