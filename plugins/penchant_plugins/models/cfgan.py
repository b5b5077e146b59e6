"""CFGAN (Chae et al., 2018): a GAN that generates purchase vectors, not item ids."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from penchant import Param, PipelineError
from penchant.training import Batch, Dimensions, TorchModel, autocast

#: Adam's momentum lowered from 0.9 to 0.5, the usual GAN setting (Radford et al. 2016): the
#: two nets' targets move every step, and long momentum makes them overshoot each other.
GAN_BETAS = (0.5, 0.999)


def sample_unseen(seen: torch.Tensor, fraction: float) -> torch.Tensor:
    """A boolean mask of about ``fraction`` of each user's unseen items, drawn on the
    batch's device."""
    if fraction <= 0:
        return torch.zeros_like(seen)
    return ~seen & (torch.rand(seen.shape, device=seen.device) < fraction)


def mlp(widths: list[int], activation: type[nn.Module], **kwargs: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in pairwise(widths):
        layers += [nn.Linear(a, b), activation(**kwargs)]
    return nn.Sequential(*layers[:-1])  # the last layer gives logits


class CFGANNet(nn.Module):
    """G: condition (the user's purchase vector, plus optional noise) → item logits;
    D: (vector over items, condition) → logit of "this is the user's real vector"."""

    def __init__(self, n_items: int, g_hidden: int, g_layers: int, d_hidden: int,
                 d_layers: int, noise: int) -> None:
        super().__init__()
        self.noise = noise
        self.generator = mlp([n_items + noise, *[g_hidden] * g_layers, n_items], nn.ReLU)
        self.discriminator = mlp([2 * n_items, *[d_hidden] * d_layers, 1], nn.LeakyReLU,
                                 negative_slope=0.2)

    def generate(self, condition: torch.Tensor) -> torch.Tensor:
        """Item logits for each condition; noise is drawn while training and is zero (its
        mean) when scoring, so scores are deterministic."""
        if self.noise:
            shape = (condition.shape[0], self.noise)
            z = (torch.randn(shape, device=condition.device) if self.training
                 else torch.zeros(shape, device=condition.device))
            condition = torch.cat([condition, z.to(condition.dtype)], dim=1)
        return self.generator(condition)

    def discriminate(self, vector: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat([vector, condition], dim=1)).squeeze(1)


class CFGAN(TorchModel):
    """A conditional GAN whose generator learns to produce each user's real purchase vector
    (a score for every item) and whose discriminator learns to tell generated vectors from
    real ones. Generating whole vectors, rather than sampling discrete item ids as earlier
    recommender GANs did, keeps the generator's output continuous so adversarial training
    actually improves it; the paper reports clear gains over item-id GANs and strong
    top-N accuracy.

    Scheme and settings (those that make training stable):

    * **Partial masking (PM)** — before D sees a generated vector it is multiplied by the
      user's real vector plus a random ``pm_ratio`` fraction of the user's unseen items, so
      D can catch the generator scoring items the user did not take, and the generator
      learns to push those towards 0 instead of scoring everything 1.
    * **Zero reconstruction (ZR)** — a separate random ``zr_ratio`` fraction of unseen items
      is pulled to 0 by a squared penalty weighted ``zr_weight``; ``loss`` (the figure the
      loop reports) is ``g_loss + zr_weight · zr_loss``. The penalty is a sum over the
      sampled items, so its pull grows with the catalogue: tiny catalogues (tens of items)
      need a larger ``zr_weight`` (≈ 1) than real ones.
    * **Sigmoid outputs** — G's output goes through a sigmoid, so generated and real vectors
      share the range [0, 1]; D returns a logit, and both losses use
      ``binary_cross_entropy_with_logits`` in float32 (never ``log(0)``, also under bf16
      autocast). G uses the non-saturating loss ``-log D(G(c))``.
    * **Steps and learning rates** — each batch makes ``d_steps`` discriminator updates then
      ``g_steps`` generator updates (1 and 1 by default, each with fresh masks); G learns at
      ``lr`` with ``weight_decay`` (the paper's reg_G), D at ``d_lr`` (0, the default: ``lr``)
      without decay, both with Adam betas (0.5, 0.999) as is usual for GANs. Gradient
      norms of both nets are clipped at ``clip_norm``.
    * **Noise** — off by default (``noise = 0``): each user's condition has one right
      answer, so noise mostly adds variance. With noise, scoring uses zero noise.

    Scores are G's logits (the sigmoid's input): the same ranking as its outputs, without
    ties where the sigmoid saturates.
    """

    name = "cfgan"
    description = ("CFGAN: conditional GAN generating each user's purchase vector, with "
                   "partial masking and zero reconstruction (Chae et al. 2018).")
    params = (
        Param("g_hidden", "int", 400, min=1, help="width of the generator's hidden layers"),
        Param("g_layers", "int", 1, min=1, help="hidden layers in the generator"),
        Param("d_hidden", "int", 125, min=1,
              help="width of the discriminator's hidden layers"),
        Param("d_layers", "int", 2, min=1, help="hidden layers in the discriminator"),
        Param("noise", "int", 0, min=0, help="size of the noise appended to the condition"),
        Param("pm_ratio", "float", 0.5, min=0, max=1,
              help="fraction of each user's unseen items D also sees (partial masking)"),
        Param("zr_ratio", "float", 0.5, min=0, max=1,
              help="fraction of each user's unseen items pulled to 0 (zero reconstruction)"),
        Param("zr_weight", "float", 0.1, min=0, help="weight of the zero-reconstruction term"),
        Param("d_steps", "int", 1, min=1, help="discriminator updates per batch"),
        Param("g_steps", "int", 1, min=1, help="generator updates per batch"),
        # 0 rather than unset: save_model stores every value and load_model validates
        # them again, and None is not a float.
        Param("d_lr", "float", 0.0, min=0,
              help="discriminator learning rate (0: the same as lr)"),
        Param("clip_norm", "float", 10.0, min=0,
              help="largest gradient norm of either net per update (0: no clipping)"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.params.target != "reconstruct":
            raise PipelineError(
                f"[model] cfgan: target = {self.params.target!r} is not supported: its "
                "discriminator judges a user's own purchase vector against the one generated "
                "from it; use target = \"reconstruct\", or vae, dae or cdae to train on "
                "what comes next")

    def build(self, dims: Dimensions) -> nn.Module:
        p = self.params
        return CFGANNet(dims.n_items, p.g_hidden, p.g_layers, p.d_hidden, p.d_layers, p.noise)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        assert self.module is not None
        p = self.params
        d_lr = p.d_lr or p.lr
        return {
            "generator": torch.optim.Adam(self.module.generator.parameters(), lr=p.lr,
                                          betas=GAN_BETAS, weight_decay=p.weight_decay),
            "discriminator": torch.optim.Adam(self.module.discriminator.parameters(),
                                              lr=d_lr, betas=GAN_BETAS),
        }

    def _update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                net: nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.params.clip_norm > 0:
            nn.utils.clip_grad_norm_(net.parameters(), self.params.clip_norm)
        optimizer.step()

    def d_loss(self, real: torch.Tensor) -> torch.Tensor:
        net, seen = self.module, real > 0
        with torch.no_grad():
            generated = torch.sigmoid(net.generate(real).float())
        fake = generated * (seen | sample_unseen(seen, self.params.pm_ratio))
        real_logit = net.discriminate(real, real).float()
        fake_logit = net.discriminate(fake, real).float()
        return (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))

    def g_losses(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net, seen, p = self.module, real > 0, self.params
        generated = torch.sigmoid(net.generate(real).float())
        fake = generated * (seen | sample_unseen(seen, p.pm_ratio))
        fake_logit = net.discriminate(fake, real).float()
        g_loss = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        zr = sample_unseen(seen, p.zr_ratio)
        zr_loss = (generated.pow(2) * zr).sum(dim=1).mean()
        return g_loss, zr_loss

    def train_step(self, batch: Batch, step: int,
                   optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        p, net = self.params, self.module
        real = (batch.x > 0).float()
        d_total = 0.0
        for _ in range(p.d_steps):
            with autocast(self.device):
                d_loss = self.d_loss(real)
            self._update(d_loss, optimizers["discriminator"], net.discriminator)
            d_total += float(d_loss.detach())
        g_total = zr_total = 0.0
        net.discriminator.requires_grad_(False)  # G's loss flows through D, D stays put
        try:
            for _ in range(p.g_steps):
                with autocast(self.device):
                    g_loss, zr_loss = self.g_losses(real)
                    loss = g_loss + p.zr_weight * zr_loss
                self._update(loss, optimizers["generator"], net.generator)
                g_total += float(g_loss.detach())
                zr_total += float(zr_loss.detach())
        finally:
            net.discriminator.requires_grad_(True)
        g_loss, zr_loss = g_total / p.g_steps, zr_total / p.g_steps
        return {"loss": g_loss + p.zr_weight * zr_loss, "d_loss": d_total / p.d_steps,
                "g_loss": g_loss, "zr_loss": zr_loss}

    def losses(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        """The generator's terms for a batch (``train_step`` does the real training)."""
        real = (batch.x > 0).float()
        g_loss, zr_loss = self.g_losses(real)
        return {"loss": g_loss + self.params.zr_weight * zr_loss,
                "d_loss": self.d_loss(real), "g_loss": g_loss, "zr_loss": zr_loss}

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.module.generate((batch.x > 0).float())
