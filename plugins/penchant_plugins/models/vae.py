"""Mult-VAE (Liang et al., 2018), Penchant's default model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from penchant import Param
from penchant.training import Batch, Dimensions, TorchModel


class MultVAENet(nn.Module):
    """Encoder n_items → hidden → (mu, logvar); decoder latent → hidden → n_items logits."""

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        # Checkpoints name the first layer's weights after this Sequential (encoder.0).
        self.encoder = nn.Sequential(nn.Linear(n_items, hidden), nn.Tanh())
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(),
                                     nn.Linear(hidden, n_items))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: users × items, each row a history (mostly zeros)."""
        h = torch.tanh(self.first_layer(F.normalize(x, dim=-1)))
        return self.to_mu(h), self.to_logvar(h)

    def first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout, then the first linear layer, over the non-zeros of ``x`` alone.

        A history row is typically well under 1 % non-zero, so the dense product spends
        nearly all of the encoder's arithmetic, forward and backward, on zeros, and dense
        dropout draws a random number per zero. Dropping only non-zeros is the same in
        distribution (a dropped zero is still zero), and the product becomes a weighted
        sum of the weight rows of each user's items. Gradients still reach ``x`` through
        its non-zeros, which is all that gradient × input explanations read."""
        linear = self.encoder[0]
        rows, cols = x.nonzero(as_tuple=True)
        values = self.drop(x[rows, cols])
        starts = torch.searchsorted(rows, torch.arange(len(x), device=x.device))
        # embedding_bag gathers rows of an items × hidden table: the transposed weight. As
        # a view it is read with a stride, costly per non-zero; a contiguous copy costs one
        # pass over the whole weight (~16 ms at 10k items). A few non-zeros (one user being
        # scored) are cheaper gathered in place, a training batch's many after the copy.
        table = linear.weight.t()
        if len(cols) * 8 > table.shape[0]:
            table = table.contiguous()
        return F.embedding_bag(cols, table, starts, mode="sum",
                               per_sample_weights=values.to(linear.weight.dtype)) + linear.bias

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar


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
        return self.module(batch.x)

    def losses(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        logits, mu, logvar = self.forward(batch)
        nll = -(F.log_softmax(logits.float(), dim=1) * batch.goal).sum(dim=1).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
        beta = self.beta(step)
        return {"loss": nll + beta * kl, "nll": nll.detach(), "kl": kl.detach(),
                "beta": torch.tensor(beta)}

    def predict(self, batch: Batch) -> torch.Tensor:
        logits, _, _ = self.forward(batch)
        return logits

    def latent(self, batch: Batch) -> torch.Tensor:
        """The encoder's mean: where the user sits in the latent interest space."""
        return self.module.encode(batch.x)[0]
