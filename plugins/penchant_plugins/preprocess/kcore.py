"""Keep the k-core: users and items with enough interactions to learn from.

An interaction is a distinct (user, item) pair: buying the same thing ten times is one
item in a user's history, and counting repeats would let one heavy repeat buyer keep an
otherwise unseen item alive. Removing a user lowers its items' counts and the other way
round, so removal repeats until nothing changes (the largest subset in which every user
has ``user_min`` items and every item ``item_min`` users; it is unique).

Malformed rows (no user, no item, bad time) are neither counted nor removed: they are
``drop-malformed``'s to drop, or ``Events.check``'s to report, by line. Side tables are kept
whole: they are lookups, and an id no event refers to costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from penchant import Dataset, Param, Preprocessor, distinct_pairs
from penchant_plugins.preprocess._rows import keep_rows

if TYPE_CHECKING:
    from penchant import Context


class KCore(Preprocessor):
    """Iteratively removes users and items with too few distinct interactions."""

    name = "k-core"
    description = "Keeps users and items with at least N distinct interactions, iterated"
    params = (
        Param("user_min", "int", 5, min=1, help="distinct items each remaining user has"),
        Param("item_min", "int", 5, min=1, help="distinct users each remaining item has"),
    )

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        events = dataset.events
        frame = events.frame
        usable = ~events.malformed().to_numpy()
        users = frame["user"].cat.codes.to_numpy().astype("int64")[usable]
        items = frame["item"].cat.codes.to_numpy().astype("int64")[usable]
        n_users, n_items = len(frame["user"].cat.categories), len(frame["item"].cat.categories)
        pair_user, pair_item = distinct_pairs(users, items, n_items)
        users_before = np.count_nonzero(np.bincount(pair_user, minlength=n_users))
        items_before = np.count_nonzero(np.bincount(pair_item, minlength=n_items))
        user_count, item_count, rounds = core_counts(
            pair_user, pair_item, n_users, n_items, self.params.user_min,
            self.params.item_min, ctx.check_cancelled)
        keep = ~usable
        keep[usable] = (user_count[users] > 0) & (item_count[items] > 0)
        removed = {
            "users_removed": int(users_before - np.count_nonzero(user_count)),
            "items_removed": int(items_before - np.count_nonzero(item_count)),
            "events_removed": int((~keep).sum()),
            "rounds": rounds,
        }
        ctx.report[self.name] = removed
        ctx.log(f"{self.name}: removed {removed['users_removed']} user(s), "
                f"{removed['items_removed']} item(s) and {removed['events_removed']} event(s) "
                f"in {rounds} round(s) (user_min {self.params.user_min}, "
                f"item_min {self.params.item_min})")
        return dataset.with_events(keep_rows(events, keep),
                                   note=f"{self.name}: -{removed['events_removed']} events")


def core_counts(pair_user: np.ndarray, pair_item: np.ndarray, n_users: int, n_items: int,
                user_min: int, item_min: int, check_cancelled: Callable[[], None]
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct items per user and users per item inside the core, and the rounds it took.

    Each round drops every pair whose user or item is under its minimum, counted over the
    pairs still alive; counts only fall, so this stops, at the largest such core.
    """
    alive, rounds = np.ones(len(pair_user), dtype=bool), 0
    while True:
        check_cancelled()
        user_count = np.bincount(pair_user[alive], minlength=n_users)
        item_count = np.bincount(pair_item[alive], minlength=n_items)
        still = alive & (user_count[pair_user] >= user_min) & (item_count[pair_item] >= item_min)
        if still.sum() == alive.sum():
            return user_count, item_count, rounds
        alive, rounds = still, rounds + 1
