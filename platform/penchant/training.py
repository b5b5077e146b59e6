"""The one torch training loop every torch model shares.

Models describe *what* to compute (a module, its loss terms, its scores) by subclassing
:class:`TorchModel`; this module owns *how*: device choice, seeding, per-batch
densification of sparse rows (never a dense matrix of the whole data), mixed precision on
GPU, early stopping on a temporal validation cut, per-epoch checkpoints and the observer
calls that feed live loss plots.
"""

from __future__ import annotations

import copy
import io
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from penchant import atomic
from penchant.components import Context, Model, Validation
from penchant.data import Features
from penchant.errors import PipelineError
from penchant.metrics import ndcg_from_scores
from penchant.params import Param


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
)


class TorchModel(Model):
    """A model trained by :func:`train`. Subclasses implement ``build``, ``losses`` and
    ``predict``; the rest (fit, score, state) is shared."""

    params: ClassVar[tuple[Param, ...]] = ()

    @classmethod
    def schema(cls) -> tuple[Param, ...]:
        return TRAINING_PARAMS + cls.params

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.module: torch.nn.Module | None = None
        self.n_items = 0
        self.device = torch.device("cpu")
        self.best_epoch = 0

    # -- what subclasses provide -----------------------------------------------------

    def build(self, n_items: int) -> torch.nn.Module:
        raise NotImplementedError

    def losses(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Loss terms for one batch in training mode; ``"loss"`` is what is minimised,
        the others (floats or tensors) are only reported."""
        raise NotImplementedError

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Scores for a batch of input rows, in eval mode."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------

    def fit(self, features: Features, validation: Validation | None, ctx: Context) -> None:
        train(self, features, validation, ctx)

    @torch.no_grad()
    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        assert self.module is not None, "score() before fit()"
        self.module.eval()
        out = np.empty((len(rows), self.n_items), dtype=np.float32)
        step = int(self.params.batch_size) * 4
        for start in range(0, len(rows), step):
            batch = densify(features.matrix, rows[start:start + step], self.device)
            with _autocast(self.device):
                scores = self.predict(batch)
            out[start:start + step] = scores.float().cpu().numpy()
        return out

    def state(self) -> dict[str, Any]:
        assert self.module is not None, "state() before fit()"
        return {"n_items": self.n_items, "best_epoch": self.best_epoch,
                "module": {k: v.detach().cpu() for k, v in self.module.state_dict().items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.n_items = int(state["n_items"])
        self.best_epoch = int(state.get("best_epoch", 0))
        self.device = resolve_device(self.params.device)
        self.module = self.build(self.n_items).to(self.device)
        self.module.load_state_dict(state["module"])


def _autocast(device: torch.device) -> Any:
    """bfloat16 autocast on GPU (no loss scaling needed); a no-op on CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)


def _validate(model: TorchModel, validation: Validation) -> float:
    rows = np.flatnonzero(np.diff(validation.targets.indptr) > 0)
    rows = rows[np.diff(validation.features.matrix.indptr)[rows] > 0]
    if len(rows) == 0:
        return float("nan")
    scores = model.score(validation.features, rows)
    seen = validation.features.history[rows]
    scores[seen.nonzero()] = -np.inf
    return float(np.nanmean(ndcg_from_scores(scores, validation.targets[rows], validation.k)))


def train(model: TorchModel, features: Features, validation: Validation | None,
          ctx: Context) -> None:
    """Fit ``model`` on the rows of ``features.matrix`` that have any interaction."""
    p = model.params
    seed_everything(ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    model.device = resolve_device(p.device if p.device != "auto" else ctx.device)
    model.n_items = features.shape[1]
    model.module = model.build(model.n_items).to(model.device)
    optimizer = torch.optim.Adam(model.module.parameters(), lr=p.lr,
                                 weight_decay=p.weight_decay)
    matrix = features.matrix
    active = np.flatnonzero(np.diff(matrix.indptr) > 0)
    n_batches = max(1, math.ceil(len(active) / p.batch_size))
    checkpoint = Path(ctx.work_dir) / "checkpoints" / "last.pt" if ctx.work_dir else None
    best_metric, best_state, since_best, step = -math.inf, None, 0, 0
    metric_name = f"ndcg@{validation.k}" if validation is not None else None
    ctx.log(f"{model.name}: training on {len(active)} users × {model.n_items} items, "
            f"{model.device}, up to {p.epochs} epochs")
    for epoch in range(1, p.epochs + 1):
        started = time.perf_counter()
        model.module.train()
        totals: dict[str, float] = {}
        order = rng.permutation(active)
        for start in range(0, len(order), p.batch_size):
            ctx.check_cancelled()
            rows = np.sort(order[start:start + p.batch_size])
            batch = densify(matrix, rows, model.device)
            with _autocast(model.device):
                terms = model.losses(batch, step)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            step += 1
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + float(
                    value.detach() if isinstance(value, torch.Tensor) else value)
        losses = {k: v / n_batches for k, v in totals.items()}
        losses["seconds"] = time.perf_counter() - started
        metrics: dict[str, float] = {}
        if validation is not None:
            metrics[metric_name] = _validate(model, validation)
            if metrics[metric_name] > best_metric:
                best_metric, since_best, model.best_epoch = metrics[metric_name], 0, epoch
                best_state = copy.deepcopy(model.module.state_dict())
            else:
                since_best += 1
        if checkpoint is not None:
            atomic_torch_save({"epoch": epoch, "step": step, "model": model.state(),
                               "optimizer": optimizer.state_dict()}, checkpoint)
        ctx.epoch_end(epoch, losses, metrics)
        ctx.progress("train", epoch, p.epochs)
        if validation is not None and p.patience and since_best >= p.patience:
            ctx.log(f"{model.name}: early stop at epoch {epoch}; best {metric_name} "
                    f"{best_metric:.4f} at epoch {model.best_epoch}")
            break
    if best_state is not None:
        model.module.load_state_dict(best_state)
    else:
        model.best_epoch = epoch
