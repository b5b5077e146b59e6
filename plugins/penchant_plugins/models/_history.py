"""The first layer the autoencoders share: a history row times an items × width table.

A history row is typically well under 1 % non-zero, so a dense product would spend nearly
all of an encoder's first-layer arithmetic, forward and backward, on zeros. Kept as a table
read by ``embedding_bag``, the product is the weighted sum of the user's items' rows, read
contiguously; dropout is drawn on the non-zeros alone, the same in distribution (a dropped
zero is still zero)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from penchant.training import SparseRows


def history_product(x: torch.Tensor | SparseRows, table: torch.Tensor, bias: torch.Tensor,
                    drop: nn.Dropout) -> torch.Tensor:
    """drop(x / ‖x‖₂) · table + bias for history rows ``x``, dense or sparse.

    Gradients reach a dense ``x`` through its non-zeros: all that gradient × input
    explanations read."""
    if isinstance(x, SparseRows):
        rows, cols, values = x.row_of_each(), x.columns, x.values
        starts, n = x.starts, x.n_rows
    else:
        rows, cols = x.nonzero(as_tuple=True)
        values, n = x[rows, cols], len(x)
        starts = torch.searchsorted(rows, torch.arange(n, device=x.device))
    norm = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(
        0, rows, values * values).sqrt().clamp_min(1e-12)
    weights = drop(values / norm[rows]).to(table.dtype)
    return F.embedding_bag(cols, table, starts, mode="sum", per_sample_weights=weights) + bias


def initial_table(n_items: int, width: int) -> tuple[nn.Parameter, nn.Parameter]:
    """A table and bias initialised as ``nn.Linear(n_items, width)`` would be."""
    first = nn.Linear(n_items, width)
    return nn.Parameter(first.weight.detach().t().contiguous()), first.bias


Hook = Callable[..., None]


def read_dense_first_layer(old: str, n_items: int, side: str | None = None,
                           renumber: str | None = None) -> Hook:
    """A ``load_state_dict`` pre-hook for checkpoints written while the first layer was a
    dense ``nn.Linear`` at ``old`` (width × items, then any side-feature columns): its
    weight becomes ``table`` (and the side columns the weight at ``side``), its bias
    ``bias``; with ``renumber``, the layers that followed it in that ``nn.Sequential``
    move up one place, as the table left it."""

    def hook(_: nn.Module, state: dict, prefix: str, *__: object) -> None:
        weight = state.pop(prefix + old + ".weight", None)
        if weight is None:
            return
        state[prefix + "table"] = weight[:, :n_items].t().contiguous()
        state[prefix + "bias"] = state.pop(prefix + old + ".bias")
        if side is not None:
            state[prefix + side + ".weight"] = weight[:, n_items:].contiguous()
        if renumber is not None:
            start = prefix + renumber + "."
            moved = sorted((k for k in state if k.startswith(start)),
                           key=lambda k: int(k[len(start):].split(".")[0]))
            for key in moved:
                index, rest = key[len(start):].split(".", 1)
                state[f"{start}{int(index) - 1}.{rest}"] = state.pop(key)

    return hook
