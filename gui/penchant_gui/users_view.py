"""The users view: one shopper of a finished run, what they did, where their interests go,
and what the run recommends them (with why, and whether they went on to take it).

Everything comes from the host: the run's model through :class:`penchant.trained.TrainedRun`,
its events and cutoff read again through :mod:`penchant.run_data` (the run's own source
component, so the app never keeps a copy), and ``trajectories.csv`` when the run forecast
interests. Loading a run and explaining a user's list are slow, so both run off the GUI
thread; a result that arrives after the user picked something else is dropped. So do the
latent trajectories (:mod:`penchant.latent`): a seeded sample of users' paths through the
model's latent space, once per run, with the shown user's path added when they are not in
the sample.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QStringListModel, Qt
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from penchant import latent, run_data
from penchant.explain import Explanation
from penchant.interests import window_edges, window_index
from penchant.params import parse_duration
from penchant.plugins import Registry
from penchant.store import RunRecord, RunStore
from penchant.trained import TrainedRun
from penchant_gui.background import run_in_background
from penchant_gui.frame_model import FrameModel
from penchant_gui.loss_plot import COLOURS
from penchant_gui.widgets import Placeheld, frame_table

_Index = QModelIndex | QPersistentModelIndex

#: How many recommendations the table shows, and history items behind each.
TOP_K = 10
TOP_CONTRIBUTIONS = 3
#: Window of the past shares computed from the events when the run wrote no trajectories
#: (the host's default window for ``trajectories.csv``, so both read the same).
WINDOW = "30d"
#: At most this many past windows: older history would squeeze the recent months.
MAX_WINDOWS = 24
#: Events on items without a category (or runs without an items side table).
UNCATEGORISED = "(none)"
#: Trajectory rows of the persistence baselines: forecasts without a horizon.
BASELINES = frozenset({"persistence", "recency-weighted"})
HIT_BACKGROUND = QColor("#DFF2E1")

NO_RUNS = ("<h3>No finished runs</h3><p>Pick a shopper here once a run has finished: start "
           "one from the pipeline builder, or from a terminal with<br><code>penchant run "
           "pipeline.toml</code>.</p>")
#: Users whose latent paths are drawn (a seeded sample), and how many windows back.
LATENT_SAMPLE = 50
LATENT_WINDOWS = 6
LATENT_SEED = 0
NO_LATENT = ("<b>No latent trajectories.</b> This run's model has no latent space "
             "(popularity, EASE and item-kNN score items directly), so there is nothing to "
             "project. Train a <b>vae</b>, <b>cvae</b>, <b>dae</b> or <b>cdae</b> to see how "
             "users' interests move.")
NO_FORECAST = ("Past windows only. For forecasts of the next 7/30/90 days, run with "
               "<code>[evaluation] interests = true</code> and the <b>evolution</b> model.")


# -- pure functions over frames (tested without Qt) ---------------------------------------

def item_categories(items: pd.DataFrame | None, column: str) -> pd.Series | None:
    """Each item's category (index: item id as a string), or None when the source has no
    items side table with that column."""
    if items is None or column not in items.columns:
        return None
    names = items[column].astype("string").str.strip()
    names.index = pd.Index(items.index.astype(str), dtype="string")
    names = names[names.notna() & (names != "")]
    return names[~names.index.duplicated(keep="first")]


def categorise(items: pd.Series, categories: pd.Series | None) -> pd.Series:
    """The category of each item in ``items``, :data:`UNCATEGORISED` where it has none."""
    if categories is None:
        return pd.Series(UNCATEGORISED, index=items.index, dtype="string")
    return items.astype("string").map(categories).fillna(UNCATEGORISED).astype("string")


def window_shares(events: pd.DataFrame, end: pd.Timestamp, window: str = WINDOW,
                  n_windows: int | None = None) -> pd.DataFrame:
    """Category shares of ``events`` (columns ``time``, ``category``) per window of
    ``window`` ending at ``end``, oldest first: one row per window that holds categorised
    events (an empty window has no shares to draw), indexed by the window's start, one
    column per category, each row summing to 1. ``n_windows`` defaults to as many as reach
    back to the first event, at most :data:`MAX_WINDOWS`. The windows are the host's own
    (:func:`penchant.interests.window_edges`), so they line up with ``trajectories.csv``."""
    events = events[(events["time"] < end) & (events["category"] != UNCATEGORISED)]
    if n_windows is None:
        if len(events) == 0:
            return pd.DataFrame(dtype=np.float64)
        span = (end - events["time"].min()) / parse_duration(window)
        n_windows = max(1, min(MAX_WINDOWS, math.ceil(span)))
    edges = window_edges(end, window, n_windows)
    idx = window_index(events["time"], end, window, n_windows)
    keep = idx >= 0
    counts = pd.crosstab(pd.Series(edges[idx[keep]], name="start"),
                         events["category"].to_numpy()[keep])
    counts.columns.name = None
    return counts.div(counts.sum(axis=1), axis=0).astype(np.float64)


def trajectory_parts(trajectories: pd.DataFrame, user: str
                     ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """A user's rows of ``trajectories.csv`` as (past shares indexed by window start,
    forecast shares indexed by horizon length, the model that forecast): both share-wide,
    zeros filled. The persistence baselines are left out: they are the past, repeated."""
    mine = trajectories[trajectories["user"].astype(str) == str(user)]
    observed = mine[mine["kind"] == "observed"]
    past = observed.pivot_table(index="start", columns="name", values="value",
                                aggfunc="sum", fill_value=0.0)
    past.index = pd.to_datetime(past.index, utc=True)
    forecast = mine[(mine["kind"] == "forecast") & ~mine["model"].isin(BASELINES)
                    & mine["horizon"].notna() & (mine["horizon"].astype(str) != "")]
    model = str(forecast["model"].iloc[0]) if len(forecast) else ""
    ahead = forecast.pivot_table(index="horizon", columns="name", values="value",
                                 aggfunc="sum", fill_value=0.0)
    ahead.index = pd.Index([parse_duration(str(h)) for h in ahead.index])
    for frame in (past, ahead):
        frame.columns.name = None
    return past.sort_index(), ahead.sort_index(), model


def recommendations_frame(explanations: Sequence[Explanation], categories: pd.Series | None,
                          after: set[str]) -> pd.DataFrame:
    """The table of a user's list: rank, item, category, score, the history items that
    contributed most (with their category), the method, and a hit mark for items the user
    interacted with after the cutoff."""
    rows = []
    for exp in explanations:
        because = ", ".join(
            f"{item} ({_category_of(item, categories)}) {weight:+.3g}"
            for item, weight in exp.contributions)
        rows.append({"rank": exp.rank, "item": exp.item,
                     "category": _category_of(exp.item, categories), "score": exp.score,
                     "because of": because or "(nothing in the history: "
                                              f"{exp.method})",
                     "method": exp.method, "hit": "✓ later" if exp.item in after else ""})
    return pd.DataFrame(rows, columns=["rank", "item", "category", "score", "because of",
                                       "method", "hit"])


def _category_of(item: str, categories: pd.Series | None) -> str:
    if categories is None:
        return UNCATEGORISED
    value = categories.get(str(item))
    return UNCATEGORISED if value is None or pd.isna(value) else str(value)


def colours_for(names: Sequence[str]) -> dict[str, QColor]:
    """A stable colour per category name (Okabe-Ito first, then evenly spread hues), the
    uncategorised grey, so a category keeps its colour across both plots."""
    out = {}
    named = [n for n in names if n != UNCATEGORISED]
    for i, name in enumerate(named):
        out[name] = QColor(COLOURS[i]) if i < len(COLOURS) - 1 else \
            pg.intColor(i - len(COLOURS) + 1, hues=max(1, len(named) - len(COLOURS) + 1))
    out[UNCATEGORISED] = QColor("#999999")
    return out


def _light_plots() -> None:
    """The app's plot look (as :class:`~penchant_gui.loss_plot.LossPlot`): pyqtgraph reads
    it when a plot is made, so it must be set before."""
    pg.setConfigOptions(antialias=True, background="w", foreground="#333")


def _legend(plot: pg.PlotWidget) -> pg.LegendItem:
    """A legend on a white card, readable over the filled areas it sits on."""
    return plot.addLegend(offset=(-10, 10), labelTextSize="8pt", labelTextColor="#333",
                          brush=pg.mkBrush(255, 255, 255, 220), pen=pg.mkPen("#ccc"))


def _seconds(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC times as epoch seconds, what pyqtgraph's date axis reads."""
    return pd.DatetimeIndex(times).as_unit("ns").asi8 / 1e9


# -- what is loaded off the GUI thread ----------------------------------------------------

@dataclass
class RunUsers:
    """A finished run read again: its model, every source event (user and item as
    strings), the cutoff, items' categories and, when written, its trajectories."""

    run_id: int
    trained: TrainedRun
    events: pd.DataFrame
    cutoff: pd.Timestamp
    categories: pd.Series | None
    category_column: str
    trajectories: pd.DataFrame | None

    @property
    def users(self) -> list[str]:
        return sorted(map(str, self.trained.users))


def load_run(store: RunStore, run_id: int, registry: Registry | None = None) -> RunUsers:
    """Everything the view needs of a run (slow: it reads the source again)."""
    trained = TrainedRun(run_id, store, registry)
    pipeline = run_data.stored_pipeline(store, run_id, registry)
    dataset = run_data.load_source(pipeline, registry)
    frame = dataset.events.frame
    events = pd.DataFrame({"user": frame["user"].astype(str).astype("string"),
                           "item": frame["item"].astype(str).astype("string"),
                           "time": frame["time"], "event": frame["event"].astype("string")})
    column = pipeline.evaluation.category
    categories = item_categories(dataset.items, column)
    events["category"] = categorise(events["item"], categories)
    path = store.artifacts(run_id).get("trajectories")
    trajectories = pd.read_csv(path, dtype={"user": str, "name": str, "horizon": str,
                                            "model": str}) \
        if path and Path(path).is_file() else None
    return RunUsers(run_id, trained, events, run_data.cutoff(store.run(run_id)), categories,
                    column, trajectories)


@dataclass
class UserDetail:
    """One user of a loaded run: their events (``after``: at or after the cutoff) and their
    explained list."""

    user: str
    events: pd.DataFrame
    explanations: list[Explanation]


def load_user(data: RunUsers, user: str, k: int = TOP_K) -> UserDetail:
    events = data.events[data.events["user"] == user].sort_values("time", kind="stable")
    events = events.assign(after=(events["time"] >= data.cutoff).to_numpy())
    return UserDetail(user, events.reset_index(drop=True),
                      data.trained.explain(user, k, TOP_CONTRIBUTIONS))


@dataclass
class LatentPaths:
    """A run's latent trajectories: the run's events (read once, reused for added users),
    the seeded sample of users, and the projected paths per set of users drawn (the
    sample, or the sample plus one shown user outside it)."""

    run_id: int
    has_latent: bool
    events: pd.DataFrame | None
    sample: list[str]
    frames: dict[str, pd.DataFrame]  # "" → the sample alone; user → sample plus user


def latent_sample(users: Sequence[str], n: int = LATENT_SAMPLE,
                  seed: int = LATENT_SEED) -> list[str]:
    """A seeded sample of ``users``, the same on every opening of the run."""
    users = sorted(map(str, users))
    if len(users) <= n:
        return users
    picked = np.random.default_rng(seed).choice(len(users), size=n, replace=False)
    return [users[i] for i in sorted(picked)]


def load_latent(data: RunUsers) -> LatentPaths:
    """The sample's latent paths (slow: reads the run's events again and folds each
    sampled user in at every window end)."""
    sample = latent_sample(data.users)
    if not latent.has_latent_space(data.trained):
        return LatentPaths(data.run_id, False, None, sample, {})
    events = latent.source_events(data.trained)
    frame = latent.latent_trajectories(data.trained, sample, LATENT_WINDOWS, WINDOW, events)
    return LatentPaths(data.run_id, True, events, sample, {"": frame})


def latent_with(data: RunUsers, paths: LatentPaths, user: str) -> pd.DataFrame:
    """The sample's paths with ``user``'s added, projected together."""
    return latent.latent_trajectories(data.trained, [*paths.sample, user], LATENT_WINDOWS,
                                      WINDOW, paths.events)


# -- widgets ------------------------------------------------------------------------------

class HitsModel(FrameModel):
    """A recommendations table whose hits (the user took the item after the cutoff) are
    tinted, with the full explanation as each row's tooltip."""

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if index.isValid() and role == Qt.ItemDataRole.BackgroundRole \
                and self.frame.iat[index.row(), self.frame.columns.get_loc("hit")]:
            return HIT_BACKGROUND
        if index.isValid() and role == Qt.ItemDataRole.ToolTipRole:
            return str(self.frame["because of"].iat[index.row()])
        return super().data(index, role)


class TimelinePlot(pg.PlotWidget):
    """A user's events over time, one row per category, the cutoff as a line; events after
    it hollow, so what the user did next stands apart from what the model saw."""

    def __init__(self, parent: Any = None) -> None:
        _light_plots()
        super().__init__(parent, axisItems={"bottom": pg.DateAxisItem()})
        self.setTitle("History (filled: before the cutoff, hollow: after)")
        self.showGrid(x=True, y=True, alpha=0.15)
        self.legend = _legend(self)
        self.points = 0
        self.points_after = 0

    def show_events(self, events: pd.DataFrame, cutoff: pd.Timestamp,
                    colours: dict[str, QColor]) -> None:
        self.clear()
        self.legend.clear()
        rows = sorted(events["category"].unique(), key=lambda c: (c == UNCATEGORISED, c))
        self.points = self.points_after = 0
        for row, name in enumerate(rows):
            mine = events[events["category"] == name]
            colour = colours[name]
            for after in (False, True):
                part = mine[mine["after"] == after]
                if len(part) == 0:
                    continue
                spot = pg.ScatterPlotItem(
                    x=_seconds(part["time"]), y=np.full(len(part), float(row)), size=8,
                    pen=pg.mkPen(colour, width=1.5),
                    brush=pg.mkBrush(255, 255, 255, 0) if after else pg.mkBrush(colour),
                    symbol="o", name=name if not after or len(part) == len(mine) else None)
                self.addItem(spot)
                if after:
                    self.points_after += len(part)
                else:
                    self.points += len(part)
        axis = self.getAxis("left")
        axis.setTicks([[(i, name) for i, name in enumerate(rows)]])
        # sized now: an axis that grows on its first paint draws that paint without labels
        metrics = QFontMetrics(axis.font() if hasattr(axis, "font") else self.font())
        axis.setWidth(max([metrics.horizontalAdvance(n) for n in rows] or [0]) + 16)
        # the legend goes in one line above the top row, clear of the points
        self.legend.setColumnCount(max(1, len(rows)))
        self.setYRange(-0.6, len(rows) + 0.4, padding=0)
        self.addItem(pg.InfiniteLine(
            _seconds(pd.Series([cutoff]))[0], angle=90,
            pen=pg.mkPen("#C0392B", width=1.5, style=Qt.PenStyle.DashLine),
            label="cutoff", labelOpts={"position": 0.04, "color": "#C0392B"}))


class TrajectoryPlot(pg.PlotWidget):
    """Category shares stacked over past windows and, when the run forecast them, over the
    horizons after the cutoff (shaded): where the user's interests were and are heading."""

    def __init__(self, parent: Any = None) -> None:
        _light_plots()
        super().__init__(parent, axisItems={"bottom": pg.DateAxisItem()})
        self.setTitle("Interest trajectory (category shares)")
        self.setLabel("left", "share")
        self.setYRange(0, 1, padding=0.02)
        self.legend = _legend(self)
        self.has_forecast = False

    def show_shares(self, past: pd.DataFrame, ahead: pd.DataFrame, cutoff: pd.Timestamp,
                    window: str, model: str, colours: dict[str, QColor]) -> None:
        """``past`` indexed by window start, ``ahead`` by horizon (timedelta)."""
        self.clear()
        self.legend.clear()
        self.has_forecast = len(ahead) > 0
        names = list(pd.concat([past, ahead]).fillna(0).sum().sort_values(ascending=False)
                     .index)
        half = parse_duration(window) / 2
        sections = [(_seconds(pd.DatetimeIndex(past.index) + half), past, 70)]
        if self.has_forecast:
            x = _seconds(pd.DatetimeIndex([cutoff, *(cutoff + h for h in ahead.index)]))
            forecast = pd.concat([ahead.iloc[[0]], ahead])
            sections.append((x, forecast, 35))
            end = float(x[-1])
            region = pg.LinearRegionItem((float(x[0]), end), movable=False,
                                         brush=pg.mkBrush(0, 0, 0, 18), pen=pg.mkPen(None))
            self.addItem(region)
            text = pg.TextItem(f"forecast · {model}", color="#555", anchor=(0, 0))
            text.setPos(float(x[0]), 0.98)
            self.addItem(text)
        for x, shares, alpha in sections:
            if len(shares) == 0:
                continue
            lower = np.zeros(len(shares))
            for name in names:
                upper = lower + shares.get(name, pd.Series(0.0, index=shares.index)
                                           ).to_numpy(dtype=np.float64)
                colour = colours.get(name, QColor("#999999"))
                below = pg.PlotDataItem(x, lower, pen=pg.mkPen(None))
                above = pg.PlotDataItem(x, upper, pen=pg.mkPen(colour, width=1),
                                        name=name if alpha == 70 or len(past) == 0 else None)
                fill = QColor(colour)
                fill.setAlpha(alpha * 3)
                self.addItem(below)
                self.addItem(above)
                self.addItem(pg.FillBetweenItem(below, above, brush=pg.mkBrush(fill)))
                lower = upper
        self.addItem(pg.InfiniteLine(
            _seconds(pd.Series([cutoff]))[0], angle=90,
            pen=pg.mkPen("#C0392B", width=1.5, style=Qt.PenStyle.DashLine)))
        # room above 1 for the legend, in up to four columns, so it hides no share
        columns = min(4, max(1, math.ceil(len(names) / 2)))
        self.legend.setColumnCount(columns)
        self.setYRange(0, 1 + 0.12 * math.ceil(len(names) / columns) + 0.05, padding=0)
        self.getAxis("left").setTicks([[(v, f"{v:.1f}") for v in np.linspace(0, 1, 6)]])


class LatentPlot(pg.PlotWidget):
    """Users' paths through the model's latent space, projected to the first two
    principal components: the sample thin and grey, the shown user thick and coloured,
    a marker where their path ends (at the cutoff)."""

    def __init__(self, parent: Any = None) -> None:
        _light_plots()
        super().__init__(parent)
        self.setTitle("Latent trajectories (PCA)")
        self.setLabel("bottom", "PC 1")
        self.setLabel("left", "PC 2")
        self.showGrid(x=True, y=True, alpha=0.15)
        self.paths = 0  # lines drawn, the highlighted one included
        self.highlighted: str | None = None

    def show_paths(self, frame: pd.DataFrame, user: str | None) -> None:
        self.clear()
        self.paths, self.highlighted = 0, None
        grey = pg.mkPen(QColor(150, 150, 150, 120), width=1)
        for name, path in frame.groupby("user", sort=True):
            if str(name) == user:
                continue
            self.addItem(pg.PlotDataItem(path["x"].to_numpy(float),
                                         path["y"].to_numpy(float), pen=grey))
            self.paths += 1
        mine = frame[frame["user"] == user] if user is not None else frame.iloc[:0]
        if len(mine):
            colour = QColor(COLOURS[0])
            x, y = mine["x"].to_numpy(float), mine["y"].to_numpy(float)
            self.addItem(pg.PlotDataItem(x, y, pen=pg.mkPen(colour, width=3), symbol="o",
                                         symbolSize=5, symbolBrush=colour,
                                         symbolPen=pg.mkPen(colour)))
            self.addItem(pg.ScatterPlotItem(x=x[-1:], y=y[-1:], size=14, symbol="star",
                                            brush=pg.mkBrush(colour), pen=pg.mkPen("#333")))
            # Left of the star: on the right the plot's edge would cut it.
            label = pg.TextItem(f"{user} at the cutoff", color="#333", anchor=(1, 1))
            label.setPos(float(x[-1]), float(y[-1]))
            self.addItem(label)
            self.paths += 1
            self.highlighted = user


class UsersView(QWidget):
    """Pick a finished run and one of its users: their timeline, interest trajectory and
    explained recommendations, with the hits among them.

    The main window calls :meth:`refresh` when a run ends and :meth:`show_run` to open a
    run here.
    """

    def __init__(self, store: RunStore, parent: Any = None,
                 registry: Registry | None = None) -> None:
        super().__init__(parent)
        self.store, self.registry = store, registry
        self.data: RunUsers | None = None
        self.latent: LatentPaths | None = None
        self._latent_asked: tuple[int, str] | None = None  # (run, user) being computed
        self.detail: UserDetail | None = None
        self._loading: int | None = None  # run being loaded; later results win
        self._asked = 0  # bumped per request, so a stale answer is dropped

        self.run_box = QComboBox()
        self.run_box.setMinimumWidth(320)
        self.run_box.currentIndexChanged.connect(self._run_picked)
        self.user_edit = QLineEdit()
        self.user_edit.setPlaceholderText("user id (type to search)")
        self.user_edit.setClearButtonEnabled(True)
        self.users_model = QStringListModel(self)
        self.completer = QCompleter(self.users_model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.activated.connect(self.show_user)
        self.user_edit.setCompleter(self.completer)
        self.user_edit.returnPressed.connect(lambda: self.show_user(self.user_edit.text()))
        self.show_button = QPushButton("Show")
        self.show_button.clicked.connect(lambda: self.show_user(self.user_edit.text()))
        self.status = QLabel()
        self.status.setStyleSheet("color: #666;")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Run"))
        bar.addWidget(self.run_box)
        bar.addSpacing(12)
        bar.addWidget(QLabel("User"))
        bar.addWidget(self.user_edit, 1)
        bar.addWidget(self.show_button)
        bar.addWidget(self.status, 2)

        self.timeline = TimelinePlot()
        self.trajectory = TrajectoryPlot()
        self.forecast_note = QLabel()
        self.forecast_note.setWordWrap(True)
        self.forecast_note.setStyleSheet("color: #666;")
        trajectory_box = QWidget()
        box = QVBoxLayout(trajectory_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.trajectory, 1)
        box.addWidget(self.forecast_note)
        self.latent_plot = LatentPlot()
        self.latent_pane = Placeheld(self.latent_plot)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.timeline)
        plots.addWidget(trajectory_box)
        plots.addWidget(self.latent_pane)
        plots.setSizes([500, 420, 380])
        self.recs_model = HitsModel()
        self.recs_table = frame_table(self.recs_model, stretch_last=False)
        self.recs_table.horizontalHeader().setStretchLastSection(False)
        self.hits_label = QLabel()
        self.hits_label.setTextFormat(Qt.TextFormat.RichText)
        recs = QWidget()
        recs_box = QVBoxLayout(recs)
        recs_box.setContentsMargins(0, 0, 0, 0)
        recs_box.addWidget(self.hits_label)
        recs_box.addWidget(self.recs_table)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(plots)
        split.addWidget(recs)
        split.setSizes([480, 340])
        self.user_pane = Placeheld(split)

        inner = QWidget()
        inner_box = QVBoxLayout(inner)
        inner_box.setContentsMargins(0, 0, 0, 0)
        inner_box.addLayout(bar)
        inner_box.addWidget(self.user_pane, 1)
        self.pane = Placeheld(inner)
        self.pane.message.setText(NO_RUNS)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pane)
        self.refresh()

    # -- runs -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """List the store's finished runs again, keeping the chosen one."""
        current = self.run_box.currentData()
        runs = self.store.runs(status="finished")
        self.run_box.blockSignals(True)
        self.run_box.clear()
        for record in runs:
            self.run_box.addItem(_run_label(record), record.id)
        self.run_box.blockSignals(False)
        if not runs:
            self.pane.show_message(NO_RUNS)
            self.data = None
            return
        self.pane.show_content()
        index = self.run_box.findData(current) if current is not None else -1
        self.run_box.setCurrentIndex(max(index, 0))
        if self.run_box.currentData() != (self.data.run_id if self.data else None):
            self._run_picked()

    def show_run(self, run_id: int) -> None:
        """Open ``run_id`` (a finished run) here."""
        if self.run_box.findData(run_id) < 0:
            self.refresh()
        index = self.run_box.findData(run_id)
        if index < 0:
            self.status.setText(f"Run {run_id} is not a finished run.")
            return
        self.run_box.setCurrentIndex(index)

    def _run_picked(self) -> None:
        run_id = self.run_box.currentData()
        if run_id is None or run_id == self._loading \
                or (self.data is not None and self.data.run_id == run_id):
            return
        self._loading, self._asked = run_id, self._asked + 1
        self.data, self.detail, self.latent = None, None, None
        self.users_model.setStringList([])
        self.user_pane.show_message(f"Loading run {run_id}: its model, and its events read "
                                    "again from its source…")
        asked = self._asked
        run_in_background(lambda: load_run(self.store, run_id, self.registry),
                          lambda data: self._run_loaded(asked, data),
                          lambda message: self._failed(asked, run_id, message), self)

    def _run_loaded(self, asked: int, data: RunUsers) -> None:
        if asked != self._asked:
            return
        self._loading, self.data = None, data
        self._load_latent(data)
        users = data.users
        self.users_model.setStringList(users)
        self.status.setText(f"{len(users)} users · cutoff {data.cutoff:%Y-%m-%d %H:%M} UTC")
        wanted = self.user_edit.text().strip()
        if wanted:
            self.show_user(wanted)
        else:
            self.user_pane.show_message(
                f"Run {data.run_id} trained on {len(users)} users. Type a user id above "
                f"(for example <code>{html.escape(users[0]) if users else ''}</code>) to see "
                "their history, interests and recommendations.")

    def _failed(self, asked: int, run_id: int, message: str) -> None:
        if asked != self._asked:
            return
        self._loading = None
        self.user_pane.show_message(f"<b>Run {run_id} cannot be shown.</b><br>"
                                    f"{html.escape(message)}")

    # -- one user -------------------------------------------------------------------------

    def show_user(self, user: str) -> None:
        """Show ``user`` of the chosen run (explained off the GUI thread)."""
        user = str(user).strip()
        if self.user_edit.text() != user:
            self.user_edit.setText(user)
        data = self.data
        if data is None or not user:
            return
        if user not in set(data.users):
            seen = (data.events["user"] == user).any()
            why = ("only has events after the cutoff, so the run never trained on them"
                   if seen else "is not in this run's data")
            self.user_pane.show_message(
                f"<b>Unknown user {html.escape(user)}</b>: this user {why}.<br>Pick one of "
                f"the run's {len(data.users)} users from the suggestions as you type.")
            return
        self._asked += 1
        asked = self._asked
        self.user_pane.show_message(f"Explaining the list of {html.escape(user)}…")
        run_in_background(lambda: load_user(data, user),
                          lambda detail: self._user_loaded(asked, data, detail),
                          lambda message: self._failed(asked, data.run_id, message), self)

    def _user_loaded(self, asked: int, data: RunUsers, detail: UserDetail) -> None:
        if asked != self._asked:
            return
        self.detail = detail
        events = detail.events
        past, ahead, model = self._shares(data, detail)
        names = sorted(set(events["category"]) | set(past.columns) | set(ahead.columns))
        colours = colours_for(names)
        self.timeline.show_events(events, data.cutoff, colours)
        self.trajectory.show_shares(past, ahead, data.cutoff, WINDOW, model, colours)
        if data.categories is None:
            self.forecast_note.setText(
                f"The run's source has no items side table with a "
                f"<code>{html.escape(data.category_column)}</code> column, so there are no "
                "categories to share interests between.")
        elif len(ahead):
            self.forecast_note.setText(f"Shaded: {model}'s forecast for each horizon after "
                                       "the cutoff (from the run's trajectories.csv).")
        else:
            self.forecast_note.setText(NO_FORECAST)
        after = set(events.loc[events["after"], "item"])
        frame = recommendations_frame(detail.explanations, data.categories, after)
        self.recs_model.set_frame(frame)
        self.recs_table.resizeColumnsToContents()
        because = list(frame.columns).index("because of")
        self.recs_table.horizontalHeader().setSectionResizeMode(
            because, QHeaderView.ResizeMode.Stretch)
        hits = int((frame["hit"] != "").sum())
        before = int((~events["after"]).sum())
        self.hits_label.setText(
            f"<b>{hits} of {len(frame)}</b> recommendations were hits: items "
            f"{html.escape(detail.user)} interacted with after the cutoff "
            f"({len(events) - before} events on {len(after)} items then; "
            f"{before} events before it).")
        self.user_pane.show_content()
        self._draw_latent()

    # -- latent trajectories --------------------------------------------------------------

    def _load_latent(self, data: RunUsers) -> None:
        self.latent_pane.show_message("Computing latent trajectories of a sample of "
                                      f"{LATENT_SAMPLE} users…")

        def done(paths: LatentPaths) -> None:
            if self.data is data:
                self.latent = paths
                self._draw_latent()

        def failed(message: str) -> None:
            if self.data is data:
                self.latent_pane.show_message("<b>Latent trajectories cannot be shown.</b>"
                                              f"<br>{html.escape(message)}")

        run_in_background(lambda: load_latent(data), done, failed, self)

    def _draw_latent(self) -> None:
        """Draw the sample, with the shown user highlighted (computing their path first
        when they are not in the sample)."""
        data, paths = self.data, self.latent
        if data is None or paths is None or paths.run_id != data.run_id:
            return
        if not paths.has_latent:
            self.latent_pane.show_message(NO_LATENT)
            return
        user = self.detail.user if self.detail is not None else None
        key = "" if user is None or user in paths.sample else user
        if key not in paths.frames:
            if self._latent_asked == (data.run_id, key):
                return
            self._latent_asked = (data.run_id, key)
            self.latent_pane.show_message(f"Adding the latent path of {html.escape(key)}…")

            def done(frame: pd.DataFrame) -> None:
                paths.frames[key] = frame
                if self._latent_asked == (data.run_id, key):
                    self._latent_asked = None
                self._draw_latent()

            run_in_background(lambda: latent_with(data, paths, key), done,
                              lambda message: self.latent_pane.show_message(
                                  html.escape(message)), self)
            return
        self.latent_plot.show_paths(paths.frames[key], user)
        self.latent_pane.show_content()

    @staticmethod
    def _shares(data: RunUsers, detail: UserDetail
                ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
        """The trajectory's past and forecast, from ``trajectories.csv`` when the run wrote
        one for this user, else past windows computed from the history."""
        if data.trajectories is not None:
            past, ahead, model = trajectory_parts(data.trajectories, detail.user)
            if len(past):
                return past, ahead, model
        before = detail.events[~detail.events["after"]]
        return window_shares(before, data.cutoff), pd.DataFrame(dtype=np.float64), ""


def _run_label(record: RunRecord) -> str:
    when = record.started_at.strftime("%Y-%m-%d %H:%M") if record.started_at else ""
    return f"#{record.id}  {record.name} · {record.model} · {when}"
