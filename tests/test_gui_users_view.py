"""The users view: a real run over the shop, one shopper's timeline, trajectory and
explained list, with the hits checked against the shop's own events file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
import pytest

from conftest import SHOP_PIPELINE
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.store import RunStore
from penchant.trained import TrainedRun
from penchant_gui.users_view import UNCATEGORISED, UsersView, window_shares

pytestmark = pytest.mark.gui

#: The shop pipeline with itemknn (no training, exact explanations) and interests scored,
#: so the run writes trajectories.csv.
ITEMKNN = SHOP_PIPELINE.replace(
    'plugin = "vae"\nepochs = {epochs}\nhidden = 32\nlatent = 8\nbatch_size = 64',
    'plugin = "itemknn"') + "interests = true\n"


@pytest.fixture(scope="module")
def finished(shop: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[RunStore, int, Registry]:
    folder = tmp_path_factory.mktemp("users-run")
    path = folder / "pipeline.toml"
    path.write_text(ITEMKNN.format(shop=shop, epochs=0))
    assert 'plugin = "itemknn"' in path.read_text()
    registry = Registry()
    store = RunStore(f"sqlite:///{folder / 'runs.sqlite'}")
    result = Runner(load_pipeline(path, registry), registry, store, folder / "out").run()
    return store, result.run.id, registry


@pytest.fixture(scope="module")
def shop_events(shop: Path) -> pd.DataFrame:
    events = pd.read_csv(shop / "events.csv.gz", dtype={"user_id": str, "item_id": str})
    events["time"] = pd.to_datetime(events["timestamp"], unit="s", utc=True)
    return events


def opened(qtbot, finished, user: str | None = None) -> UsersView:
    store, run_id, registry = finished
    view = UsersView(store, registry=registry)
    qtbot.addWidget(view)
    view.resize(1300, 850)
    view.show_run(run_id)
    qtbot.waitUntil(lambda: view.data is not None, timeout=60_000)
    if user is not None:
        view.show_user(user)
        qtbot.waitUntil(lambda: view.detail is not None and view.detail.user == user,
                        timeout=60_000)
    return view


def busy_user(view: UsersView, shop_events: pd.DataFrame) -> str:
    """A trained user with events on both sides of the cutoff and at least one hit."""
    assert view.data is not None
    cutoff = view.data.cutoff
    trained = view.data.trained
    counts = shop_events.groupby("user_id")["time"].agg(
        before=lambda t: (t < cutoff).sum(), after=lambda t: (t >= cutoff).sum())
    candidates = counts[(counts["before"] > 5) & (counts["after"] > 5)].index
    for user in candidates:
        later = set(shop_events.loc[(shop_events["user_id"] == user)
                                    & (shop_events["time"] >= cutoff), "item_id"])
        if later & set(trained.recommend(user, 10)["item"]):
            return str(user)
    return str(candidates[0])


def plotted(plot: pg.PlotWidget) -> tuple[int, int]:
    """(filled, hollow) scatter points drawn on the timeline."""
    filled = hollow = 0
    for item in plot.getPlotItem().items:
        if isinstance(item, pg.ScatterPlotItem):
            n = len(item.data)
            if item.opts["brush"].color().alpha() == 0:
                hollow += n
            else:
                filled += n
    return filled, hollow


def test_a_user_is_shown_with_timeline_list_and_hits(qtbot, finished, shop_events) -> None:
    view = opened(qtbot, finished)
    user = busy_user(view, shop_events)
    view.show_user(user)
    qtbot.waitUntil(lambda: view.detail is not None and view.detail.user == user,
                    timeout=60_000)
    assert view.user_pane.showing_content
    assert view.completer.model().stringList() == view.data.users

    mine = shop_events[shop_events["user_id"] == user]
    cutoff = view.data.cutoff
    filled, hollow = plotted(view.timeline)
    assert filled == int((mine["time"] < cutoff).sum())
    assert hollow == int((mine["time"] >= cutoff).sum())
    assert filled + hollow == len(mine)

    store, run_id, registry = finished
    expected = TrainedRun(run_id, store, registry).recommend(user, 10)
    frame = view.recs_model.frame
    assert frame["item"].tolist() == expected["item"].tolist()
    assert frame["rank"].tolist() == expected["rank"].tolist()
    np.testing.assert_allclose(frame["score"].to_numpy(dtype=float),
                               expected["score"].to_numpy(dtype=float), rtol=1e-6)
    later = set(mine.loc[mine["time"] >= cutoff, "item_id"])
    assert set(frame.loc[frame["hit"] != "", "item"]) == later & set(frame["item"])
    hits = len(later & set(frame["item"]))
    assert view.hits_label.text().startswith(f"<b>{hits} of 10</b>")
    assert (frame["because of"].str.len() > 0).all()
    assert frame["method"].str.len().gt(0).all()
    assert (frame["category"] != UNCATEGORISED).all()
    # the run wrote trajectories.csv: past windows come from it, forecasts need evolution
    assert view.data.trajectories is not None
    assert "evolution" in view.forecast_note.text()

    view.grab().save("/tmp/users_view.png")


def test_past_shares_sum_to_one_per_window() -> None:
    end = pd.Timestamp("2024-07-01", tz="UTC")
    events = pd.DataFrame({
        "time": [end - pd.Timedelta(days=d) for d in (1, 2, 3, 40, 41, 100, 5)],
        "category": ["a", "b", "a", "c", "c", "a", UNCATEGORISED]})
    shares = window_shares(events, end)
    assert len(shares) == 3  # windows 0-30, 30-60 and 90-120 days back; 60-90 is empty
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert shares.index.is_monotonic_increasing
    last = shares.iloc[-1]
    assert last["a"] == pytest.approx(2 / 3) and last["b"] == pytest.approx(1 / 3)
    assert shares.iloc[1]["c"] == 1.0
    assert UNCATEGORISED not in shares.columns
    assert window_shares(events.iloc[:0], end).empty


def test_an_unknown_user_is_explained(qtbot, finished) -> None:
    view = opened(qtbot, finished)
    view.show_user("nobody-at-all")
    assert not view.user_pane.showing_content
    assert "Unknown user" in view.user_pane.message.text()


def test_no_finished_runs_says_how_to_get_one(qtbot, tmp_path: Path) -> None:
    view = UsersView(RunStore(f"sqlite:///{tmp_path / 'empty.sqlite'}"))
    qtbot.addWidget(view)
    assert not view.pane.showing_content
    assert "No finished runs" in view.pane.message.text()


def test_forecasts_of_a_trajectory_are_drawn_after_the_past(qtbot) -> None:
    from penchant_gui.users_view import TrajectoryPlot, colours_for, trajectory_parts

    cutoff = pd.Timestamp("2024-07-01", tz="UTC")
    rows = [("u1", "", "observed", -2, "2024-05-02", "2024-06-01", "", "a", 1.0),
            ("u1", "", "observed", -1, "2024-06-01", "2024-07-01", "", "a", 0.5),
            ("u1", "", "observed", -1, "2024-06-01", "2024-07-01", "", "b", 0.5),
            ("u1", "evolution", "latent", -1, "2024-06-01", "2024-07-01", "", "pc1", 0.3),
            ("u1", "evolution", "forecast", 0, "2024-07-01", "", "7d", "b", 1.0),
            ("u1", "evolution", "forecast", 0, "2024-07-01", "", "30d", "a", 0.25),
            ("u1", "evolution", "forecast", 0, "2024-07-01", "", "30d", "b", 0.75),
            ("u1", "persistence", "forecast", 0, "2024-07-01", "", "", "a", 0.75),
            ("u2", "", "observed", -1, "2024-06-01", "2024-07-01", "", "c", 1.0)]
    frame = pd.DataFrame(rows, columns=["user", "model", "kind", "window", "start", "end",
                                        "horizon", "name", "value"])
    past, ahead, model = trajectory_parts(frame, "u1")
    assert model == "evolution" and list(past.columns) == ["a", "b"]
    np.testing.assert_allclose(past.sum(axis=1), 1.0)
    assert list(ahead.index) == [pd.Timedelta(days=7), pd.Timedelta(days=30)]
    assert ahead.loc[pd.Timedelta(days=30), "b"] == 0.75
    plot = TrajectoryPlot()
    qtbot.addWidget(plot)
    plot.show_shares(past, ahead, cutoff, "30d", model, colours_for(["a", "b"]))
    assert plot.has_forecast
    fills = [i for i in plot.getPlotItem().items if isinstance(i, pg.FillBetweenItem)]
    assert len(fills) == 4  # two categories, past and forecast


@pytest.fixture(scope="module")
def vae_finished(shop: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[RunStore, int, Registry]:
    folder = tmp_path_factory.mktemp("users-vae-run")
    path = folder / "pipeline.toml"
    path.write_text(SHOP_PIPELINE.format(shop=shop, epochs=2))
    registry = Registry()
    store = RunStore(f"sqlite:///{folder / 'runs.sqlite'}")
    result = Runner(load_pipeline(path, registry), registry, store, folder / "out").run()
    return store, result.run.id, registry


def test_latent_trajectories_draw_one_path_per_sampled_user(qtbot, vae_finished) -> None:
    from penchant_gui.users_view import LATENT_SAMPLE, LATENT_WINDOWS, latent_sample

    view = opened(qtbot, vae_finished)
    qtbot.waitUntil(lambda: view.latent is not None, timeout=60_000)
    sample = view.latent.sample
    assert len(sample) == LATENT_SAMPLE and sample == latent_sample(view.data.users)
    assert len(view.latent.frames[""]) == LATENT_SAMPLE * LATENT_WINDOWS
    user = sample[3]
    view.show_user(user)
    qtbot.waitUntil(lambda: view.latent_plot.highlighted == user, timeout=60_000)
    assert view.latent_pane.showing_content
    assert view.latent_plot.paths == LATENT_SAMPLE
    # a user outside the sample is added to it, highlighted
    outside = next(u for u in view.data.users if u not in set(sample))
    view.show_user(outside)
    qtbot.waitUntil(lambda: view.latent_plot.highlighted == outside, timeout=60_000)
    assert view.latent_plot.paths == LATENT_SAMPLE + 1


def test_a_model_without_latent_space_says_so(qtbot, finished) -> None:
    view = opened(qtbot, finished)
    qtbot.waitUntil(lambda: view.latent is not None, timeout=60_000)
    assert not view.latent.has_latent
    assert not view.latent_pane.showing_content
    assert "no latent space" in view.latent_pane.message.text()
