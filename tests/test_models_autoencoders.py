"""Mult-DAE, CDAE and CFGAN on a tiny block-structured shop: they fit, save, resume, fold in
new users, and refuse bad parameters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import penchant
from modelkit import NOW, block_features, own_item_recall, registry_with
from penchant.artifacts import load_model, save_model
from penchant.data import Dataset, Events, Features
from penchant.training import TRAINING_PARAMS, TorchModel
from penchant_plugins.models.cdae import CDAE
from penchant_plugins.models.cfgan import CFGAN
from penchant_plugins.models.dae import MultDAE

MODELS = [MultDAE, CDAE, CFGAN]

#: Small nets that train in a second or two on 60 users × 40 items.
SMALL: dict[str, dict[str, Any]] = {
    "dae": {"hidden": 0, "latent": 32, "dropout": 0.2, "lr": 1e-2, "batch_size": 20},
    "cdae": {"hidden": 32, "dropout": 0.2, "lr": 1e-2, "batch_size": 20},
    "cfgan": {"g_hidden": 64, "d_hidden": 32, "lr": 2e-3, "zr_ratio": 1.0,
              "zr_weight": 1.0, "batch_size": 20},
}
#: Enough epochs to memorise every user's items.
OVERFIT_EPOCHS = {"dae": 100, "cdae": 100, "cfgan": 150}

ids = [cls.name for cls in MODELS]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny matrices are dominated by thread hand-offs: on busy cores one thread is ~50×
    faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def features() -> Features:
    return block_features()


def make(cls: type[TorchModel], device: str = "cpu", **params: Any) -> TorchModel:
    return cls({**SMALL[cls.name], "device": device, **params})


def fit(cls: type[TorchModel], features: Features, epochs: int = 3, seed: int = 0,
        work_dir: Path | None = None, losses: list | None = None, device: str = "cpu",
        **params: Any) -> TorchModel:
    model = make(cls, device, epochs=epochs, **params)
    record = (lambda epoch, terms, metrics: losses.append(terms)) if losses is not None \
        else (lambda epoch, terms, metrics: None)
    model.fit(features, None, penchant.Context(
        seed=seed, work_dir=str(work_dir) if work_dir else None, epoch_end=record))
    return model


def all_scores(model: TorchModel, features: Features) -> np.ndarray:
    return model.score(features, np.arange(features.shape[0]))


def test_the_three_keep_the_plugin_contract() -> None:
    registry = registry_with(*MODELS)
    assert registry.failures == []
    assert registry.names("model") == sorted(ids)
    for cls in MODELS:
        assert cls.__doc__ and cls.description
        names = [p.name for p in cls.schema()]
        assert names[:len(TRAINING_PARAMS)] == [p.name for p in TRAINING_PARAMS]


@pytest.mark.parametrize("cls", MODELS, ids=ids)
def test_overfits_the_tiny_shop(cls, features) -> None:
    losses: list[dict[str, float]] = []
    model = fit(cls, features, epochs=OVERFIT_EPOCHS[cls.name], losses=losses)
    scores = all_scores(model, features)
    assert scores.shape == features.shape and np.isfinite(scores).all()
    # exclude-seen off: each user's own items fill the top |history| of their list
    assert own_item_recall(scores, features.history) >= 0.9
    assert {"loss"} <= set(losses[0])
    if cls is not CFGAN:  # a GAN's losses do not fall; its recall above is what counts
        assert losses[-1]["loss"] < losses[0]["loss"]


@pytest.mark.parametrize("cls", MODELS, ids=ids)
def test_reported_loss_terms(cls, features) -> None:
    losses: list[dict[str, float]] = []
    fit(cls, features, epochs=1, losses=losses)
    expected = {"dae": {"loss", "nll"}, "cdae": {"loss", "bce"},
                "cfgan": {"loss", "d_loss", "g_loss", "zr_loss"}}[cls.name]
    assert set(losses[0]) == expected | {"seconds"}


@pytest.mark.parametrize("cls", MODELS, ids=ids)
def test_checkpoint_round_trip_gives_identical_scores(cls, features, tmp_path) -> None:
    model = fit(cls, features)
    path = save_model(model, features.items, tmp_path / "model.pt")
    loaded, items = load_model(path, registry_with(*MODELS))
    assert type(loaded) is cls and list(items) == list(features.items)
    np.testing.assert_array_equal(all_scores(loaded, features), all_scores(model, features))


#: How far a resumed run may land from an uninterrupted one: on CUDA, bfloat16 autocast
#: and kernels that add in no fixed order (embedding_bag's backward) leave small differences.
RESUME_TOLERANCE = {"cpu": 1e-5, "cuda": 2e-2}
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("cls", MODELS, ids=ids)
def test_resume_continues_exactly(cls, device, features, tmp_path) -> None:
    straight: list[dict[str, float]] = []
    whole = fit(cls, features, epochs=4, work_dir=tmp_path / "a", losses=straight,
                device=device)
    fit(cls, features, epochs=2, work_dir=tmp_path / "b", device=device)
    resumed_losses: list[dict[str, float]] = []
    resumed = fit(cls, features, epochs=4, work_dir=tmp_path / "b", losses=resumed_losses,
                  resume=True, device=device)
    assert len(resumed_losses) == 2, "only epochs 3 and 4 are trained again"
    tolerance = RESUME_TOLERANCE[device]
    for key, value in straight[-1].items():
        if key != "seconds":
            assert resumed_losses[-1][key] == pytest.approx(value, abs=tolerance), key
    np.testing.assert_allclose(all_scores(resumed, features), all_scores(whole, features),
                               atol=tolerance)


@pytest.mark.parametrize("cls", MODELS, ids=ids)
def test_same_seed_same_scores(cls, features) -> None:
    a, b = fit(cls, features, seed=3), fit(cls, features, seed=3)
    np.testing.assert_array_equal(all_scores(a, features), all_scores(b, features))
    c = fit(cls, features, seed=4)
    assert not np.array_equal(all_scores(a, features), all_scores(c, features))


def test_cfgan_losses_stay_finite_every_epoch(features) -> None:
    losses: list[dict[str, float]] = []
    fit(CFGAN, features, epochs=30, losses=losses, d_steps=2, g_steps=2, noise=4)
    assert len(losses) == 30
    for epoch in losses:
        assert {"loss", "d_loss", "g_loss", "zr_loss"} <= set(epoch)
        assert all(np.isfinite(v) for v in epoch.values()), epoch


def fold_in(frame: pd.DataFrame, items: pd.Index) -> Features:
    """Features over a one-user index (a visitor the model never trained on)."""
    visitor = frame.assign(user="visitor")
    folded = Features.start(Dataset(Events.from_frame(visitor)), NOW,
                            users=pd.Index(["visitor"], dtype="string"), items=items)
    folded.matrix = folded.history.astype(np.float32)
    return folded


@pytest.mark.parametrize("cls", MODELS, ids=ids)
def test_a_folded_in_user_gets_finite_scores(cls, features) -> None:
    model = fit(cls, features, epochs=OVERFIT_EPOCHS[cls.name] if cls is CDAE else 3)
    frame = features.dataset.events.frame
    mine = frame[frame["user"] == "u0"][["item", "time"]]
    folded = fold_in(mine, features.items)
    assert model.batch(folded, np.array([0])).rows.tolist() == [-1]
    scores = model.score(folded, np.array([0]))
    assert scores.shape == (1, features.shape[1]) and np.isfinite(scores).all()
    known = model.score(features, np.array([0]))
    if cls is CDAE:
        # no learned user vector, but the history alone still finds the user's items
        assert own_item_recall(scores, folded.history) >= 0.8
    else:  # models without user embeddings score a history the same, whoever has it
        np.testing.assert_allclose(scores, known, rtol=1e-5, atol=1e-6)


def test_cdae_unknown_users_can_use_a_zero_vector(features) -> None:
    model = fit(CDAE, features, unknown_user="zero")
    frame = features.dataset.events.frame
    folded = fold_in(frame[frame["user"] == "u1"][["item", "time"]], features.items)
    mean = fit(CDAE, features)
    zero_scores, mean_scores = model.score(folded, np.array([0])), \
        mean.score(folded, np.array([0]))
    assert np.isfinite(zero_scores).all()
    assert not np.allclose(zero_scores, mean_scores)


@pytest.mark.parametrize(("cls", "key", "value"), [
    (MultDAE, "dropout", -0.1),
    (MultDAE, "latent", 0),
    (CDAE, "negatives", -1.0),
    (CDAE, "unknown_user", "random"),
    (CFGAN, "pm_ratio", 1.5),
    (CFGAN, "d_steps", 0),
    (CFGAN, "zr_weight", -0.5),
])
def test_bad_parameters_name_the_key(cls, key, value) -> None:
    with pytest.raises(penchant.PipelineError, match=f"key '{key}'"):
        cls({key: value})


def test_weighted_interactions_are_read_as_seen_or_not(features) -> None:
    """CDAE and CFGAN model binary purchase vectors; a weighted matrix gives the same fit."""
    weighted = block_features()
    weighted.matrix = weighted.matrix * 3.0
    for cls in (CDAE, CFGAN):
        np.testing.assert_array_equal(all_scores(fit(cls, weighted), features),
                                      all_scores(fit(cls, features), features))


@CUDA
@pytest.mark.parametrize("cls", MODELS, ids=ids)
def test_trains_on_cuda_with_autocast(cls, features, tmp_path) -> None:
    losses: list[dict[str, float]] = []
    model = fit(cls, features, epochs=OVERFIT_EPOCHS[cls.name], losses=losses,
                device="cuda", work_dir=tmp_path)
    assert next(model.module.parameters()).device.type == "cuda"
    assert all(np.isfinite(v) for epoch in losses for v in epoch.values())
    scores = all_scores(model, features)
    assert np.isfinite(scores).all()
    assert own_item_recall(scores, features.history) >= 0.85
    folded = fold_in(features.dataset.events.frame.query("user == 'u0'")[["item", "time"]],
                     features.items)
    assert np.isfinite(model.score(folded, np.array([0]))).all()
    loaded, _ = load_model(save_model(model, features.items, tmp_path / "m.pt"),
                           registry_with(*MODELS))
    np.testing.assert_allclose(all_scores(loaded, features), scores, atol=1e-2)


@pytest.mark.parametrize("model_class", [MultDAE, CDAE], ids=["dae", "cdae"])
def test_next_window_losses_score_the_target_not_the_input(model_class) -> None:
    """With ``target = "next-window"`` a batch's targets differ from its inputs; the loss
    must be the one of predicting the targets (it was the input's for dae and cdae)."""
    import scipy.sparse as sp

    from penchant.training import Dimensions, SparseRows, TrainingSet

    torch.manual_seed(0)
    params = {**SMALL[model_class.name], "negatives": 0.0} if model_class is CDAE \
        else SMALL[model_class.name]
    model = model_class({**params, "target": "next-window"})
    model.dims = Dimensions(n_users=4, n_items=6)
    model.module = model.build(model.dims).eval()  # eval: no dropout, no sampled negatives
    inputs = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]], np.float32))
    targets = sp.csr_matrix(np.array([[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 1]], np.float32))
    data = TrainingSet(inputs, targets, np.array([0, 1]), np.zeros((2, 0), np.float32))
    batch = model.training_batch(data, np.array([0, 1]))
    logits = model.predict(batch).float()
    goal = SparseRows.of(targets, np.array([0, 1]), torch.device("cpu")).dense()
    if model_class is MultDAE:
        expected = -(torch.log_softmax(logits, dim=1) * goal).sum(dim=1).mean()
    else:
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, goal, reduction="none").sum(dim=1).mean()
    loss = model.losses(batch, step=0)["loss"]
    torch.testing.assert_close(loss, expected)


def test_cfgan_refuses_next_window_training() -> None:
    with pytest.raises(penchant.PipelineError, match="cfgan: target = 'next-window' is not"):
        CFGAN({"target": "next-window"})
