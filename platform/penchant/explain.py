"""Why an item is recommended: the user's history items and categories behind its score.

A model may explain its own scores (:meth:`penchant.Model.explain`): ``itemknn`` and
``ease`` exactly, since each of their scores is a sum of one term per history item; the
autoencoders by gradient × input. For any other model the host answers by item
similarity: each history item's weight for the user times its cosine similarity to the
recommended item over the training matrix. That names the user's items most like the
recommendation, not what the model computed, and the explanation's ``method`` says so.

Categories are the positive contributions summed per category of the items side table and
given as shares; items without a category are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from penchant.errors import DataError, PluginError
from penchant.interests import Categories

if TYPE_CHECKING:
    from penchant.components import Model
    from penchant.data import Features

#: The host's method for models that do not explain themselves.
SIMILARITY = ("item similarity: the history items most like it (the model gives no reasons "
              "of its own)")


@dataclass(frozen=True)
class Explanation:
    """One recommended item and why.

    ``contributions`` are the history items that added most to the item's score, largest
    first, as (item, weight); ``rest`` is the sum of the weights not listed, so the listed
    ones plus ``rest`` are everything the method attributes. ``categories`` are (category,
    share) of the positive contributions, largest first, summing to 1 (empty without a
    category column or a positive contribution). ``score`` is the recommendation's score.
    """

    item: str
    rank: int
    score: float
    method: str
    contributions: tuple[tuple[str, float], ...] = ()
    rest: float = 0.0
    categories: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "rank": self.rank, "score": self.score,
                "method": self.method,
                "contributions": [{"item": i, "weight": w} for i, w in self.contributions],
                "rest": self.rest,
                "categories": [{"category": c, "share": s} for c, s in self.categories]}


def contributions_matrix(history: np.ndarray, block: np.ndarray,
                         n_items: int) -> sp.csr_matrix:
    """What :meth:`~penchant.Model.explain` returns, from a ``len(history) × len(items)``
    ``block`` of each history item's (catalogue column ``history[h]``) contribution to each
    item's score: ``len(items) × n_items``, non-zero only in the history's columns."""
    block = np.asarray(block, dtype=np.float32).reshape(len(history), -1)
    n = block.shape[1]
    return sp.csr_matrix((block.T.ravel(), (np.repeat(np.arange(n), len(history)),
                                            np.tile(np.asarray(history, np.int64), n))),
                         shape=(n, n_items), dtype=np.float32)


def similarity_contributions(training: sp.csr_matrix, user_row: sp.csr_matrix,
                             items: np.ndarray) -> sp.csr_matrix:
    """The host's explanation for any model: ``x_uh · cos(h, j)`` for each history item h
    and item j, cosines over the columns of ``training`` for those items only (never an
    item×item matrix of the catalogue)."""
    user_row = sp.csr_matrix(user_row)
    history, weights = user_row.indices, user_row.data.astype(np.float64)
    columns = sp.csc_matrix(training, dtype=np.float64)
    a, b = columns[:, history], columns[:, np.asarray(items, np.int64)]
    dots = np.asarray((a.T @ b).toarray())
    norms = np.multiply.outer(_column_norms(a), _column_norms(b))
    cosine = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return contributions_matrix(history, weights[:, None] * cosine, training.shape[1])


def _column_norms(m: sp.csc_matrix) -> np.ndarray:
    return np.sqrt(np.asarray(m.multiply(m).sum(axis=0)).ravel())


def item_categories(table: pd.DataFrame | None, catalogue: pd.Index,
                    column: str = "category") -> np.ndarray | None:
    """Each catalogue item's category ("" for none), read as interests read it; None when
    the items side table has no such (non-empty) column."""
    if table is None or column not in table.columns:
        return None
    try:
        categories = Categories.from_items(table, column)
    except DataError:
        return None
    codes = categories.codes(catalogue)
    names = categories.names.to_numpy(dtype=str)
    return np.where(codes >= 0, names[np.clip(codes, 0, None)], "")


def explain_recommendations(model: Model, features: Features, row: int,
                            recommendations: pd.DataFrame, training: sp.csr_matrix,
                            categories: np.ndarray | None = None,
                            top: int = 5) -> list[Explanation]:
    """An :class:`Explanation` per row of ``recommendations`` (columns ``item``, ``rank``,
    ``score``) for the user at ``row`` of ``features``: the model's own explanation when it
    gives one, else item similarity over ``training`` (the run's training matrix, which a
    folded-in user's one-row ``features`` cannot stand in for)."""
    columns = features.items.get_indexer(pd.Index(recommendations["item"].astype("string")))
    if (columns < 0).any():
        raise DataError("recommended items are not in the model's catalogue")
    given = model.explain(features, row, columns)
    method = model.explanation_method or model.name
    if given is None:
        given, method = similarity_contributions(training, features.matrix[row], columns), \
            SIMILARITY
    given = _checked(sp.csr_matrix(given), (len(columns), features.shape[1]), model)
    top = max(int(top), 0)
    out = []
    for i, rec in enumerate(recommendations.itertuples(index=False)):
        part = given[i]
        part.eliminate_zeros()
        history, weights = part.indices, part.data.astype(np.float64)
        order = np.lexsort((history, -weights))
        shown = order[:top]
        out.append(Explanation(
            item=str(rec.item), rank=int(rec.rank), score=float(rec.score), method=method,
            contributions=tuple((str(features.items[history[j]]), float(weights[j]))
                                for j in shown),
            rest=float(weights[order[top:]].sum()),
            categories=category_shares(weights, history, categories)))
    return out


def _checked(given: sp.csr_matrix, expected: tuple[int, int], model: Model) -> sp.csr_matrix:
    """A plugin's wrong explanation is named here, not found later as a numpy error."""
    if given.shape != expected:
        raise PluginError(f"model {model.name!r} explained with a matrix of shape "
                          f"{given.shape}; expected {expected} (one row per item asked "
                          "about, one column per catalogue item)")
    if not np.isfinite(given.data).all():
        raise PluginError(f"model {model.name!r} explained with non-finite contributions")
    return given


def category_shares(weights: np.ndarray, history: np.ndarray,
                    categories: np.ndarray | None) -> tuple[tuple[str, float], ...]:
    """(category, share) of the positive ``weights`` of the ``history`` columns, largest
    first (ties by name); empty when nothing positive falls in a category."""
    if categories is None or len(history) == 0:
        return ()
    names = categories[history]
    positive = np.clip(weights, 0, None)
    keep = (names != "") & (positive > 0)
    if not keep.any():
        return ()
    totals = pd.Series(positive[keep]).groupby(names[keep]).sum()
    totals = totals / totals.sum()
    ranked = sorted(totals.items(), key=lambda pair: (-pair[1], pair[0]))
    return tuple((str(name), float(share)) for name, share in ranked)


def render(explanations: Sequence[Explanation]) -> str:
    """The text ``penchant recommend --explain`` prints: each item, then why."""
    lines = []
    for e in explanations:
        lines.append(f"{e.rank:>4}  {e.item}  {e.score:.4g}  ({e.method})")
        if e.contributions:
            shown = ", ".join(f"{item} {weight:+.3g}" for item, weight in e.contributions)
            rest = f"; other history {e.rest:+.3g}" if e.rest else ""
            lines.append(f"      from: {shown}{rest}")
        else:
            lines.append("      from: no item of this user's history")
        if e.categories:
            lines.append("      categories: " + ", ".join(f"{name} {share:.0%}"
                                                         for name, share in e.categories))
    return "\n".join(lines)
