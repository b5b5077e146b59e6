"""A conditional Mult-VAE that also reads who the user is and what the items are."""

from __future__ import annotations

import torch
from torch import nn

from penchant import Features, Param
from penchant.training import Batch, Dimensions, SparseRows, side_block
from penchant_plugins.models._history import (
    history_product,
    initial_table,
    read_dense_first_layer,
)
from penchant_plugins.models.vae import MultVAE


class ConditionalVAENet(nn.Module):
    """Encoder and decoder both see the user's side features; items are scored against
    embeddings that mix a free vector with a projection of the item's attributes, so what
    is learnt about a category or brand carries over to every item in it. The encoder's
    first layer is an items × hidden table (see :mod:`penchant_plugins.models._history`)
    plus a projection of the side features."""

    def __init__(self, dims: Dimensions, hidden: int, latent: int, embedding: int,
                 dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.table, self.bias = initial_table(dims.n_items, hidden)
        self.side_in = nn.Linear(dims.user_side, hidden, bias=False) \
            if dims.user_side else None
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent + dims.user_side, hidden), nn.Tanh(),
                                     nn.Linear(hidden, embedding))
        self.item_free = nn.Parameter(torch.randn(dims.n_items, embedding) * 0.01)
        self.item_bias = nn.Parameter(torch.zeros(dims.n_items))
        self.item_project = nn.Linear(dims.item_side, embedding, bias=False) \
            if dims.item_side else None
        self.register_buffer("item_side", torch.zeros(dims.n_items, dims.item_side))
        self.register_load_state_dict_pre_hook(read_dense_first_layer(
            "encoder.0", dims.n_items, side="side_in" if dims.user_side else None))

    def item_embeddings(self) -> torch.Tensor:
        if self.item_project is None:
            return self.item_free
        return self.item_free + self.item_project(self.item_side)

    def encode(self, x: torch.Tensor | SparseRows, side: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        h = history_product(x, self.table, self.bias, self.drop)
        if self.side_in is not None:
            h = h + self.side_in(side)
        h = torch.tanh(h)
        return self.to_mu(h), self.to_logvar(h)

    def forward(self, x: torch.Tensor | SparseRows, side: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x, side)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        out = self.decoder(torch.cat([z, side], dim=1))
        return out @ self.item_embeddings().T + self.item_bias, mu, logvar


class ConditionalVAE(MultVAE):
    """Mult-VAE conditioned on side information. A user with three clicks is mostly
    unknown to a plain VAE; their age, region and habits, and the categories and brands
    of those three items, say much more. Pair it with the ``user-features``,
    ``behaviour-features`` and ``item-features`` extractors."""

    name = "cvae"
    description = ("Conditional Mult-VAE: the encoder and decoder read user side features; "
                   "items are scored through embeddings of their attributes.")
    params = (*MultVAE.params,
              Param("embedding", "int", 64, min=1, help="size of the item embeddings"))
    uses_user_side = True

    def build(self, dims: Dimensions) -> nn.Module:
        p = self.params
        return ConditionalVAENet(dims, p.hidden, p.latent, p.embedding, p.dropout)

    def prepare(self, features: Features) -> None:
        if not self.dims.item_side:  # user features only: items are free embeddings
            return
        block = torch.from_numpy(side_block(features.item_side))
        self.module.item_side.copy_(block.to(self.module.item_side.device))

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.module(batch.input, batch.side)

    def latent(self, batch: Batch) -> torch.Tensor:
        """The encoder's mean, given the user's side features."""
        return self.module.encode(batch.input, batch.side)[0]
