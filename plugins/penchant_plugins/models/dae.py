"""Mult-DAE (Liang et al., 2018): Mult-VAE's denoising sibling, without the variational part."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from penchant import Param
from penchant.training import Batch, Dimensions, SparseRows, TorchModel
from penchant_plugins.models._history import (
    history_product,
    initial_table,
    read_dense_first_layer,
)
from penchant_plugins.models.vae import multinomial_nll


class MultDAENet(nn.Module):
    """Input dropout on the L2-normalised row, then a tanh autoencoder
    n_items → hidden → latent → hidden → n_items logits (the paper's
    [I → 600 → 200 → 600 → I]); with ``hidden = 0`` the shape is [I → latent → I]. The
    first layer is an items × width table (``table``, ``bias``; see
    :mod:`penchant_plugins.models._history`)."""

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        widths = [n_items, *([hidden] if hidden else []), latent]
        self.table, self.bias = initial_table(n_items, widths[1])
        layers: list[nn.Module] = [nn.Tanh()]
        for a, b in pairwise(widths[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.encoder = nn.Sequential(*layers)
        back = widths[::-1]
        layers = []
        for a, b in pairwise(back):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.decoder = nn.Sequential(*layers[:-1])  # no tanh on the output logits
        self.register_load_state_dict_pre_hook(
            read_dense_first_layer("encoder.0", n_items, renumber="encoder"))

    def encode(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        return self.encoder(history_product(x, self.table, self.bias, self.drop))

    def forward(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        return self.decoder(self.encode(x))


class MultDAE(TorchModel):
    """A denoising autoencoder with a multinomial likelihood: items compete for the user's
    next interactions, which ranks better than per-item losses. Without the variational
    part it has no KL term to anneal, trains faster, and in the paper does about as well as
    Mult-VAE on dense data (slightly worse on very sparse users). Regularise with the
    ``weight_decay`` training parameter (the paper's L2 penalty) and input ``dropout``."""

    name = "dae"
    description = ("Mult-DAE: denoising autoencoder with input dropout and multinomial "
                   "likelihood, Mult-VAE without the variational part (Liang et al. 2018).")
    params = (
        Param("hidden", "int", 600, min=0,
              help="width of the hidden layers around the latent one (0: none, I→latent→I)"),
        Param("latent", "int", 200, min=1, help="size of the bottleneck layer"),
        Param("dropout", "float", 0.5, min=0, max=0.99, help="input dropout while training"),
    )

    def build(self, dims: Dimensions) -> nn.Module:
        p = self.params
        return MultDAENet(dims.n_items, p.hidden, p.latent, p.dropout)

    def losses(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        logits = self.module(batch.input)
        nll = multinomial_nll(logits, batch.goal_rows)
        return {"loss": nll, "nll": nll.detach()}

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.module(batch.input)

    def latent(self, batch: Batch) -> torch.Tensor:
        """The bottleneck layer's output."""
        return self.module.encode(batch.input)
