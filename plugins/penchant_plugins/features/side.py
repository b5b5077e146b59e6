"""User and item attributes from the source's side tables."""

from __future__ import annotations

from typing import ClassVar

from penchant import Context, FeatureExtractor, Features, Param
from penchant_plugins.features._encode import encode_table


class _SideTable(FeatureExtractor):
    """Encodes one side table into the matching side block; subclasses say which."""

    side: ClassVar[str] = ""
    params = (
        Param("columns", "list", [], items="str",
              help="side-table columns to use (empty: all of them)"),
        Param("max_levels", "int", 30, min=1,
              help="most common values one-hot encoded per text column; rarer ones get zeros"),
    )

    def extract(self, features: Features, ctx: Context) -> Features:
        is_user = self.side == "user"
        table = features.dataset.users if is_user else features.dataset.items
        index = features.users if is_user else features.items
        block, names = encode_table(table, index, self.params.columns, self.params.max_levels,
                                    f"[features] {self.name}")
        (features.user_side if is_user else features.item_side)[self.side] = block
        features.extra[f"{self.side}_feature_names"] = names
        ctx.log(f"{self.name}: {block.shape[1]} columns")
        return features


class UserFeatures(_SideTable):
    """Age, gender, region… say something about a shopper before they have said much
    themselves: the signal that helps new and light users."""

    name = "user-features"
    description = ("User attributes from the users side table: numbers as z-scores, text "
                   "one-hot (users.csv's age, gender, region…).")
    side = "user"


class ItemFeatures(_SideTable):
    """Category, brand and price let items share what is learnt about them, so an item
    few have bought still sits near its kind."""

    name = "item-features"
    description = ("Item attributes from the items side table: numbers as z-scores (log for "
                   "skewed ones such as price), text one-hot (category, brand…).")
    side = "item"
