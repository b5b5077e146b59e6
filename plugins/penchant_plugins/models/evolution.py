"""The evolution model: a user's interests as a latent state that moves from window to window.

Each user's history before ``features.now`` is cut into the last ``n_windows`` windows of
length ``window`` (e.g. 15 × 30 days). A Mult-VAE encoder turns each window's item vector into
a latent interest state; a GRU carries the states forward and, from what it has seen up to a
window, predicts the state of the next one (a learned Gaussian prior); the VAE decoder turns
a (predicted) state into a distribution over items, and a category head turns it into a
distribution over categories.

Why a GRU over a linear-Gaussian transition: interest moves are not linear in the latent
space (a life stage switches baby care for toddler toys; a season comes and goes; windows
are often empty), and the prior must depend on the calendar. The GRU reads the state, an
"observed" flag, the window's activity (log of its event weight) and the time of year, and a
small network maps its hidden state to the next window's prior. It is still a state-space
model: the ELBO of each observed window uses that learned prior in its KL term (a deep
Kalman filter / VRNN), so encoded states and predicted states live in one space.

Shoppers mostly come back to what they did, so both forecasts also read the user's own
history through two memories decayed at learned rates (fast and slow): item forecasts mix
the decoded distribution with the memories' item shares through a gate the state drives (a
copy mechanism, as in RepeatNet); category forecasts add the memories' log-shares, raised to
state-driven powers, to the head's logits (a power 1 with a silent head would be
persistence; the head moves it with seasons, life stages and what similar users did).

Windows without events are *unobserved*: their state is the prior mean, so rolling forward
past ``now`` is the same operation as crossing an empty window in training. A horizon that
spans several windows averages the rolled-forward windows it covers, weighted by overlap.

Training objective, summed over users' windows (β annealed to ``beta_cap`` as in ``vae``):
reconstruction of each observed window (multinomial NLL) + β·KL(posterior ‖ learned prior) +
``predict_weight`` × multinomial NLL of each window's items under the forecast from the
windows before it (teacher forcing) + ``category_weight`` × the Jensen-Shannon divergence
(the evaluation's metric) between the category forecast made before each window and what
the user did over the next 1..``spans`` windows. Multinomial targets are shares of the
window (``normalize``), so busy users do not drown quiet ones.

Ranking (``score``) is the next window's item distribution. Per-window matrices come from
``features.dataset.events`` relative to ``features.now`` and item categories from
``features.dataset.items``, so a folded-in user goes through exactly the same code. The
model has no per-user parameters: a user's forecast depends only on their events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from penchant import DataError, Features, Param, PipelineError, parse_duration
from penchant.interests import (
    TRAJECTORY_COLUMNS,
    Categories,
    event_weights,
    horizon_weights,
    long_rows,
    trajectory_frame,
    window_edges,
    window_index,
)
from penchant.training import (
    Batch,
    Dimensions,
    TorchModel,
    TrainingSet,
    autocast,
    densify,
)
from penchant_plugins.models.vae import MultVAENet

YEAR_SECONDS = 365.2425 * 86400
N_CALENDAR = 4


#: Starting decay per window of the fast and slow memories of a user's own history.
MEMORY_DECAYS = (0.5, 0.9)
#: Floor under a memory's category shares before their logarithm is taken.
SHARE_FLOOR = 1e-3
#: Latent states in trajectories are given on this many principal axes of the training
#: states: what an app draws, and a table small enough to write for every user.
TRAJECTORY_AXES = 2
#: Forecast shares below this are left out of trajectories.
TRAJECTORY_FLOOR = 1e-3


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Row-wise Jensen-Shannon divergence in bits (the evaluation's metric)."""
    m = 0.5 * (p + q)

    def kl(a: torch.Tensor) -> torch.Tensor:
        return (a * (torch.log(a.clamp_min(1e-12)) - torch.log(m.clamp_min(1e-12)))).sum(-1)

    return 0.5 * (kl(p) + kl(q)) / math.log(2)


class EvolutionNet(nn.Module):
    """Per-window VAE (encoder → latent state → decoder over items), a GRU filter whose
    learned prior predicts the next state, and two forecasts built on the prediction: items
    (decoded, mixed with the user's decayed item history) and categories (a head on the
    state, log-linearly combined with the user's decayed category shares)."""

    def __init__(self, n_items: int, n_categories: int, hidden: int, latent: int,
                 state: int, dropout: float, window_seconds: float, copy: bool) -> None:
        super().__init__()
        self.window_seconds = window_seconds
        self.n_categories = n_categories
        #: The per-window VAE: Mult-VAE's own encoder and decoder.
        self.window_vae = MultVAENet(n_items, hidden, latent, dropout)
        self.cell = nn.GRUCell(latent + 2 + N_CALENDAR, state)
        self.h0 = nn.Parameter(torch.zeros(state))
        self.prior = nn.Sequential(nn.Linear(state + N_CALENDAR, hidden), nn.Tanh(),
                                   nn.Linear(hidden, 2 * latent))
        m = len(MEMORY_DECAYS) if copy else 0
        self.n_memories = m
        self.decay_logit = nn.Parameter(torch.logit(torch.tensor(MEMORY_DECAYS[:m])))
        self.gate = nn.Linear(state + N_CALENDAR + m, m + 1)
        self.category_head = nn.Sequential(
            nn.Linear(latent + state + N_CALENDAR, hidden), nn.Tanh(),
            nn.Linear(hidden, max(1, n_categories)))
        self.category_power = nn.Linear(state + N_CALENDAR + m, m)
        #: Category code of each item (-1: none); travels with the weights.
        self.register_buffer("item_category", torch.full((n_items,), -1, dtype=torch.long))
        #: Centre and principal axes of the training states (set after fitting).
        axes = min(TRAJECTORY_AXES, latent)
        self.register_buffer("latent_mean", torch.zeros(latent))
        self.register_buffer("latent_axes", torch.eye(latent)[:, :axes].contiguous())

    # -- pieces ---------------------------------------------------------------------

    def calendar(self, now: torch.Tensor, n_windows: int, n_total: int) -> torch.Tensor:
        """Time-of-year features of the midpoints of windows 0..n_total-1 (window
        n_windows is the first after ``now``)."""
        j = torch.arange(n_total, device=now.device, dtype=torch.float64)
        mid = now.double() - (n_windows - j - 0.5) * self.window_seconds
        phase = 2 * math.pi * mid / YEAR_SECONDS
        return torch.stack([phase.sin(), phase.cos(), (2 * phase).sin(), (2 * phase).cos()],
                           dim=-1).float()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.window_vae.encode(x)

    def prior_of(self, h: torch.Tensor, cal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.prior(torch.cat([h, cal.expand(len(h), -1)], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8, 8)

    def step(self, h: torch.Tensor, z: torch.Tensor, observed: torch.Tensor,
             activity: torch.Tensor, cal: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([z, observed[:, None], activity[:, None],
                            cal.expand(len(h), -1)], dim=1)
        return self.cell(inputs.to(h.dtype), h)

    def categories_of(self, x: torch.Tensor) -> torch.Tensor:
        """Item weights summed per category (items without one left out)."""
        known = self.item_category >= 0
        out = x.new_zeros(*x.shape[:-1], self.n_categories)
        return out.index_add_(out.dim() - 1, self.item_category[known], x[..., known])

    def remember(self, memory: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        """Decay the (batch × memories × columns) memories one window; add ``x``."""
        decay = torch.sigmoid(self.decay_logit)[None, :, None].to(memory.dtype)
        return memory * decay if x is None else memory * decay + x[:, None, :]

    def item_forecast(self, pm: torch.Tensor, h: torch.Tensor, cal: torch.Tensor,
                      memory: torch.Tensor) -> torch.Tensor:
        """Item probabilities of a window: the decoded predicted state, mixed (with
        ``copy``) with the user's decayed item histories by a gate the state drives."""
        decoded = torch.softmax(self.window_vae.decoder(pm).float(), dim=-1)
        if not self.n_memories:
            return decoded
        mass = memory.sum(dim=-1)
        gate = self.gate(torch.cat([h, cal.expand(len(h), -1), torch.log1p(mass)], dim=1))
        available = torch.cat([torch.ones_like(mass[:, :1], dtype=torch.bool), mass > 0], 1)
        gate = torch.softmax(gate.float().masked_fill(~available, -torch.inf), dim=-1)
        shares = memory / mass.clamp_min(1e-12)[..., None]
        return gate[:, :1] * decoded + (gate[:, 1:, None] * shares).sum(dim=1)

    def category_forecast(self, pm: torch.Tensor, h: torch.Tensor, cal: torch.Tensor,
                          memory: torch.Tensor) -> torch.Tensor:
        """Category probabilities of a window: the head's logits on the predicted state plus
        each decayed category history's log-shares raised to a learned, state-driven power
        (1 and no head would be persistence; seasons and life stages move it)."""
        c = cal.expand(len(h), -1)
        logits = self.category_head(torch.cat([pm, h, c], dim=1)).float()
        if self.n_memories:
            mass = memory.sum(dim=-1)
            power = F.softplus(self.category_power(
                torch.cat([h, c, torch.log1p(mass)], dim=1)).float()) * (mass > 0)
            shares = memory / mass.clamp_min(1e-12)[..., None]
            logits = logits + (power[..., None] * torch.log(shares + SHARE_FLOOR)).sum(dim=1)
        return torch.softmax(logits, dim=-1)

    # -- through time ---------------------------------------------------------------

    def sequence(self, x: torch.Tensor, now: torch.Tensor, sample: bool,
                 spans: int = 1) -> dict[str, Any]:
        """Filter through the windows ``x`` (batch × windows × items): posterior and prior
        states, and what each window's forecast starts from (the state and memories
        before it), so forecasts are made for all windows at once afterwards; ``cal``
        covers ``spans`` windows past the last."""
        b, t, n = x.shape
        total = x.sum(dim=2)
        observed = total > 0
        xc = self.categories_of(x) if self.n_categories else None
        cal = self.calendar(now, t, t + max(spans, 1))
        mu_q = x.new_zeros(b, t, self.window_vae.to_mu.out_features)
        logvar_q = torch.zeros_like(mu_q)
        if observed.any():
            m, lv = self.encode(x[observed])
            mu_q[observed], logvar_q[observed] = m.to(mu_q.dtype), lv.to(mu_q.dtype)
        h = self.h0.expand(b, -1)
        memory = x.new_zeros(b, self.n_memories, n)
        cmemory = x.new_zeros(b, self.n_memories, self.n_categories)
        mu_p, logvar_p, states, hs, memories, cmemories = [], [], [], [], [], []
        for w in range(t):
            hs.append(h)
            memories.append(memory)
            cmemories.append(cmemory)
            pm, plv = self.prior_of(h, cal[w])
            mu_p.append(pm)
            logvar_p.append(plv)
            zq = mu_q[:, w]
            if sample:
                zq = zq + torch.randn_like(zq) * torch.exp(0.5 * logvar_q[:, w])
            z = torch.where(observed[:, w, None], zq.to(pm.dtype), pm)
            states.append(z)
            h = self.step(h, z, observed[:, w].to(z.dtype), torch.log1p(total[:, w]), cal[w])
            memory = self.remember(memory, x[:, w])
            if xc is not None:
                cmemory = self.remember(cmemory, xc[:, w])
        return {"observed": observed, "mu_q": mu_q, "logvar_q": logvar_q,
                "mu_p": torch.stack(mu_p, 1), "logvar_p": torch.stack(logvar_p, 1),
                "z": torch.stack(states, 1), "categories": xc, "cal": cal,
                "h_before": torch.stack(hs, 1), "memory_before": torch.stack(memories, 1),
                "cmemory_before": torch.stack(cmemories, 1),
                "h": h, "memory": memory, "cmemory": cmemory}

    def category_rollout(self, h: torch.Tensor, cmemory: torch.Tensor,
                         cal: torch.Tensor) -> torch.Tensor:
        """Category forecasts (rows × steps × categories) of the unobserved windows whose
        calendars are ``cal`` (rows × steps × features), from states ``h``."""
        zeros = h.new_zeros(len(h))
        out = []
        for k in range(cal.shape[1]):
            pm, _ = self.prior_of(h, cal[:, k])
            out.append(self.category_forecast(pm, h, cal[:, k], cmemory))
            h = self.step(h, pm, zeros, zeros, cal[:, k])
            cmemory = self.remember(cmemory, None)
        return torch.stack(out, 1)

    def rollout(self, out: dict[str, Any], now: torch.Tensor, n_windows: int,
                ahead: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Item and category probabilities of the next ``ahead`` windows."""
        cal = self.calendar(now, n_windows, n_windows + ahead)[n_windows:]
        h, memory, cmemory = out["h"], out["memory"], out["cmemory"]
        items, categories = [], []
        zeros = h.new_zeros(len(h))
        for k in range(ahead):
            pm, _ = self.prior_of(h, cal[k])
            items.append(self.item_forecast(pm, h, cal[k], memory))
            if self.n_categories:
                categories.append(self.category_forecast(pm, h, cal[k], cmemory))
            h = self.step(h, pm, zeros, zeros, cal[k])
            memory, cmemory = self.remember(memory, None), self.remember(cmemory, None)
        return items, categories


class Evolution(TorchModel):
    """Forecasts each user's interests (items and categories) months ahead from the path
    their latent interest state took over past windows."""

    name = "evolution"
    description = ("Interest evolution: per-window VAE states, GRU dynamics with a learned "
                   "prior, forecasts of item and category distributions per horizon.")
    params = (
        Param("window", "duration", "30d", help="length of one window of history"),
        Param("n_windows", "int", 15, min=2, max=520,
              help="how many windows before now the model reads"),
        Param("hidden", "int", 256, min=1, help="width of the encoder/decoder layers"),
        Param("latent", "int", 32, min=1, help="size of a window's latent interest state"),
        Param("state", "int", 64, min=1, help="size of the GRU state carrying the dynamics"),
        Param("dropout", "float", 0.5, min=0, max=0.99, help="input dropout while training"),
        Param("beta_cap", "float", 0.2, min=0, help="largest weight of the KL term"),
        Param("anneal_steps", "int", 2000, min=1,
              help="batches over which β rises linearly from 0 to beta_cap"),
        Param("predict_weight", "float", 1.0, min=0,
              help="weight of predicting each window's items from the windows before it"),
        Param("category_weight", "float", 5.0, min=0,
              help="weight of the category forecasts' Jensen-Shannon divergence from what "
                   "each user did over the next 1..spans windows (needs `category`)"),
        Param("spans", "int", 3, min=1, max=24,
              help="category forecasts are trained for spans of 1 to this many windows "
                   "(a 90-day horizon over 30-day windows spans 3)"),
        Param("copy", "bool", True,
              help="mix the decoded forecast with the user's own history, decayed at two "
                   "learned rates, through a gate the state drives: shoppers come back"),
        Param("normalize", "bool", True,
              help="each window's targets sum to 1, so busy users do not drown quiet ones"),
        Param("weights", "table", {}, items="float",
              help="weight per event type inside a window, e.g. { view = 1, purchase = 4 }; "
                   "empty: every event counts 1"),
        Param("default_weight", "float", 1.0, min=0, help="weight of unlisted event types"),
        Param("category", "str", "category",
              help="column of the items side table holding each item's category"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.categories: list[str] = []
        self.window_length = parse_duration(self.params.window)
        #: The features being fitted: training batches take their windows from them.
        self._fitting: Features | None = None
        if self.params.target != "reconstruct":
            raise PipelineError(f"{kwargs.get('where') or f'[{self.name}]'}: key 'target': "
                                f"{self.name} learns each next window from its own windows; "
                                "leave target = \"reconstruct\"")

    # -- windows ----------------------------------------------------------------------

    def windows(self, features: Features) -> sp.csr_matrix:
        """users × (n_windows · n_items) weights of each user's events per window (oldest
        window first), cached on the features."""
        p = self.params
        key = f"evolution.windows:{p.window}:{p.n_windows}:{sorted(p.weights.items())}:" \
              f"{p.default_weight}"
        if key in features.extra:
            return features.extra[key]
        t, n = int(p.n_windows), features.shape[1]
        frame = features.dataset.events.frame
        if len(frame) == 0 and features.matrix is not None:
            # A reopened run keeps the matrix, not the events: it stands in for the last
            # window, so known users are still scored from their history.
            m = features.matrix.tocoo()
            rows, cols, w = m.row, m.col + (t - 1) * n, m.data
        else:
            idx = window_index(frame["time"], features.now, self.window_length, t)
            at = (features.now - frame["time"]).dt.total_seconds().to_numpy() == 0
            idx = np.where(at, t - 1, idx)  # an event at exactly `now` is the latest one
            r, c = features.coordinates()
            weights = event_weights(frame, p.weights or None, p.default_weight)
            keep = (idx >= 0) & (r >= 0) & (c >= 0) & (weights > 0)
            rows, cols, w = r[keep], idx[keep] * n + c[keep], weights[keep]
        out = sp.csr_matrix((w.astype(np.float32), (rows, cols)),
                            shape=(features.shape[0], t * n), dtype=np.float32)
        out.sum_duplicates()
        features.extra[key] = out
        return out

    def _with_windows(self, b: Batch, features: Features, rows: np.ndarray) -> Batch:
        x = densify(self.windows(features), rows, self.device)
        b.extra["windows"] = x.view(len(rows), int(self.params.n_windows), -1)
        b.extra["now"] = torch.tensor(features.now.timestamp(), dtype=torch.float64,
                                      device=self.device)
        return b

    def batch(self, features: Features, rows: np.ndarray) -> Batch:
        return self._with_windows(super().batch(features, rows), features, rows)

    def training_batch(self, data: TrainingSet, idx: np.ndarray) -> Batch:
        assert self._fitting is not None, "training_batch() outside fit()"
        return self._with_windows(super().training_batch(data, idx), self._fitting,
                                  data.users[idx])

    # -- the model ------------------------------------------------------------------

    def build(self, dims: Dimensions) -> nn.Module:
        p = self.params
        return EvolutionNet(dims.n_items, len(self.categories), p.hidden, p.latent, p.state,
                            p.dropout, self.window_length.total_seconds(), p.copy)

    def _item_categories(self, features: Features) -> Categories | None:
        try:
            return Categories.from_dataset(features.dataset, self.params.category,
                                           f"[model] key 'category' ({self.name})")
        except DataError:
            return None  # ranking still works; forecasting interests will say why

    def prepare(self, features: Features) -> None:
        self._fitting = features
        cats = self._item_categories(features)
        if cats is not None:
            codes = np.array(cats.codes(features.items), dtype=np.int64)
            self.module.item_category.copy_(torch.from_numpy(codes))

    def fit(self, features: Features, validation: Any, ctx: Any) -> None:
        cats = self._item_categories(features)
        self.categories = [] if cats is None else [str(c) for c in cats.names]
        if cats is None:
            ctx.log(f"{self.name}: no {self.params.category!r} column in an items side "
                    "table; training without category forecasts")
        try:
            super().fit(features, validation, ctx)
        finally:
            self._fitting = None
        self._fit_axes(features)

    def _fit_axes(self, features: Features) -> None:
        """Principal axes of the states of the training users' observed windows, with a
        fixed sign, so trajectories of any user (folded in too) share one picture."""
        assert self.module is not None
        active = np.flatnonzero(np.diff(self.windows(features).indptr) > 0)
        states = [c["z"][c["observed"]] for c in self._forward(features, active, 0)]
        z = torch.from_numpy(np.concatenate(states)) if states else torch.zeros(0)
        if len(z) < 2:
            return
        mean = z.mean(dim=0)
        _, _, v = torch.linalg.svd(z - mean, full_matrices=False)
        axes = v[: self.module.latent_axes.shape[1]].T
        sign = torch.sign(axes.gather(0, axes.abs().argmax(dim=0, keepdim=True)))
        self.module.latent_mean.copy_(mean.to(self.device))
        self.module.latent_axes.copy_((axes * sign).to(self.device))

    def beta(self, step: int) -> float:
        return min(self.params.beta_cap, self.params.beta_cap * step / self.params.anneal_steps)

    def losses(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        p = self.params
        x = batch.extra["windows"]
        out = self.module.sequence(x, batch.extra["now"], sample=True, spans=int(p.spans))
        observed = out["observed"]
        target = x[observed]
        if p.normalize:
            target = target / target.sum(dim=1, keepdim=True)
        users = max(1, len(x))
        z = out["z"][observed]
        logits = self.module.window_vae.decoder(z).float()
        recon = -(F.log_softmax(logits, dim=1) * target).sum() / users
        mq, lq = out["mu_q"][observed].float(), out["logvar_q"][observed].float()
        mp, lp = out["mu_p"][observed].float(), out["logvar_p"][observed].float()
        kl = 0.5 * (lp - lq + (lq.exp() + (mq - mp).pow(2)) / lp.exp() - 1).sum() / users
        cal = out["cal"][: x.shape[1]].expand(len(x), -1, -1)
        predicted = self.module.item_forecast(out["mu_p"][observed], out["h_before"][observed],
                                              cal[observed], out["memory_before"][observed])
        predict = -(torch.log(predicted.clamp_min(1e-12)) * target).sum() / users
        beta = self.beta(step)
        loss = recon + beta * kl + p.predict_weight * predict
        terms = {"recon": recon.detach(), "kl": kl.detach(), "predict": predict.detach()}
        if out["categories"] is not None and p.category_weight > 0:
            category = self._span_divergence(out, int(p.spans)) / users
            loss = loss + p.category_weight * category
            terms["category_js"] = category.detach()
        return {"loss": loss, **terms, "beta": torch.tensor(beta)}

    def _span_divergence(self, out: dict[str, Any], spans: int) -> torch.Tensor:
        """Summed JS divergence between the category forecasts made before each window and
        what the user did over that window and the next ones (1..spans windows), where they
        did something and had history before: the users interest evaluation scores."""
        xc = out["categories"].float()
        b, t, c = xc.shape
        cum = torch.cat([xc.new_zeros(b, 1, c), xc.cumsum(dim=1)], dim=1)
        starts = torch.arange(t, device=xc.device)
        ends = (starts + spans).clamp(max=t)
        busy = (cum[:, ends] - cum[:, starts]).sum(dim=2) > 0
        had_history = cum[:, :t].sum(dim=2) > 0
        bi, wi = torch.nonzero(busy & had_history, as_tuple=True)
        total = xc.new_zeros(())
        if len(bi) == 0:
            return total
        steps = torch.arange(spans, device=xc.device)
        forecast = self.module.category_rollout(out["h_before"][bi, wi],
                                                out["cmemory_before"][bi, wi],
                                                out["cal"][wi[:, None] + steps]).float()
        for k in range(1, spans + 1):
            actual = cum[bi, (wi + k).clamp(max=t)] - cum[bi, wi]
            valid = (wi + k <= t) & (actual.sum(dim=1) > 0)
            if valid.any():
                shares = actual[valid] / actual[valid].sum(dim=1, keepdim=True)
                total = total + js_divergence(forecast[valid, :k].mean(dim=1), shares).sum()
        return total

    def predict(self, batch: Batch) -> torch.Tensor:
        out = self.module.sequence(batch.extra["windows"], batch.extra["now"], sample=False)
        items, _ = self.module.rollout(out, batch.extra["now"], int(self.params.n_windows), 1)
        return torch.log(items[0].clamp_min(1e-12))

    # -- interests ------------------------------------------------------------------

    def interest_categories(self) -> list[str]:
        return list(self.categories)

    def _require_categories(self) -> None:
        if self.module is None:
            raise DataError(f"{self.name}: forecast_interests() before fit()")
        if not self.categories:
            raise DataError(f"[model] key 'category' ({self.name}): the model was trained "
                            f"without item categories; its training data needs an items "
                            f"side table with a {self.params.category!r} column")

    @torch.no_grad()
    def _forward(self, features: Features, rows: np.ndarray, ahead: int
                 ) -> list[dict[str, np.ndarray]]:
        """Per chunk: category shares per past window, latent states, and category
        forecasts for the next ``ahead`` windows (none for 0)."""
        assert self.module is not None
        self.module.eval()
        t = int(self.params.n_windows)
        step = int(self.params.batch_size) * 4
        chunks = []
        for start in range(0, len(rows), step):
            batch = self.batch(features, rows[start:start + step])
            x = batch.extra["windows"]
            with autocast(self.device):
                out = self.module.sequence(x, batch.extra["now"], sample=False)
                _, categories = self.module.rollout(out, batch.extra["now"], t, ahead)
            chunk = {"z": out["z"].float().cpu().numpy(),
                     "observed": out["observed"].cpu().numpy()}
            if self.categories:
                chunk["past"] = self.module.categories_of(x).float().cpu().numpy()
            if categories:
                chunk["future"] = torch.stack(categories, 1).float().cpu().numpy()
            chunks.append(chunk)
        return chunks

    def forecast_interests(self, features: Features, rows: np.ndarray,
                           horizons: Sequence[str]) -> dict[str, np.ndarray]:
        self._require_categories()
        rows = np.asarray(rows, dtype=np.int64)
        weights = {h: horizon_weights(h, self.window_length) for h in horizons}
        ahead = max((len(w) for w in weights.values()), default=1)
        chunks = self._forward(features, rows, ahead)
        future = (np.concatenate([c["future"] for c in chunks]) if chunks
                  else np.zeros((0, ahead, len(self.categories))))
        out = {}
        for h, w in weights.items():
            mixed = np.einsum("k,bkc->bc", w, future[:, :len(w)].astype(np.float64))
            out[h] = mixed / np.clip(mixed.sum(axis=1, keepdims=True), 1e-12, None)
        return out

    def interest_trajectory(self, features: Features, rows: np.ndarray,
                            horizons: Sequence[str] = ("7d", "30d", "90d")) -> pd.DataFrame:
        """Observed category shares (non-zero) per past window, the latent state on the
        principal axes of the training states (``pc1``, ``pc2``; from the user's first
        active window on) and category forecasts per horizon (shares below 0.001 left
        out)."""
        self._require_categories()
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return pd.DataFrame({c: [] for c in TRAJECTORY_COLUMNS})
        t = int(self.params.n_windows)
        forecasts = self.forecast_interests(features, rows, horizons)
        chunks = self._forward(features, rows, 0)
        past = np.concatenate([c["past"] for c in chunks])
        mean, axes = (b.cpu().numpy() for b in (self.module.latent_mean,
                                                 self.module.latent_axes))
        z = (np.concatenate([c["z"] for c in chunks]) - mean) @ axes
        observed = np.concatenate([c["observed"] for c in chunks])
        users = np.asarray(features.users[rows], dtype=object)
        edges = window_edges(features.now, self.window_length, t)
        first = np.where(observed.any(axis=1), observed.argmax(axis=1), t)
        latent_names = [f"pc{j + 1}" for j in range(z.shape[2])]
        parts = []
        for w in range(t):
            total = past[:, w].sum(axis=1, keepdims=True)
            shares = np.divide(past[:, w], total, out=np.zeros_like(past[:, w]),
                               where=total > 0)
            common = {"model": self.name, "window": w - t, "start": edges[w],
                      "end": edges[w + 1]}
            parts.append(long_rows(users, shares, self.categories, kind="observed",
                                   keep=shares > 0, **{**common, "model": ""}))
            parts.append(long_rows(users, z[:, w], latent_names, kind="latent",
                                   keep=np.repeat((first <= w)[:, None], z.shape[2], 1),
                                   **common))
        for h, f in forecasts.items():
            parts.append(long_rows(users, f, self.categories, model=self.name,
                                   kind="forecast", start=features.now,
                                   end=features.now + parse_duration(h), horizon=h,
                                   keep=f >= TRAJECTORY_FLOOR))
        return trajectory_frame(parts)

    # -- checkpoints ----------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {**super().state(), "categories": list(self.categories)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.categories = [str(c) for c in state.get("categories", [])]
        super().load_state(state)
