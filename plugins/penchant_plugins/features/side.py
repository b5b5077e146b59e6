"""User and item attributes from the source's side tables."""

from __future__ import annotations

from penchant import Context, FeatureExtractor, Features, Param
from penchant_plugins.features._encode import encode_table

_COMMON = (
    Param("columns", "list", [], items="str",
          help="side-table columns to use (empty: all of them)"),
    Param("max_levels", "int", 30, min=1,
          help="most common values one-hot encoded per text column; rarer ones get zeros"),
)


class UserFeatures(FeatureExtractor):
    """Age, gender, region… say something about a shopper before they have said much
    themselves: the signal that helps new and light users."""

    name = "user-features"
    description = ("User attributes from the users side table: numbers as z-scores, text "
                   "one-hot (users.csv's age, gender, region…).")
    params = _COMMON

    def extract(self, features: Features, ctx: Context) -> Features:
        block, names = encode_table(features.dataset.users, features.users,
                                    self.params.columns, self.params.max_levels,
                                    f"[features] {self.name}")
        features.user_side["user"] = block
        features.extra["user_feature_names"] = names
        ctx.log(f"{self.name}: {block.shape[1]} columns")
        return features


class ItemFeatures(FeatureExtractor):
    """Category, brand and price let items share what is learnt about them, so an item
    few have bought still sits near its kind."""

    name = "item-features"
    description = ("Item attributes from the items side table: numbers as z-scores (log for "
                   "skewed ones such as price), text one-hot (category, brand…).")
    params = _COMMON

    def extract(self, features: Features, ctx: Context) -> Features:
        block, names = encode_table(features.dataset.items, features.items,
                                    self.params.columns, self.params.max_levels,
                                    f"[features] {self.name}")
        features.item_side["item"] = block
        features.extra["item_feature_names"] = names
        ctx.log(f"{self.name}: {block.shape[1]} columns")
        return features
