"""Fill missing numbers in the events' ``value`` or in side-table columns.

Keys name what to fill: ``value`` (the events' value), ``items.<column>`` or
``users.<column>``. Strategies:

* ``mean`` / ``median``: of the column's known values (over all events, not per user);
* ``zero``: 0, for counts and amounts where absent means none;
* ``interpolate``: for ``value``, linear in time between the user's nearest known values
  before and after, the nearest one at either end; for side tables, linear over the table's
  row order. A user with no known value at all is left empty (reported as ``left``).

Filled columns become float64, the only dtype that holds both the numbers and a mean.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from penchant import DataError, Dataset, Events, Param, PipelineError, Preprocessor
from penchant_plugins.preprocess._interpolate import interpolate

if TYPE_CHECKING:
    from penchant import Context, ParamValues

STRATEGIES = ("mean", "median", "interpolate", "zero")
SIDE_TABLES = ("items", "users")
_EPOCH = pd.Timestamp(0, tz="UTC")


def target(key: str) -> tuple[str, str] | None:
    """``"value"`` → ``("events", "value")``, ``"items.price"`` → ``("items", "price")``."""
    if key == "value":
        return "events", "value"
    table, _, column = key.partition(".")
    return (table, column) if table in SIDE_TABLES and column else None


class FillMissing(Preprocessor):
    """Replaces NaNs in chosen numeric columns, each by its own strategy."""

    name = "fill-missing"
    description = "Fills missing numbers in event values or item/user columns"
    params = (
        Param("columns", "table", items="str", required=True,
              help="what to fill → how, e.g. { value = \"median\", \"items.price\" = "
                   "\"mean\" }; strategies: " + ", ".join(STRATEGIES)),
    )

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: str | Path | None = None) -> None:
        super().__init__(params, where, base_dir)
        where = where or f"[{self.name}]"
        problems = []
        for key, strategy in self.params.columns.items():
            if target(key) is None:
                problems.append(f"{where}: columns key {key!r} is not value, "
                                "items.<column> or users.<column>")
            if strategy not in STRATEGIES:
                problems.append(f"{where}: columns.{key} = {strategy!r} is not one of "
                                f"{', '.join(STRATEGIES)}")
        if problems:
            raise PipelineError("\n".join(problems))

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        tables = {"events": dataset.events.frame, "items": dataset.items,
                  "users": dataset.users}
        report = {}
        for key, strategy in self.params.columns.items():
            name, column = target(key)
            frame = tables[name]
            if frame is None:
                raise DataError(f"{self.name}: cannot fill {key!r}: the dataset has no "
                                f"{name} table (give the source `{name} = {{ path = ... }}`)")
            before = _numbers(frame, column, key, name)
            after = _fill(before, strategy, key, name, frame)
            tables[name] = frame.assign(**{column: after})
            report[key] = {"strategy": strategy, "filled": int(before.isna().sum()
                                                                - after.isna().sum()),
                           "left": int(after.isna().sum())}
        ctx.report[self.name] = report
        ctx.log(f"{self.name}: " + "; ".join(
            f"{key}: filled {r['filled']} ({r['strategy']})"
            + (f", {r['left']} left empty" if r["left"] else "") for key, r in report.items()))
        return replace(dataset, events=Events(tables["events"]), items=tables["items"],
                       users=tables["users"]).noted(
            f"{self.name}: " + ", ".join(f"{k} {r['filled']}" for k, r in report.items()))


def _fill(values: pd.Series, strategy: str, key: str, name: str,
          frame: pd.DataFrame) -> pd.Series:
    if strategy == "zero":
        return values.fillna(0.0)
    if values.isna().any() and values.notna().sum() == 0:
        raise DataError(f"fill-missing: {key!r} has no values to compute a {strategy} from; "
                        "use \"zero\", or check the source's column mapping")
    if strategy == "mean":
        return values.fillna(values.mean())
    if strategy == "median":
        return values.fillna(values.median())
    return interpolate(values, *_interpolation_axis(name, frame))


def _interpolation_axis(name: str, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Position and group of each row: (time, user) for events, (row order, one group) else."""
    if name == "events":
        seconds = (frame["time"] - _EPOCH) / pd.Timedelta(seconds=1)
        return seconds.to_numpy(dtype="float64"), frame["user"].cat.codes.to_numpy()
    return np.arange(len(frame), dtype="float64"), np.zeros(len(frame), dtype="int64")


def _numbers(frame: pd.DataFrame, column: str, key: str, name: str) -> pd.Series:
    """The column as float64, or an error saying why it cannot be filled."""
    if column not in frame.columns:
        raise DataError(f"fill-missing: cannot fill {key!r}: the {name} table has no column "
                        f"{column!r}; it has {', '.join(map(repr, frame.columns))}")
    values = frame[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise DataError(f"fill-missing: cannot fill {key!r}: it holds {values.dtype} values, "
                        "not numbers")
    return values.astype("float64")
