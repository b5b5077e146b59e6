"""Mult-VAE (Liang et al., 2018), Penchant's default model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from penchant import Param
from penchant.training import Batch, Dimensions, SparseRows, TorchModel


class MultVAENet(nn.Module):
    """Encoder n_items → hidden → (mu, logvar); decoder latent → hidden → n_items logits.

    The first layer is an items × hidden table (``table``, ``bias``): a history row's
    product with it is the weighted sum of its items' rows (``embedding_bag``), read
    contiguously. A history row is typically well under 1 % non-zero, so a dense product
    would spend nearly all of the encoder's arithmetic, forward and backward, on zeros;
    and dropout is drawn on the non-zeros alone, the same in distribution (a dropped zero
    is still zero)."""

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        first = nn.Linear(n_items, hidden)  # for its initialisation
        self.table = nn.Parameter(first.weight.detach().t().contiguous())
        self.bias = first.bias
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(),
                                     nn.Linear(hidden, n_items))
        self.register_load_state_dict_pre_hook(_dense_first_layer)

    def encode(self, x: torch.Tensor | SparseRows) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: users × items, each row a history (mostly zeros), dense or sparse rows."""
        if isinstance(x, SparseRows):
            rows, cols, values = x.row_of_each(), x.columns, x.values
            starts, n = x.starts, x.n_rows
        else:
            # Gradients reach a dense x through its non-zeros: all that gradient × input
            # explanations read.
            rows, cols = x.nonzero(as_tuple=True)
            values, n = x[rows, cols], len(x)
            starts = torch.searchsorted(rows, torch.arange(n, device=x.device))
        norm = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(
            0, rows, values * values).sqrt().clamp_min(1e-12)
        weights = self.drop(values / norm[rows]).to(self.table.dtype)
        h = torch.tanh(F.embedding_bag(cols, self.table, starts, mode="sum",
                                       per_sample_weights=weights) + self.bias)
        return self.to_mu(h), self.to_logvar(h)

    def forward(self, x: torch.Tensor | SparseRows
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar


def _dense_first_layer(_: nn.Module, state: dict, prefix: str, *__: object) -> None:
    """Checkpoints written before the first layer became a table hold it as a dense
    layer, ``encoder.0`` (hidden × items): read them as the table."""
    old = prefix + "encoder.0.weight"
    if old in state:
        state[prefix + "table"] = state.pop(old).t().contiguous()
        state[prefix + "bias"] = state.pop(prefix + "encoder.0.bias")


def multinomial_nll(logits: torch.Tensor, goal: SparseRows) -> torch.Tensor:
    """Mean over users of −Σ_i goal_ui · log softmax(logits_u)_i, read at the goal's
    non-zeros only."""
    log_p = F.log_softmax(logits.float(), dim=1)
    picked = log_p[goal.row_of_each(), goal.columns] * goal.values
    return -picked.sum() / goal.n_rows


class MultVAE(TorchModel):
    """Multinomial likelihood fits "which items will get this user's next interactions"
    better than per-item losses; KL annealing to a β cap keeps the latent space useful
    without over-regularising (the paper's key finding)."""

    name = "vae"
    description = ("Mult-VAE: variational autoencoder with multinomial likelihood, input "
                   "dropout and KL annealing to a β cap (Liang et al. 2018).")
    params = (
        Param("hidden", "int", 600, min=1, help="width of the hidden layer"),
        Param("latent", "int", 200, min=1, help="size of the latent interest state"),
        Param("dropout", "float", 0.5, min=0, max=0.99, help="input dropout while training"),
        Param("beta_cap", "float", 0.2, min=0, help="largest weight of the KL term"),
        Param("anneal_steps", "int", 2000, min=1,
              help="batches over which β rises linearly from 0 to beta_cap"),
    )

    def build(self, dims: Dimensions) -> nn.Module:
        p = self.params
        return MultVAENet(dims.n_items, p.hidden, p.latent, p.dropout)

    def beta(self, step: int) -> float:
        return min(self.params.beta_cap, self.params.beta_cap * step / self.params.anneal_steps)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.module(batch.input)

    def losses(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        logits, mu, logvar = self.forward(batch)
        nll = multinomial_nll(logits, batch.goal_rows)
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
        beta = self.beta(step)
        return {"loss": nll + beta * kl, "nll": nll.detach(), "kl": kl.detach(),
                "beta": torch.tensor(beta)}

    def predict(self, batch: Batch) -> torch.Tensor:
        logits, _, _ = self.forward(batch)
        return logits

    def latent(self, batch: Batch) -> torch.Tensor:
        """The encoder's mean: where the user sits in the latent interest space."""
        return self.module.encode(batch.input)[0]
