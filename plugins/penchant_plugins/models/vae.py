"""Mult-VAE (Liang et al., 2018), Penchant's default model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from penchant import Param
from penchant.training import Batch, Dimensions, SparseRows, TorchModel
from penchant_plugins.models._history import (
    history_product,
    initial_table,
    read_dense_first_layer,
)


class MultVAENet(nn.Module):
    """Encoder n_items → hidden → (mu, logvar); decoder latent → hidden → n_items logits.
    The first layer is an items × hidden table (``table``, ``bias``; see
    :mod:`penchant_plugins.models._history`)."""

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.table, self.bias = initial_table(n_items, hidden)
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(),
                                     nn.Linear(hidden, n_items))
        self.register_load_state_dict_pre_hook(read_dense_first_layer("encoder.0", n_items))

    def encode(self, x: torch.Tensor | SparseRows) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: users × items, each row a history (mostly zeros), dense or sparse rows."""
        h = torch.tanh(history_product(x, self.table, self.bias, self.drop))
        return self.to_mu(h), self.to_logvar(h)

    def forward(self, x: torch.Tensor | SparseRows
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar


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
