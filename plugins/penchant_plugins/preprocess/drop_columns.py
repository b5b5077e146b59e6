"""Drop personal (or simply unwanted) columns from the item and user side tables.

Age, gender or region may help a model, but a shop may not want them to leave its database
at all: this step removes them right after loading, before any feature, log line or
artifact could carry them. Naming a column that is not there is an error, not a silent
no-op: a typo would otherwise keep the very field the user meant to remove.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from penchant import DataError, Dataset, Param, PipelineError, Preprocessor

if TYPE_CHECKING:
    from penchant import Context, ParamValues

SIDE_TABLES = ("items", "users")


class DropColumns(Preprocessor):
    """Removes named columns from the side tables (``users.age``, ``items.supplier``)."""

    name = "drop-columns"
    description = "Removes named columns (e.g. personal fields) from the item/user tables"
    params = (
        Param("columns", "list", required=True, items="str",
              help="columns to remove, as table.column, e.g. [\"users.age\", "
                   "\"users.gender\"]"),
    )

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: str | Path | None = None) -> None:
        super().__init__(params, where, base_dir)
        bad = [c for c in self.params.columns
               if c.partition(".")[0] not in SIDE_TABLES or not c.partition(".")[2]]
        if bad:
            raise PipelineError(f"{where or f'[{self.name}]'}: key 'columns': "
                                f"{', '.join(map(repr, bad))} should be users.<column> or "
                                "items.<column>")

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        tables = {"items": dataset.items, "users": dataset.users}
        dropped: dict[str, list[str]] = {}
        for key in self.params.columns:
            table, _, column = key.partition(".")
            frame = tables[table]
            if frame is None or column not in frame.columns:
                has = "no such table" if frame is None else \
                    "its columns: " + ", ".join(map(str, frame.columns))
                raise DataError(f"{self.name}: cannot drop {key!r}: {has}")
            dropped.setdefault(table, []).append(column)
        for table, columns in dropped.items():
            tables[table] = tables[table].drop(columns=columns)
        ctx.report[self.name] = {"dropped": list(self.params.columns)}
        return replace(dataset, items=tables["items"], users=tables["users"]).noted(
            f"{self.name}: removed {', '.join(self.params.columns)}")
