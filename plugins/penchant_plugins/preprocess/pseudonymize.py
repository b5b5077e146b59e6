"""Replace user ids with keyed pseudonyms right after loading.

What a run writes (recommendations, features, feedback it is matched with, the app's views)
then names shoppers only by pseudonym; the shop, holding the key and its own ids, turns a
run's lists back into real ids when it exports them (``penchant export --reveal-ids``).
Only user ids are replaced: item ids name products, not people, and the shop's catalogue
must still match the lists. The events and the users side table get the same pseudonyms,
so side features still reach their user.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from penchant import Dataset, Events, Param, Preprocessor
from penchant.pseudonyms import KEY_ENV, check_key, pseudonymize

if TYPE_CHECKING:
    from pathlib import Path

    from penchant import Context, ParamValues


class Pseudonymize(Preprocessor):
    """User ids become HMAC-SHA256 pseudonyms under a secret key, in the events and the
    users side table alike; the same key gives the same pseudonyms in every run."""

    name = "pseudonymize"
    description = ("Replaces user ids with keyed pseudonyms (HMAC-SHA256), reversible only "
                   "with the key and the shop's list of ids")
    renames: ClassVar[tuple[str, ...]] = ("user",)
    params = (
        Param("key", "str", required=True, secret=True,
              help=f"secret key of at least 16 characters, from the environment: "
                   f"\"${{env:{KEY_ENV}}}\"; keep it: revealing the ids needs it"),
    )

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: str | Path | None = None) -> None:
        super().__init__(params, where, base_dir)
        self.where = f"{where or f'[{self.name}]'} key 'key'"
        # Empty is the pipeline validator's stand-in for "${env:NAME}": checked when applied.
        if self.params.key:
            check_key(self.params.key, self.where)

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        key = check_key(self.params.key, self.where)
        frame, side = dataset.events.frame, dataset.users
        categories = frame["user"].cat.categories
        ids = pd.Index(categories, dtype="string")
        if side is not None:  # one mapping for both, so they still match
            ids = ids.union(pd.Index(side.index, dtype="string"))
        hidden = pd.Series(pseudonymize(ids, key, self.name), index=ids)
        users = frame["user"].cat.rename_categories(list(hidden[categories]))
        if side is not None:
            side = side.set_axis(pd.Index(hidden[side.index.astype("string")],
                                          dtype="string", name=side.index.name))
        ctx.report[self.name] = {"users": len(categories)}
        out = dataset.with_events(Events(frame.assign(user=users)),
                                  f"{self.name}: user ids replaced by keyed pseudonyms")
        return replace(out, users=side)
