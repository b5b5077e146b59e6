"""The shared training loop: devices, next-window samples, seeding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import penchant
from modelkit import NOW, block_features
from penchant.data import Dataset, Events, Features
from penchant.training import resolve_device, training_set
from penchant_plugins.models.vae import MultVAE

SMALL = {"epochs": 3, "batch_size": 16, "hidden": 16, "latent": 4}


def test_auto_device_and_refusal_of_missing_cuda() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(penchant.PipelineError, match="not valid"):
        resolve_device("tpu:7")
    if not torch.cuda.is_available():
        with pytest.raises(penchant.PipelineError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_the_device_switch_is_honoured(monkeypatch) -> None:
    """The loop places the module and every batch on the resolved device; CUDA code paths
    are the same ones (checked for real when a GPU is lent)."""
    seen = []
    original = MultVAE.losses

    def spy(self, batch, step):
        seen.append((batch.x.device, next(self.module.parameters()).device))
        return original(self, batch, step)

    monkeypatch.setattr(MultVAE, "losses", spy)
    model = MultVAE({**SMALL, "device": "cpu"})
    model.fit(block_features(), None, penchant.Context())
    assert seen and all(x == p == torch.device("cpu") for x, p in seen)
    if torch.cuda.is_available():
        seen.clear()
        model = MultVAE({**SMALL, "device": "cuda"})
        model.fit(block_features(), None, penchant.Context())
        assert all(x.type == p.type == "cuda" for x, p in seen)


def test_same_seed_same_model_different_seed_different_model() -> None:
    feats = block_features()
    rows = np.arange(feats.shape[0])
    scores = []
    for seed in (0, 0, 1):
        model = MultVAE(SMALL)
        model.fit(feats, None, penchant.Context(seed=seed))
        scores.append(model.score(feats, rows))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert not np.allclose(scores[0], scores[2])


def test_next_window_samples_pair_history_before_a_cut_with_the_window_after() -> None:
    frame = pd.DataFrame({
        "user": ["a", "a", "a", "b", "b"],
        "item": ["x", "y", "z", "x", "y"],
        "time": ["2024-04-01", "2024-05-10", "2024-05-20", "2024-03-01", "2024-04-20"],
    })
    features = Features.start(Dataset(Events.from_frame(frame)), NOW)
    features.matrix = features.history.astype(np.float32)

    def features_at(cut: pd.Timestamp) -> Features:
        events = features.dataset.events
        f = Features.start(features.dataset.with_events(
            events.select((events.frame["time"] < cut).to_numpy())), cut,
            features.users, features.items)
        f.matrix = f.history.astype(np.float32)
        return f

    model = MultVAE({**SMALL, "target": "next-window", "target_window": "30d", "cuts": 3})
    data = training_set(model, features, penchant.Context(features_at=features_at))
    # cuts: May 2 (a: x → y, z), April 2 (a: x → none; b: x → y), March 3 (none before)
    users = list(features.users)
    samples = {(users[u], tuple(features.items[data.inputs[i].indices]),
                tuple(features.items[data.targets[i].indices]))
               for i, u in enumerate(data.users)}
    assert samples == {("a", ("x",), ("y", "z")), ("b", ("x",), ("y",))}


def test_next_window_outside_a_run_is_refused() -> None:
    model = MultVAE({**SMALL, "target": "next-window"})
    with pytest.raises(penchant.PipelineError, match="features_at"):
        model.fit(block_features(), None, penchant.Context())


def test_validation_scores_in_batches_and_caps_its_users() -> None:
    """Early stopping's NDCG is the same scored in batches as all at once, and a cap on
    users takes one fixed sample of them (the same every epoch)."""
    from penchant.testing import tiny_validation

    features = block_features(users=90, items=30, blocks=6, per_user=4, seed=2)
    validation = tiny_validation(features)
    rng = np.random.default_rng(0)
    table = rng.random(features.shape).astype(np.float32)

    def score(_: Features, rows: np.ndarray) -> np.ndarray:
        return table[rows].copy()

    everyone = validation.users()
    assert len(everyone) > 20
    whole = validation.ndcg(score, batch_size=len(everyone))
    assert validation.ndcg(score, batch_size=7) == pytest.approx(whole, rel=1e-12)
    capped = penchant.Validation(validation.features, validation.targets, k=5, max_users=20)
    sample = capped.users()
    assert len(sample) == 20 and set(sample) <= set(everyone)
    np.testing.assert_array_equal(capped.users(), sample)
    assert capped.ndcg(score) != whole


def _vae() -> torch.nn.Module:
    from penchant_plugins.models.vae import MultVAENet
    return MultVAENet(30, 8, 4, dropout=0.5)


def _dae(hidden: int = 8) -> torch.nn.Module:
    from penchant_plugins.models.dae import MultDAENet
    return MultDAENet(30, hidden, 4, dropout=0.5)


def _cvae() -> torch.nn.Module:
    from penchant.training import Dimensions
    from penchant_plugins.models.cvae import ConditionalVAENet
    return ConditionalVAENet(Dimensions(40, 30, user_side=3, item_side=2), 8, 4, 6, 0.5)


SIDE = torch.rand(5, 3)


def _outputs(net: torch.nn.Module, x: object) -> tuple[torch.Tensor, ...]:
    out = net(x, SIDE[:len(x) if isinstance(x, torch.Tensor) else x.n_rows]) \
        if hasattr(net, "side_in") else net(x)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("make", [_vae, _dae, _cvae], ids=["vae", "dae", "cvae"])
def test_sparse_rows_are_the_dense_rows_and_the_autoencoders_read_either_alike(make) -> None:
    from penchant.training import SparseRows, densify

    features = block_features(users=40, items=30, blocks=5, per_user=4, seed=1)
    rows = np.array([3, 0, 17, 17, 39])
    cpu = torch.device("cpu")
    sparse = SparseRows.of(features.matrix, rows, cpu)
    dense = densify(features.matrix, rows, cpu)
    assert torch.equal(sparse.dense(), dense)
    torch.manual_seed(0)
    net = make().eval()
    for a, b in zip(_outputs(net, sparse), _outputs(net, dense), strict=True):
        torch.testing.assert_close(a, b)


def _as_dense_first_layer(net: torch.nn.Module, renumber: bool = False
                          ) -> dict[str, torch.Tensor]:
    """``net``'s weights in the layout checkpoints had while the first layer was a dense
    ``encoder.0`` (width × items, then any side-feature columns)."""
    state = net.state_dict()
    old = {}
    for key, value in state.items():
        if key.startswith("encoder.") and renumber:
            index, rest = key[len("encoder."):].split(".", 1)
            old[f"encoder.{int(index) + 1}.{rest}"] = value
        elif key not in ("table", "bias", "side_in.weight"):
            old[key] = value
    weight = state["table"].t()
    if "side_in.weight" in state:
        weight = torch.cat([weight, state["side_in.weight"]], dim=1)
    old["encoder.0.weight"], old["encoder.0.bias"] = weight.clone(), state["bias"]
    return old


@pytest.mark.parametrize(("make", "renumber", "layout"), [
    (_vae, False, {"encoder.0.weight", "to_mu.weight", "decoder.2.weight"}),
    (_dae, True, {"encoder.0.weight", "encoder.2.weight", "decoder.2.weight"}),
    (lambda: _dae(hidden=0), True, {"encoder.0.weight", "decoder.0.weight"}),
    (_cvae, False, {"encoder.0.weight", "to_mu.weight", "item_free"}),
], ids=["vae", "dae", "dae-no-hidden", "cvae"])
def test_a_checkpoint_with_a_dense_first_layer_still_loads(make, renumber, layout) -> None:
    """Runs stored before the first layer became an items × width table hold it as
    ``encoder.0``; in ``dae`` the layers after it were numbered from 2."""
    torch.manual_seed(0)
    net = make().eval()
    old = _as_dense_first_layer(net, renumber)
    assert layout <= {k for k in old if k.endswith("weight") or k == "item_free"}
    torch.manual_seed(1)
    loaded = make().eval()
    loaded.load_state_dict(old)
    x = torch.rand(3, 30) * (torch.rand(3, 30) < 0.3)
    torch.testing.assert_close(_outputs(loaded, x)[0], _outputs(net, x)[0])
