"""Item-based k-nearest neighbours over the interaction matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from penchant import Context, DataError, Features, Model, Param
from penchant.explain import contributions_matrix

#: Largest item-similarity block (rows × items) handled at once: bounds fit memory whatever
#: the catalogue size (4M entries: a few 32 MB arrays at worst).
BLOCK_ENTRIES = 1 << 22
#: Blocks with more non-zeros than this share of their entries are handled dense.
DENSE_SHARE = 0.1


class ItemKNN(Model):
    """Cheap, sparse and hard to beat: "users who had this also had that" needs no training
    loop and no dense item×item matrix, so it scales to catalogues where EASE cannot, and
    its scores are explainable (each comes from items in the user's own history)."""

    name = "itemknn"
    explanation_method = "exact"
    description = ("Item-based k-nearest neighbours: cosine similarity with shrinkage, the "
                   "top neighbours of each item kept in a sparse matrix.")
    params = (
        Param("neighbours", "int", 100, min=1,
              help="similar items kept per item; fewer is faster and sharper"),
        Param("shrink", "float", 10.0, min=0,
              help="added to the cosine's denominator: damps similarities resting on few "
                   "co-occurrences"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, features: Features, validation: Any, ctx: Context) -> None:
        x = sp.csr_matrix(features.matrix, dtype=np.float64)
        n_items = x.shape[1]
        k = min(int(self.params.neighbours), max(n_items - 1, 1))
        shrink = float(self.params.shrink)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        xt = x.T.tocsr()  # items × users: a block of items is a cheap row slice
        step = max(1, BLOCK_ENTRIES // max(n_items, 1))
        rows, cols, vals = [], [], []
        for start in range(0, n_items, step):
            ctx.check_cancelled()
            stop = min(start + step, n_items)
            r, c, v = _top_neighbours(xt[start:stop] @ x, start, norms, shrink, k)
            rows.append(r)
            cols.append(c)
            vals.append(v)
            ctx.progress("fit", stop, n_items)
        # w[j, i] = sim(j, i) for the neighbours i of j; scores sum over each target's
        # neighbours, so S = wᵀ and score(u, j) = Σ_i x[u, i] · S[i, j].
        w = sp.csr_matrix((np.concatenate(vals).astype(np.float32),
                           (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n_items, n_items), dtype=np.float32)
        self.similarity = w.T.tocsr()
        self.similarity.sort_indices()
        ctx.log(f"itemknn: {self.similarity.nnz} similarities over {n_items} items "
                f"(up to {k} neighbours each, shrink {shrink:g})")

    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        x = features.matrix
        if x.shape[1] != self.similarity.shape[0]:
            raise DataError(f"itemknn: features have {x.shape[1]} items but the model was "
                            f"fitted on {self.similarity.shape[0]}")
        out = x[np.asarray(rows)].astype(np.float32) @ self.similarity
        return np.asarray(out.toarray(), dtype=np.float32)

    def explain(self, features: Features, row: int, items: np.ndarray) -> sp.csr_matrix:
        """Exact: score(u, j) = Σ_i x_ui · S_ij, one term per history item i."""
        x = features.matrix[row]
        block = self.similarity[x.indices][:, np.asarray(items)].toarray()
        return contributions_matrix(x.indices, x.data[:, None] * block,
                                    self.similarity.shape[1])

    def state(self) -> dict[str, Any]:
        s = self.similarity
        return {"data": torch.from_numpy(s.data.astype(np.float32)),
                "indices": torch.from_numpy(s.indices.astype(np.int64)),
                "indptr": torch.from_numpy(s.indptr.astype(np.int64)),
                "shape": [int(s.shape[0]), int(s.shape[1])]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.similarity = sp.csr_matrix(
            (state["data"].numpy(), state["indices"].numpy(), state["indptr"].numpy()),
            shape=tuple(int(d) for d in state["shape"]), dtype=np.float32)


def _top_neighbours(dots: sp.csr_matrix, offset: int, norms: np.ndarray, shrink: float,
                    k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item, neighbour, similarity) of the k best neighbours of the block's items.

    ``dots`` holds the dot products of items ``offset…`` (rows) with every item. Ties go to
    the lower neighbour index, so the result does not depend on how items are blocked;
    similarities ≤ 0 (possible only with negative weights) are never kept.
    A block that is mostly filled is handled dense (linear-time selection), a sparse one
    by sorting its non-zeros.
    """
    n_rows, n_items = dots.shape
    items = np.arange(offset, offset + n_rows)
    if dots.nnz > DENSE_SHARE * n_rows * n_items:
        sim = dots.toarray()
        sim /= np.multiply.outer(norms[items], norms) + shrink
        sim[np.arange(n_rows), items] = 0.0
        sim[~np.isfinite(sim)] = 0.0
        if k < n_items:
            # the k-th best value per row; everything better is kept, ties by lowest index
            kth = -np.partition(-sim, k - 1, axis=1)[:, k - 1:k]
            above = sim > kth
            tied = sim == kth
            room = k - above.sum(axis=1, keepdims=True)
            keep = above | (tied & (np.cumsum(tied, axis=1) <= room))
            sim = np.where(keep, sim, 0.0)
        r, c = np.nonzero(sim > 0)
        return r + offset, c, sim[r, c]
    dots = dots.tocoo()
    r, c, v = dots.row.astype(np.int64), dots.col.astype(np.int64), dots.data
    sim = v / (norms[r + offset] * norms[c] + shrink)
    keep = (c != r + offset) & (sim > 0) & np.isfinite(sim)
    r, c, sim = r[keep], c[keep], sim[keep]
    counts = np.bincount(r, minlength=n_rows)
    if counts.max(initial=0) > k:
        order = np.lexsort((c, -sim, r))  # by item, best first, ties by neighbour index
        r, c, sim = r[order], c[order], sim[order]
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        keep = np.arange(len(r)) - starts < k
        r, c, sim = r[keep], c[keep], sim[keep]
    return r + offset, c, sim
