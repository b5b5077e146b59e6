"""Users' paths through a run's latent space, projected to 2-D (issue #6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import SHOP_PIPELINE, write_pipeline
from penchant.latent import has_latent_space, latent_trajectories, project, source_events
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.store import RunStore
from penchant.trained import TrainedRun


def _trained(shop, folder, text: str | None = None) -> TrainedRun:
    registry = Registry()
    if text is None:
        path = write_pipeline(shop, folder, epochs=2)
    else:
        path = folder / "pipeline.toml"
        path.write_text(text)
    store = RunStore(f"sqlite:///{folder / 'runs.sqlite'}")
    result = Runner(load_pipeline(path, registry), registry, store, folder / "out").run()
    return TrainedRun(result.run.id, store, registry)


@pytest.fixture(scope="module")
def vae_run(shop, tmp_path_factory) -> TrainedRun:
    return _trained(shop, tmp_path_factory.mktemp("latent-vae"))


def test_each_sampled_user_gets_one_point_per_window(vae_run) -> None:
    users = [str(u) for u in vae_run.users[:12]]
    frame = latent_trajectories(vae_run, users, windows=5, step="30d")
    assert list(frame.columns) == ["user", "window_end", "x", "y"]
    assert len(frame) == 5 * 12
    assert set(frame["user"]) == set(users)
    assert frame.groupby("user").size().eq(5).all()
    assert np.isfinite(frame[["x", "y"]].to_numpy(dtype=float)).all()
    ends = sorted(frame["window_end"].unique())
    assert ends[-1] == vae_run.features.now
    assert np.diff(ends).astype("timedelta64[D]").astype(int).tolist() == [30] * 4
    # PCA: the first axis carries at least as much variance as the second
    assert frame["x"].var() >= frame["y"].var()


def test_the_last_point_is_the_user_as_trained(vae_run) -> None:
    """Folded in at the cutoff, a user's history gives the latent mean of their row in the
    run's own features, so the paths end where the model placed the users."""
    users = pd.Index([str(u) for u in vae_run.users[:6]], dtype="string")
    events = pd.DataFrame({"user": pd.Series([], dtype="string"),
                           "item": pd.Series([], dtype="string"),
                           "time": pd.Series([], dtype="datetime64[ns, UTC]")})
    empty = vae_run.fold_in(events, vae_run.features.now, users)
    assert empty.matrix.shape == (6, len(vae_run.items)) and empty.matrix.nnz == 0
    assert np.isfinite(vae_run.model.embed(empty, np.arange(6))).all()
    trained = vae_run.model.embed(vae_run.features, vae_run.users.get_indexer(users))
    assert trained.shape == (6, 8)  # the pipeline's latent = 8
    folded = vae_run.fold_in(source_events(vae_run), vae_run.features.now, users)
    np.testing.assert_allclose(vae_run.model.embed(folded, np.arange(6)), trained,
                               rtol=1e-5, atol=1e-6)


def test_projection_orders_axes_by_variance() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 5)) * np.array([5.0, 0.1, 2.0, 0.1, 0.1])
    xy, variance = project(points)
    assert variance[0] >= variance[1] > 0
    np.testing.assert_allclose(xy.var(axis=0, ddof=1), variance)
    assert project(points[:, :1])[0][:, 1].tolist() == [0.0] * 200  # 1-D: y is flat


def test_a_model_without_a_latent_space_gives_nothing(shop, tmp_path) -> None:
    text = SHOP_PIPELINE.replace(
        'plugin = "vae"\nepochs = {epochs}\nhidden = 32\nlatent = 8\nbatch_size = 64',
        'plugin = "popularity"').format(shop=shop, epochs=0)
    assert 'plugin = "popularity"' in text
    trained = _trained(shop, tmp_path, text)
    assert trained.model.embed(trained.features, np.arange(3)) is None
    assert not has_latent_space(trained)
    frame = latent_trajectories(trained, list(trained.users[:5]))
    assert frame.empty and list(frame.columns) == ["user", "window_end", "x", "y"]
