"""Drop repeated events: the same record exported twice, or a double click logged twice."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from penchant import Dataset, Param, PipelineError, Preprocessor
from penchant_plugins.preprocess._rows import keep_rows

if TYPE_CHECKING:
    from penchant import Context, ParamValues

FIELDS = ("user", "item", "time", "event", "value")


class Deduplicate(Preprocessor):
    """Keeps one event of each group that agrees on ``subset``."""

    name = "dedup"
    description = "Drops duplicate events, keeping the first (or last) of each"
    params = (
        Param("subset", "list", ["user", "item", "time", "event"], items="str", choices=FIELDS,
              help="fields two events must share to count as duplicates"),
        Param("keep", "str", "first", choices=("first", "last"),
              help="which of the duplicates stays, in file order"),
    )

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: str | Path | None = None) -> None:
        super().__init__(params, where, base_dir)
        if not self.params.subset:
            raise PipelineError(f"{where or f'[{self.name}]'}: key 'subset' needs at least "
                                f"one of {', '.join(FIELDS)}")

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        repeated = dataset.events.frame.duplicated(list(self.params.subset),
                                                   keep=self.params.keep)
        dropped = int(repeated.sum())
        ctx.report[self.name] = {"dropped": dropped}
        ctx.log(f"{self.name}: dropped {dropped} duplicate event(s) (same "
                f"{', '.join(self.params.subset)}; kept the {self.params.keep})")
        return dataset.with_events(keep_rows(dataset.events, ~repeated),
                                   note=f"{self.name}: -{dropped} events")
