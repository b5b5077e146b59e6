"""The one torch training loop every torch model shares.

Models describe *what* to compute (a module, its loss terms, its scores) by subclassing
:class:`TorchModel`; this module owns *how*: device choice, seeding, per-batch
densification of sparse rows (never a dense matrix of the whole data), mixed precision on
GPU, early stopping on a temporal validation cut, per-epoch checkpoints, resuming from the
last one, and the observer calls that feed live loss plots.
"""

from __future__ import annotations

import copy
import io
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from penchant import atomic, distributed
from penchant.artifacts import load_weights
from penchant.components import Context, Model, Validation
from penchant.data import Features
from penchant.errors import PipelineError
from penchant.params import Param, parse_duration


def resolve_device(spec: str) -> torch.device:
    """``auto`` → the first CUDA device if there is one, else CPU; ``cuda:1`` as given."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise PipelineError(f"device {spec!r} is not valid; use auto, cpu, cuda or cuda:N") \
            from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"device {spec!r} was asked for but torch sees no CUDA device; "
                            "use device = \"auto\" or install a CUDA build of torch")
    return device


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def densify(matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows of a sparse matrix as a dense float tensor on ``device``: the only place
    user×item data becomes dense, one batch at a time."""
    block = torch.from_numpy(np.asarray(matrix[rows].toarray(), dtype=np.float32))
    if device.type == "cuda":
        return block.pin_memory().to(device, non_blocking=True)
    return block


def atomic_torch_save(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic.write_bytes(path, buffer.getvalue())


TRAINING_PARAMS: tuple[Param, ...] = (
    Param("epochs", "int", 100, min=1, max=100000, help="most passes over the users"),
    Param("batch_size", "int", 500, min=1, help="users per batch"),
    Param("lr", "float", 1e-3, min=0, help="Adam learning rate"),
    Param("weight_decay", "float", 0.0, min=0, help="L2 penalty on the weights"),
    Param("patience", "int", 10, min=0,
          help="epochs without a better validation NDCG before stopping (0: never stop early)"),
    Param("device", "str", "auto", help="auto, cpu, cuda or cuda:N"),
    Param("resume", "bool", False,
          help="continue from the last checkpoint in the run's work folder, if there is one"),
    Param("target", "str", "reconstruct", choices=("reconstruct", "next-window"),
          help="reconstruct each user's history, or learn from the history up to a cut "
               "what the user does in the window after it, over many cuts"),
    Param("target_window", "duration", "30d",
          help="next-window mode: the length of the window after each cut"),
    Param("cuts", "int", 6, min=1,
          help="next-window mode: how many cuts, one window apart, back from the cutoff"),
)


@dataclass(frozen=True)
class Dimensions:
    """Sizes a module is built with; stored in checkpoints so it can be rebuilt to load."""

    n_users: int
    n_items: int
    user_side: int = 0
    item_side: int = 0

    @classmethod
    def of(cls, features: Features) -> Dimensions:
        return cls(features.shape[0], features.shape[1],
                   sum(b.shape[1] for b in features.user_side.values()),
                   sum(b.shape[1] for b in features.item_side.values()))


@dataclass
class SparseRows:
    """Rows of a sparse user×item matrix as CSR parts on the device. A history row is
    mostly zeros, so a model that reads only the non-zeros (``vae``'s first layer and
    loss) never needs the dense rows at all."""

    starts: torch.Tensor
    columns: torch.Tensor
    values: torch.Tensor
    n_columns: int

    @classmethod
    def of(cls, matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> SparseRows:
        block = sp.csr_matrix(matrix[rows], dtype=np.float32)
        block.sort_indices()
        parts = [torch.from_numpy(np.asarray(a)) for a in
                 (block.indptr[:-1].astype(np.int64), block.indices.astype(np.int64),
                  block.data)]
        if device.type == "cuda":
            parts = [t.pin_memory().to(device, non_blocking=True) for t in parts]
        return cls(*parts, n_columns=block.shape[1])

    @property
    def n_rows(self) -> int:
        return len(self.starts)

    def row_of_each(self) -> torch.Tensor:
        """The row of each non-zero."""
        ends = torch.cat([self.starts[1:], self.starts.new_tensor([len(self.values)])])
        return torch.repeat_interleave(torch.arange(self.n_rows, device=self.starts.device),
                                       ends - self.starts)

    def dense(self) -> torch.Tensor:
        out = torch.zeros(self.n_rows, self.n_columns, device=self.values.device)
        out[self.row_of_each(), self.columns] = self.values
        return out


@dataclass
class Batch:
    """One batch of users: their interaction rows, their row in the training index (-1
    for users folded in after training, who have no learned embedding), and their side
    features when the model reads them.

    ``x`` and ``target`` are the rows made dense on first use (and only then): a model
    that reads ``inputs`` / ``targets`` as sparse rows never pays for them."""

    inputs: SparseRows
    rows: torch.Tensor
    side: torch.Tensor | None = None
    #: What the model should predict when it is not the input itself (next-window).
    targets: SparseRows | None = None
    #: Anything else a model's own ``batch()`` adds (e.g. per-window slices).
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    #: On several processes, this process's share of the batch's users times the number
    #: of processes: the loss is scaled by it, so averaging gradients over processes
    #: gives the whole batch's gradient (1 on one process).
    share: float = 1.0

    @cached_property
    def x(self) -> torch.Tensor:
        """The input rows, dense (users × items)."""
        return self.inputs.dense()

    @cached_property
    def target(self) -> torch.Tensor | None:
        return None if self.targets is None else self.targets.dense()

    @property
    def input(self) -> torch.Tensor | SparseRows:
        """The input for a model that reads either form: the dense rows once they exist
        (an explanation sets them, to take gradients through them), else the sparse
        rows."""
        return self.__dict__.get("x", self.inputs)

    @property
    def goal(self) -> torch.Tensor:
        """The rows to predict, dense: the target when there is one, else the input."""
        return self.x if self.target is None else self.target

    @property
    def goal_rows(self) -> SparseRows:
        """The rows to predict as sparse rows."""
        return self.inputs if self.targets is None else self.targets


@dataclass
class TrainingSet:
    """Training samples: input rows, optional target rows, the user each sample belongs
    to (row in the training index) and their side features."""

    inputs: sp.csr_matrix
    targets: sp.csr_matrix | None
    users: np.ndarray
    side: np.ndarray

    def __len__(self) -> int:
        return self.inputs.shape[0]


def side_block(blocks: dict[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    """Side-feature blocks side by side, in name order, so columns never shuffle."""
    parts = [np.asarray(blocks[name] if rows is None else blocks[name][rows], dtype=np.float32)
             for name in sorted(blocks)]
    n = len(rows) if rows is not None else (parts[0].shape[0] if parts else 0)
    return np.concatenate(parts, axis=1) if parts else np.zeros((n, 0), dtype=np.float32)


class TorchModel(Model):
    """A model trained by :func:`train`. Subclasses implement ``build``, ``losses`` and
    ``predict``; the rest (fit, score, state, checkpoints) is shared. A model with more
    than one optimiser (a GAN) overrides ``optimizers`` and ``train_step``."""

    params: ClassVar[tuple[Param, ...]] = ()
    #: Set by models whose batches need the user side features (``Batch.side``).
    uses_user_side: ClassVar[bool] = False
    explanation_method = "gradient × input"

    @classmethod
    def schema(cls) -> tuple[Param, ...]:
        return TRAINING_PARAMS + cls.params

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.module: torch.nn.Module | None = None
        self.dims = Dimensions(0, 0)
        self.users: pd.Index = pd.Index([], dtype="string")
        self.device = torch.device("cpu")
        self.best_epoch = 0

    @property
    def n_items(self) -> int:
        return self.dims.n_items

    # -- what subclasses provide -----------------------------------------------------

    def build(self, dims: Dimensions) -> torch.nn.Module:
        raise NotImplementedError

    def prepare(self, features: Features) -> None:
        """Copy per-item constants (e.g. item side features) into the fresh module."""

    def losses(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        """Loss terms for one batch in training mode; ``"loss"`` is what is minimised,
        the others (floats or tensors) are only reported."""
        raise NotImplementedError

    def predict(self, batch: Batch) -> torch.Tensor:
        """Scores for a batch of users, in eval mode."""
        raise NotImplementedError

    def latent(self, batch: Batch) -> torch.Tensor | None:
        """The batch's users in the module's latent space, in eval mode (for
        :meth:`embed`): a VAE's encoder mean, an autoencoder's hidden layer. None (this
        default) when the module has none."""
        return None

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        assert self.module is not None
        # The fused kernel: on CPU the default per-tensor update took a fifth of an epoch.
        return {"main": torch.optim.Adam(self.module.parameters(), lr=self.params.lr,
                                         weight_decay=self.params.weight_decay, fused=True)}

    def train_step(self, batch: Batch, step: int,
                   optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        with autocast(self.device):
            terms = self.losses(batch, step)
        optimizer = optimizers["main"]
        optimizer.zero_grad(set_to_none=True)
        (terms["loss"] * batch.share).backward()
        optimizer.step()
        return {k: float(v.detach() if isinstance(v, torch.Tensor) else v)
                for k, v in terms.items()}

    # -- shared ----------------------------------------------------------------------

    def batch(self, features: Features, rows: np.ndarray) -> Batch:
        """Scoring batch for users at ``rows`` of ``features``."""
        if features.users is self.users:
            trained = rows
        else:
            trained = self.users.get_indexer(features.users[rows])
        side = side_block(features.user_side, rows) if self.uses_user_side else None
        return self._batch(features.matrix, None, rows, np.asarray(trained), side)

    def training_batch(self, data: TrainingSet, idx: np.ndarray) -> Batch:
        side = data.side[idx] if self.uses_user_side else None
        return self._batch(data.inputs, data.targets, idx, data.users[idx], side)

    def _batch(self, inputs: sp.csr_matrix, targets: sp.csr_matrix | None, idx: np.ndarray,
               users: np.ndarray, side: np.ndarray | None) -> Batch:
        return Batch(
            inputs=SparseRows.of(inputs, idx, self.device),
            rows=torch.as_tensor(users, dtype=torch.long, device=self.device),
            side=None if side is None else torch.from_numpy(side).to(self.device),
            targets=None if targets is None else SparseRows.of(targets, idx, self.device))

    def fit(self, features: Features, validation: Validation | None, ctx: Context) -> None:
        train(self, features, validation, ctx)

    @torch.no_grad()
    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        assert self.module is not None, "score() before fit()"
        self.module.eval()
        out = np.empty((len(rows), self.n_items), dtype=np.float32)
        step = int(self.params.batch_size) * 4
        for start in range(0, len(rows), step):
            batch = self.batch(features, rows[start:start + step])
            with autocast(self.device):
                scores = self.predict(batch)
            out[start:start + step] = scores.float().cpu().numpy()
        return out

    @torch.no_grad()
    def embed(self, features: Features, rows: np.ndarray) -> np.ndarray | None:
        """:meth:`latent` for users at ``rows`` of ``features``, batch by batch; None when
        the model has no latent space."""
        assert self.module is not None, "embed() before fit()"
        self.module.eval()
        parts = []
        step = int(self.params.batch_size) * 4
        for start in range(0, max(len(rows), 1), step):
            batch = self.batch(features, np.asarray(rows[start:start + step]))
            with autocast(self.device):
                points = self.latent(batch)
            if points is None:
                return None
            parts.append(points.float().cpu().numpy())
        return np.concatenate(parts)[:len(rows)]

    def explain(self, features: Features, row: int,
                items: np.ndarray) -> sp.csr_matrix | None:
        """Gradient × input: each history item's weight times the gradient of the item's
        score with respect to it, in eval mode and full precision (the user's row repeated
        once per item, so one backward pass gives every item's gradient). None when the
        scores do not flow from ``Batch.x`` (a model that reads ``Batch.extra`` or only
        whether items are present), so the host explains by similarity instead.

        A model that normalises the row (Mult-VAE, DAE) scores the same for any multiple
        of it, so its contributions sum to about 0: they say which items pull the score
        up and which down, not what share of it each made."""
        assert self.module is not None, "explain() before fit()"
        self.module.eval()
        items = np.asarray(items, dtype=np.int64)
        batch = self.batch(features, np.full(len(items), row))
        batch.x = batch.x.detach().requires_grad_(True)
        with torch.enable_grad():
            scores = self.predict(batch).float()
            picked = scores[torch.arange(len(items), device=scores.device),
                            torch.from_numpy(items).to(scores.device)]
            if not picked.requires_grad:
                return None
            (gradient,) = torch.autograd.grad(picked.sum(), batch.x, allow_unused=True)
        if gradient is None:
            return None
        return sp.csr_matrix((gradient * batch.x).detach().cpu().numpy())

    def state(self) -> dict[str, Any]:
        assert self.module is not None, "state() before fit()"
        return {"dims": [self.dims.n_users, self.dims.n_items, self.dims.user_side,
                         self.dims.item_side],
                "users": [str(u) for u in self.users], "best_epoch": self.best_epoch,
                "module": {k: v.detach().cpu() for k, v in self.module.state_dict().items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.dims = Dimensions(*[int(d) for d in state["dims"]])
        self.users = pd.Index(state["users"], dtype="string")
        self.best_epoch = int(state.get("best_epoch", 0))
        self.device = resolve_device(self.params.device)
        self.module = self.build(self.dims).to(self.device)
        self.module.load_state_dict(state["module"])


def autocast(device: torch.device) -> Any:
    """bfloat16 autocast on GPU (no loss scaling needed); a no-op on CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)


def _validate(model: TorchModel, validation: Validation) -> float:
    return validation.ndcg(model.score)


@dataclass
class _Progress:
    """Everything needed to continue training exactly where a checkpoint left it."""

    epoch: int = 0
    step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0
    since_best: int = 0
    best_state: dict[str, torch.Tensor] | None = None


def _save_checkpoint(path: Path, model: TorchModel, optimizers: dict[str, Any],
                     rng: np.random.Generator, progress: _Progress) -> None:
    atomic_torch_save({
        "model": model.state(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if model.device.type == "cuda" else [],
        "rng_numpy": rng.bit_generator.state,
        "progress": {"epoch": progress.epoch, "step": progress.step,
                     "best_metric": progress.best_metric, "best_epoch": progress.best_epoch,
                     "since_best": progress.since_best},
        "best_state": progress.best_state,
    }, path)


def _early_stopped(progress: _Progress, validation: Validation | None, patience: int) -> bool:
    return validation is not None and patience > 0 and progress.since_best >= patience


def _load_checkpoint(path: Path, model: TorchModel, optimizers: dict[str, Any],
                     rng: np.random.Generator) -> _Progress:
    saved = load_weights(path, model.device)
    model.module.load_state_dict(saved["model"]["module"])
    for name, opt in optimizers.items():
        opt.load_state_dict(saved["optimizers"][name])
    # The checkpoint was loaded onto the model's device, but generator states are set
    # from CPU byte tensors only.
    torch.set_rng_state(saved["rng_torch"].cpu())
    if saved.get("rng_cuda"):
        torch.cuda.set_rng_state_all([state.cpu() for state in saved["rng_cuda"]])
    rng.bit_generator.state = saved["rng_numpy"]
    return _Progress(**saved["progress"], best_state=saved["best_state"])


def training_set(model: TorchModel, features: Features, ctx: Context) -> TrainingSet:
    """What the loop iterates over: each active user's row, or, in next-window mode, one
    sample per (user, cut) with the features as of the cut as input and the items the user
    touched in the following window as target."""
    p = model.params
    if p.target == "reconstruct":
        active = np.flatnonzero(np.diff(features.matrix.indptr) > 0)
        return TrainingSet(features.matrix[active], None, active,
                           side_block(features.user_side, active))
    if ctx.features_at is None:
        raise PipelineError(f"[model] {model.name}: target = \"next-window\" needs the "
                            "runner's features_at (train it through a pipeline)")
    window = parse_duration(p.target_window)
    frame = features.dataset.events.frame
    inputs, targets, users, sides = [], [], [], []
    for i in range(p.cuts):
        cut = features.now - window * (i + 1)
        if cut <= features.dataset.events.start:
            break
        at_cut = ctx.features_at(cut)
        during = features.dataset.events.select(
            ((frame["time"] >= cut) & (frame["time"] < cut + window)).to_numpy())
        touched = Features.start(features.dataset.with_events(during), cut, features.users,
                                 features.items).history
        rows = np.flatnonzero((np.diff(touched.indptr) > 0)
                              & (np.diff(at_cut.matrix.indptr) > 0))
        inputs.append(at_cut.matrix[rows])
        targets.append(touched[rows])
        users.append(rows)
        sides.append(side_block(at_cut.user_side, rows))
    if not inputs or sum(len(u) for u in users) == 0:
        raise PipelineError(f"[model] {model.name}: no user has events both before and in "
                            f"the {p.target_window} after any cut; shorten target_window")
    ctx.log(f"{model.name}: next-window training on {sum(map(len, users))} samples from "
            f"{len(users)} cuts")
    return TrainingSet(sp.vstack(inputs).tocsr(), sp.vstack(targets).tocsr(),
                       np.concatenate(users), np.concatenate(sides))


def train(model: TorchModel, features: Features, validation: Validation | None,
          ctx: Context) -> None:
    """Fit ``model`` on the rows of ``features.matrix`` that have any interaction (on
    several processes, see :mod:`penchant.distributed`: each trains on its share of every
    batch, and only the leader validates and writes checkpoints)."""
    p = model.params
    seed_everything(ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    model.device = distributed.device_for(
        resolve_device(p.device if p.device != "auto" else ctx.device))
    model.dims = Dimensions.of(features)
    model.users = features.users
    model.module = model.build(model.dims).to(model.device)
    model.prepare(features)
    optimizers = model.optimizers()
    data = training_set(model, features, ctx)
    checkpoint = Path(ctx.work_dir) / "checkpoints" / "last.pt" if ctx.work_dir else None
    progress = _Progress()
    if p.resume and checkpoint is not None and checkpoint.exists():
        progress = _load_checkpoint(checkpoint, model, optimizers, rng)
        ctx.log(f"{model.name}: resumed from {checkpoint} after epoch {progress.epoch}")
    metric_name = f"ndcg@{validation.k}" if validation is not None else None
    stopped = _early_stopped(progress, validation, p.patience)  # a resumed, finished fit
    ctx.log(f"{model.name}: training on {len(data)} samples × {model.n_items} items, "
            f"{model.device}, up to {p.epochs} epochs"
            + (f", {distributed.world_size()} processes" if distributed.active() else ""))
    custom_step = type(model).train_step is not TorchModel.train_step
    with distributed.synced(model.module, custom_step) as wrapped:
        for epoch in range(progress.epoch + 1, 0 if stopped else p.epochs + 1):
            started = time.perf_counter()
            losses = _epoch(model, data, rng, progress, optimizers, wrapped, ctx)
            losses["seconds"] = time.perf_counter() - started
            metrics: dict[str, float] = {}
            progress.epoch = epoch
            if validation is not None:
                metrics[metric_name] = distributed.broadcast(
                    _validate(model, validation) if distributed.is_leader() else None)
                if metrics[metric_name] > progress.best_metric:
                    progress.best_metric, progress.since_best = metrics[metric_name], 0
                    progress.best_epoch = epoch
                    progress.best_state = copy.deepcopy(model.module.state_dict())
                else:
                    progress.since_best += 1
            # Recorded before the checkpoint: a crash between the two redoes this epoch on
            # resume and records it again in its place, rather than leaving it out.
            ctx.epoch_end(epoch, losses, metrics)
            if checkpoint is not None and distributed.is_leader():
                _save_checkpoint(checkpoint, model, optimizers, rng, progress)
            ctx.progress("train", epoch, p.epochs)
            if _early_stopped(progress, validation, p.patience):
                ctx.log(f"{model.name}: early stop at epoch {epoch}; best {metric_name} "
                        f"{progress.best_metric:.4f} at epoch {progress.best_epoch}")
                break
    if progress.best_state is not None:
        model.module.load_state_dict(progress.best_state)
        model.best_epoch = progress.best_epoch
    else:
        model.best_epoch = progress.epoch


def _epoch(model: TorchModel, data: TrainingSet, rng: np.random.Generator,
           progress: _Progress, optimizers: dict[str, torch.optim.Optimizer],
           wrapped: torch.nn.Module | None, ctx: Context) -> dict[str, float]:
    """One pass over the samples in batches; the mean of each loss term over batches
    (and processes).

    Every process draws the same order, so the batches are the same everywhere; each
    trains on its share of the batch (every n-th user), its loss scaled by its share so
    that the averaged gradient is the whole batch's. A batch smaller than the number of
    processes is skipped by all of them.
    """
    model.module.train()
    size, me, world = model.params.batch_size, distributed.rank(), distributed.world_size()
    totals: dict[str, float] = {}
    batches = 0
    order = rng.permutation(len(data))
    for start in range(0, len(order), size):
        ctx.check_cancelled()
        idx = np.sort(order[start:start + size])
        if len(idx) < world:
            continue
        share = idx[me::world]
        batch = model.training_batch(data, share)
        batch.share = len(share) * world / len(idx)
        with distributed.training_through(model, wrapped):
            terms = model.train_step(batch, progress.step, optimizers)
        for key, value in terms.items():  # weighted, so the mean over processes is the batch's
            totals[key] = totals.get(key, 0.0) + value * batch.share
        progress.step += 1
        batches += 1
    return distributed.mean({k: v / max(batches, 1) for k, v in totals.items()},
                            model.device)
