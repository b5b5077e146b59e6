"""EASE (Steck, 2019): a shallow linear autoencoder with a closed-form solution."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy import linalg

from penchant import Context, DataError, Features, Model, Param, PipelineError
from penchant.explain import contributions_matrix

#: Bytes per item² while fitting: at the peak the float64 Cholesky factor and the float64
#: inverse (16), plus headroom for the float32 weights, sparse products and the allocator.
BYTES_PER_ITEM_PAIR = 20
_ROW_BLOCK = 1024


class EASE(Model):
    """One ridge regression of every item on all the others, solved exactly: no epochs, no
    tuning beyond λ, and on many public data sets as accurate as deep models. The price is
    a dense items×items matrix, so fit checks the memory first and refuses with advice
    rather than letting the machine swap or the process be killed."""

    name = "ease"
    explanation_method = "exact"
    description = ("EASE: closed-form linear item-item model (Steck 2019), B = -P/diag(P) "
                   "with P = (XᵀX + λI)⁻¹; needs a dense items×items matrix.")
    params = (
        Param("l2", "float", 500.0, min=0,
              help="λ, the L2 penalty on the weights; larger for denser data"),
        Param("max_items", "int", 30000, min=1,
              help="refuse catalogues larger than this (memory grows with items²)"),
        Param("top_items", "int", 0, min=0,
              help="fit on the N items most users touched (0: every item); the rest score "
                   "0, no evidence. The long tail co-occurs too rarely to learn from, and "
                   "time and memory grow with N³ and N²"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.weights = np.zeros((0, 0), dtype=np.float32)
        #: The catalogue columns the weights cover (None: all of them, in order).
        self.columns: np.ndarray | None = None
        self.n_items = 0

    def fit(self, features: Features, validation: Any, ctx: Context) -> None:
        x = sp.csr_matrix(features.matrix, dtype=np.float64)
        self.n_items = x.shape[1]
        self.columns = most_touched(x, self.params.top_items)
        if self.columns is not None:
            x = x[:, self.columns]
        n = x.shape[1]
        self.check_size(n)
        ctx.log(f"ease: Gram matrix of {n} items"
                + (f" (the most touched of {self.n_items})" if self.columns is not None else ""))
        gram = _gram(x, ctx)
        gram[np.diag_indices(n)] += float(self.params.l2)
        p = _spd_inverse(gram, self.params.l2)
        del gram  # the Cholesky factor: free it before the weights are built
        ctx.check_cancelled()
        self.weights = _weights(p)
        ctx.log(f"ease: fitted {n}×{n} weights (λ={self.params.l2:g})")

    def check_size(self, n: int) -> None:
        """Refuse, with what to do instead, a catalogue too large for this machine."""
        advice = ("Use plugin = \"itemknn\" (sparse, any catalogue size), or add "
                  "[[preprocess]] plugin = \"k-core\" (or raise its item_min) to cut the "
                  "catalogue below {limit} items, or raise max_items if the machine has the "
                  "memory.")
        need = BYTES_PER_ITEM_PAIR * n * n
        limit = int(self.params.max_items)
        if n > limit:
            raise PipelineError(
                f"[model] ease: {n} items is more than max_items = {limit} (it would need "
                f"about {_gib(need)} of memory). " + advice.format(limit=limit))
        have = available_memory()
        if have is not None and need > have:
            fits = int((have / BYTES_PER_ITEM_PAIR) ** 0.5)
            raise PipelineError(
                f"[model] ease: {n} items need about {_gib(need)} of memory for the dense "
                f"{n}×{n} matrices, but only {_gib(have)} is available. "
                + advice.format(limit=min(fits, limit)))

    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        x = features.matrix
        if x.shape[1] != self.n_items:
            raise DataError(f"ease: features have {x.shape[1]} items but the model was "
                            f"fitted on {self.n_items}")
        x = x[np.asarray(rows)].astype(np.float32)
        if self.columns is None:
            return np.asarray(x @ self.weights, dtype=np.float32)
        out = np.zeros((x.shape[0], self.n_items), dtype=np.float32)
        out[:, self.columns] = x[:, self.columns] @ self.weights
        return out

    def explain(self, features: Features, row: int, items: np.ndarray) -> sp.csr_matrix:
        """Exact: score(u, j) = Σ_i x_ui · B_ij, one term per history item i (none from
        or to an item outside ``top_items``)."""
        x = features.matrix[row]
        items = np.asarray(items)
        if self.columns is None:
            block = self.weights[np.ix_(x.indices, items)]
        else:
            where = np.full(self.n_items, -1)
            where[self.columns] = np.arange(len(self.columns))
            h, j = where[x.indices], where[items]
            block = np.zeros((len(h), len(j)), dtype=np.float32)
            inside = np.ix_(h >= 0, j >= 0)
            block[inside] = self.weights[np.ix_(h[h >= 0], j[j >= 0])]
        return contributions_matrix(x.indices, x.data[:, None] * block, self.n_items)

    def state(self) -> dict[str, Any]:
        out = {"weights": torch.from_numpy(self.weights), "n_items": self.n_items}
        if self.columns is not None:
            out["columns"] = torch.from_numpy(self.columns)
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"].numpy()
        self.n_items = int(state.get("n_items", self.weights.shape[0]))
        self.columns = state["columns"].numpy() if "columns" in state else None


def most_touched(x: sp.csr_matrix, n: int) -> np.ndarray | None:
    """The columns of the ``n`` items most users touched, in catalogue order (ties go to
    the earlier column); None when ``n`` is 0 or covers the catalogue."""
    if not n or n >= x.shape[1]:
        return None
    users = np.bincount(x.indices, minlength=x.shape[1])
    return np.sort(np.argsort(-users, kind="stable")[:n])


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable, capped by a cgroup limit."""
    have = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    have = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if have is None:
        try:
            have = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            have = min(have, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return have


def _gram(x: sp.csr_matrix, ctx: Context) -> np.ndarray:
    """Dense XᵀX, filled in row blocks so the sparse products stay small."""
    n = x.shape[1]
    xt = x.T.tocsr()
    gram = np.empty((n, n), dtype=np.float64)
    for start in range(0, n, _ROW_BLOCK):
        ctx.check_cancelled()
        stop = min(start + _ROW_BLOCK, n)
        gram[start:stop] = (xt[start:stop] @ x).toarray()
    return gram


def _spd_inverse(gram: np.ndarray, l2: float) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix: Cholesky in place, then a solve
    against the identity (BLAS-3 triangular solves; LAPACK's potri is several times slower).

    ``gram.T`` is the same symmetric matrix in the Fortran order LAPACK factors in place.
    """
    try:
        factor = linalg.cho_factor(gram.T, lower=False, overwrite_a=True, check_finite=False)
    except linalg.LinAlgError:
        raise PipelineError(f"[model] ease: XᵀX + λI is not positive definite with "
                            f"l2 = {l2:g} (an item no user has, or items always seen "
                            "together); raise l2 above 0") from None
    eye = np.eye(gram.shape[0], dtype=np.float64, order="F")
    return linalg.cho_solve(factor, eye, overwrite_b=True, check_finite=False)


def _weights(p: np.ndarray) -> np.ndarray:
    """B = -P / diag(P) column-wise, zero diagonal, as float32 (built in row blocks)."""
    n = p.shape[0]
    if p.flags.f_contiguous:
        p = p.T  # P is symmetric: read it in rows, the way it lies in memory
    scale = -1.0 / np.diag(p).copy()
    out = np.empty((n, n), dtype=np.float32)
    for start in range(0, n, _ROW_BLOCK):
        stop = min(start + _ROW_BLOCK, n)
        out[start:stop] = p[start:stop] * scale
    out[np.diag_indices(n)] = 0.0
    return out


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"
