"""CDAE, the Collaborative Denoising Autoencoder (Wu et al., 2016)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from penchant import Features, Param
from penchant.training import Batch, Dimensions, TorchModel


def present(x: torch.Tensor) -> torch.Tensor:
    """1 where the user has the item, else 0. Gradients pass straight through, so gradient
    × input (:meth:`TorchModel.explain`) can credit items the network reads only as there
    or not."""
    hard = (x > 0).to(x.dtype)
    return hard + (x - x.detach()) if x.requires_grad else hard


def sample_negatives(seen: torch.Tensor, ratio: float) -> torch.Tensor:
    """A boolean mask of unseen items, about ``ratio`` × (items seen) per user, drawn on the
    batch's device; ``ratio = 0`` takes every unseen item."""
    unseen = ~seen
    if ratio <= 0:
        return unseen
    n_seen = seen.sum(dim=1, keepdim=True).float()
    n_unseen = unseen.sum(dim=1, keepdim=True).float().clamp(min=1)
    chance = (ratio * n_seen / n_unseen).clamp(max=1)
    return unseen & (torch.rand(seen.shape, device=seen.device) < chance)


class CDAENet(nn.Module):
    """Corrupted binary row → sigmoid(W·ỹ + V_u + b) → item logits. Users outside the
    training index (row -1) get the mean (or a zero) user vector."""

    def __init__(self, n_users: int, n_items: int, hidden: int, dropout: float,
                 unknown_user: str) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Linear(n_items, hidden)
        self.user = nn.Embedding(max(n_users, 1), hidden)
        nn.init.normal_(self.user.weight, std=0.01)
        self.decoder = nn.Linear(hidden, n_items)
        self.unknown_user = unknown_user

    def user_vectors(self, rows: torch.Tensor) -> torch.Tensor:
        known = rows >= 0
        vectors = self.user(rows.clamp(min=0))
        if bool(known.all()):
            return vectors
        if self.unknown_user == "mean":
            fallback = self.user.weight.mean(dim=0).expand_as(vectors)
        else:
            fallback = torch.zeros_like(vectors)
        return torch.where(known.unsqueeze(1), vectors, fallback)

    def encode(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(self.drop(x)) + self.user_vectors(rows))

    def forward(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x, rows))


class CDAE(TorchModel):
    """A denoising autoencoder over each user's (binarised) interactions with a learned
    per-user vector added to the hidden layer, so it models both what items go together and
    what this user is like. Trained with binary cross-entropy on the user's items plus
    sampled unseen ones, it is cheap per batch and strong on implicit feedback. Users folded
    in after training have no learned vector and use the mean one (or zero), so the model
    still scores them from their history alone."""

    name = "cdae"
    description = ("CDAE: collaborative denoising autoencoder, a per-user vector in the hidden "
                   "layer, BCE on seen items plus sampled negatives (Wu et al. 2016).")
    params = (
        Param("hidden", "int", 50, min=1, help="width of the hidden layer"),
        Param("dropout", "float", 0.5, min=0, max=0.99,
              help="probability q of dropping each input item while training"),
        Param("negatives", "float", 5.0, min=0,
              help="unseen items sampled per seen item for the loss (0: every unseen item)"),
        Param("unknown_user", "str", "mean", choices=("mean", "zero"),
              help="user vector for users folded in after training: the mean one, or zero"),
    )

    def build(self, dims: Dimensions) -> nn.Module:
        p = self.params
        return CDAENet(dims.n_users, dims.n_items, p.hidden, p.dropout, p.unknown_user)

    def losses(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        goal = batch.goal > 0  # the input itself, or what comes next (next-window)
        target = goal.float()
        logits = self.module(present(batch.x), batch.rows).float()
        picked = (goal | sample_negatives(goal, self.params.negatives)).float()
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        loss = (bce * picked).sum(dim=1).mean()
        return {"loss": loss, "bce": loss.detach()}

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.module(present(batch.x), batch.rows)

    def latent(self, batch: Batch) -> torch.Tensor:
        """The hidden layer: the user's history and learned vector, through the sigmoid."""
        return self.module.encode(present(batch.x), batch.rows)

    def explain(self, features: Features, row: int,
                items: np.ndarray) -> sp.csr_matrix | None:
        """Credit goes to each item being there (the input is 1), not to its weight, which
        the network never sees."""
        binary = replace(features, matrix=(features.matrix > 0).astype(np.float32))
        return super().explain(binary, row, items)
