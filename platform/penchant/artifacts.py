"""What a run leaves in its folder, written atomically and read back safely.

``model.pt`` loads with ``torch.load(weights_only=True)``: it holds only tensors, numbers,
strings and containers, never pickled objects, so a checkpoint from elsewhere cannot run
code. ``features.npz`` keeps the training matrix and id indexes, for recommending to known
users and folding in new ones later, and each item's category, for explanations.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from penchant import atomic
from penchant.components import Model, Recommender
from penchant.data import Features, Recommendations
from penchant.errors import StoreError
from penchant.explain import item_categories
from penchant.plugins import Registry

if TYPE_CHECKING:
    from penchant.store import RunRecord, RunStore

MODEL_FORMAT = 1


def save_model(model: Model, items: pd.Index, path: Path,
               recommender: Recommender | None = None) -> Path:
    """The model, its catalogue and, when it learnt something, the recommender's state."""
    payload = {"format": MODEL_FORMAT, "plugin": model.name, "params": dict(model.params),
               "items": [str(i) for i in items], "state": model.state(),
               "recommender": recommender.state() if recommender is not None else {}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic.write_bytes(path, buffer.getvalue())


def load_model(path: Path, registry: Registry) -> tuple[Model, pd.Index]:
    model, items, _ = load_checkpoint(path, registry)
    return model, items


def load_weights(path: Path, map_location: Any = "cpu") -> Any:
    """A file saved with ``torch.save``, read with ``weights_only=True``: tensors, numbers,
    strings and containers only. Every checkpoint is read through here, so one that holds
    a pickled object (which could run code as it loads) is refused, as a StoreError."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise StoreError(f"{path}: checkpoint not found") from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"{path}: not a loadable Penchant checkpoint (only tensors, "
                         f"numbers, strings and containers are read): {reason}") from None


def load_checkpoint(path: Path, registry: Registry) -> tuple[Model, pd.Index, dict[str, Any]]:
    """Model, catalogue and the recommender state saved with them."""
    payload = load_weights(path)
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != MODEL_FORMAT:
        raise StoreError(f"{path}: checkpoint format {found!r} is not {MODEL_FORMAT}")
    cls = registry.get("model", payload["plugin"], str(path))
    model = cls(payload["params"], where=str(path))
    model.load_state(payload["state"])
    return model, pd.Index(payload["items"], dtype="string"), payload.get("recommender", {})


def save_features(features: Features, path: Path, category: str = "category") -> Path:
    """The matrices and indexes, and each item's ``category`` (a column of the items side
    table) when the dataset has one."""
    arrays: dict[str, Any] = {
        "users": np.asarray(features.users, dtype=str),
        "items": np.asarray(features.items, dtype=str),
        "now": np.asarray([features.now.value], dtype=np.int64),
        "idle_days": np.asarray(features.idle_days, dtype=np.float64),
    }
    categories = item_categories(features.dataset.items, features.items, category)
    if categories is not None:
        arrays.update(item_category=categories, item_category_column=np.asarray([category]))
    for name in ("matrix", "history"):
        m = getattr(features, name).tocsr()
        arrays.update({f"{name}_data": m.data, f"{name}_indices": m.indices,
                       f"{name}_indptr": m.indptr})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic.write_bytes(path, buffer.getvalue())


def load_features(path: Path) -> dict[str, Any]:
    """users, items (indexes), now (timestamp), idle_days, matrix and history (CSR), and
    when saved, item_category (one name per item, "" for none) and item_category_column."""
    with np.load(path, allow_pickle=False) as z:
        users = pd.Index(z["users"].astype(str), dtype="string")
        items = pd.Index(z["items"].astype(str), dtype="string")
        shape = (len(users), len(items))
        out: dict[str, Any] = {"users": users, "items": items,
                               "now": pd.Timestamp(int(z["now"][0]), tz="UTC"),
                               "idle_days": z["idle_days"]}
        for name in ("matrix", "history"):
            out[name] = sp.csr_matrix((z[f"{name}_data"], z[f"{name}_indices"],
                                       z[f"{name}_indptr"]), shape=shape)
        if "item_category" in z:
            out["item_category"] = z["item_category"].astype(str)
            out["item_category_column"] = str(z["item_category_column"][0])
    return out


def write_json(path: Path, value: Any) -> Path:
    return atomic.write_text(path, json.dumps(value, indent=2, sort_keys=False,
                                              allow_nan=False, default=str) + "\n")


def write_recommendations(path: Path, recs: Recommendations) -> Path:
    # Nine significant digits give every float32 score back exactly: a known user's list
    # is served from this file (``TrainedRun.recommend``) and must equal a scored one.
    return atomic.write_text(path, recs.frame.to_csv(index=False, float_format="%.9g"))


def write_losses(path: Path, rows: list[dict[str, Any]]) -> Path:
    frame = pd.DataFrame(rows, columns=["model", "epoch", "term", "value"])
    return atomic.write_text(path, frame.to_csv(index=False))


def delete_run(store: RunStore, run_id: int, with_feedback: bool = False,
               keep_files: bool = False) -> tuple[RunRecord, list[Path]]:
    """Forget a run (:meth:`RunStore.delete_run`), then remove what it wrote unless
    ``keep_files``: the run's record and what its folder keeps (see
    :func:`remove_run_files`). What ``penchant runs delete`` and the app's Delete do."""
    files = store.artifacts(run_id)  # checked to lie in the run's folder, while known
    record = store.delete_run(run_id, with_feedback=with_feedback)
    if keep_files or not record.out_dir:
        return record, []
    return record, remove_run_files(Path(record.out_dir), files.values())


def remove_run_files(out_dir: Path, files: Iterable[str | Path]) -> list[Path]:
    """Delete what a run wrote into ``out_dir``: its recorded files (``files``, already
    checked to lie inside it) and its ``work`` folder (checkpoints); then the folder when
    nothing else is left in it. Returns what is left: files the run did not write (a
    folder given with ``--out`` may hold a user's own) are never touched."""
    out_dir = Path(out_dir)
    for path in files:
        Path(path).unlink(missing_ok=True)
    work = out_dir / "work"
    if work.is_dir() and not work.is_symlink():
        shutil.rmtree(work)
    if not out_dir.is_dir():
        return []
    left = sorted(out_dir.iterdir())
    if not left:
        out_dir.rmdir()
    return left
