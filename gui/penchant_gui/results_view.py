"""The results view: how one finished run scored, horizon by horizon, against its baselines.

A run's ``metrics.json`` holds every ranking metric per model and horizon, and (with
``[evaluation] interests = true``) how well category-interest forecasts did against the
persistence baselines. This view shows both as tables and plots; it computes nothing, it
only reads what the runner wrote. The main window calls :meth:`ResultsView.refresh` when a
run ends and :meth:`ResultsView.show_run` to jump to one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from penchant.interests import PERSISTENCE, RECENCY
from penchant.params import parse_duration
from penchant.report import LIGHT, horizon_order, level_text, ratio_cell
from penchant.run_data import run_metrics
from penchant.store import RunRecord, RunStore
from penchant_gui.frame_model import FrameModel
from penchant_gui.loss_plot import COLOURS
from penchant_gui.runs_view import INTEREST_METRICS, metric_columns
from penchant_gui.widgets import Placeheld, frame_table, message_label

#: ``metrics[model][horizon][metric] = value``, as ``metrics.json`` keeps ``results``.
Metrics = Mapping[str, Mapping[str, Mapping[str, Any]]]

#: The metrics offered first in the plot's combo, when the run was evaluated at these k.
PREFERRED = ("ndcg@10", "ndcg@20", "recall@20")
#: Interest metrics as the interest table and plot name them.
INTEREST_LABELS = {"js": "JS divergence", "top3": "top-3 overlap"}
NO_RUNS = ("<h3>No finished runs yet</h3><p>A run's scores appear here once it finishes: "
           "start one from the pipeline builder, or from a terminal with<br>"
           "<code>penchant run pipeline.toml</code>.</p>")
NO_INTERESTS = ("<b>No interest forecasts in this run.</b><br>To score how well a model "
                "forecasts each shopper's category interests against persistence, set "
                "<code>[evaluation] interests = true</code> and <code>[model] plugin = "
                "\"evolution\"</code> (the model that forecasts interests), then run the "
                "pipeline again.")
NO_METRICS = "This run recorded no ranking metrics (its metrics.json is missing or empty)."


# -- reading what the run wrote ------------------------------------------------------------

def horizon_days(horizon: str) -> float:
    """``"30d"`` → 30.0: the plot's x axis, so horizons sit at their true distance."""
    return parse_duration(horizon).total_seconds() / 86400


def horizons_of(results: Metrics) -> list[str]:
    """Every horizon some model was scored at (light-user repeats aside), shortest first."""
    found = {h for by_h in results.values() for h in by_h if not h.endswith(LIGHT)}
    return sorted(found, key=horizon_order)


def ranking_metrics(results: Metrics) -> list[str]:
    """Metrics worth a column and a plot: :data:`PREFERRED` where the run has them, else
    NDCG and recall at the deepest k (as the runs view picks them)."""
    names: list[str] = []
    for _, metric in metric_columns([results]):
        if metric not in names and metric not in INTEREST_METRICS:
            names.append(metric)
    return sorted(names, key=lambda m: (m not in PREFERRED, PREFERRED.index(m)
                                        if m in PREFERRED else 0, m))


def _ordered_models(names: Sequence[str] | Mapping[str, Any], main: str) -> list[str]:
    return sorted(names, key=lambda n: (n != main, n))


def ranking_frame(results: Metrics, main: str,
                  versus: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per model and horizon (the run's own model first): users scored and each of
    :func:`ranking_metrics`; long rather than wide, so a metric reads down one column.
    With the run's ``versus`` (metrics.json), each baseline's row also says how the run's
    model compares with it: their ratio and its interval over resampled users."""
    metrics = ranking_metrics(results)
    ratios = (versus or {}).get("ratios") or {}
    compared = f"{main} ÷ it" if ratios else None
    rows = []
    for name in _ordered_models(results, main):
        for horizon in horizons_of(results):
            values = results[name].get(horizon, {})
            users = values.get("users")
            row = {"model": name,
                   "role": "this run's model" if name == main else "baseline",
                   "horizon": horizon,
                   "users": None if users is None else int(users),
                   **{m: _number(values.get(m)) for m in metrics}}
            if compared:
                cell = ratios.get(name, {}).get(horizon)
                row[compared] = ratio_cell(cell) if cell else ""
            rows.append(row)
    columns = ["model", "role", "horizon", "users", *metrics] + ([compared] if compared else [])
    frame = pd.DataFrame(rows, columns=columns)
    frame["users"] = frame["users"].astype("Int64")
    return frame


def versus_note(versus: Mapping[str, Any] | None, main: str) -> str:
    """What the ``main ÷ it`` column of :func:`ranking_frame` holds."""
    if not (versus or {}).get("ratios"):
        return ""
    return (f"{main} ÷ it: the ratio of their {versus['metric']}, with its "
            f"{level_text(versus['level'])} interval over resampled users")


def ranking_series(results: Metrics, metric: str) -> dict[str, tuple[list[float], list[float]]]:
    """``{model: (horizon days, values)}`` for one metric, skipping horizons without it."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for name, by_h in results.items():
        xs, ys = [], []
        for horizon in horizons_of(results):
            value = _number(by_h.get(horizon, {}).get(metric))
            if value is not None:
                xs.append(horizon_days(horizon))
                ys.append(value)
        if xs:
            series[name] = (xs, ys)
    return series


def interest_frame(interests: Metrics, main: str) -> pd.DataFrame:
    """One row per horizon and forecaster (the run's model, then persistence, then
    recency-weighted persistence): JS divergence (lower is better), top-3 overlap (higher
    is better), users scored, and the JS change against persistence, the baseline a
    forecaster has to beat."""
    order = [n for n in (main, PERSISTENCE, RECENCY) if n in interests]
    order += sorted(n for n in interests if n not in order)
    horizons = sorted({h for by_h in interests.values() for h in by_h}, key=horizon_order)
    rows = []
    for horizon in horizons:
        base = _number(interests.get(PERSISTENCE, {}).get(horizon, {}).get("js"))
        for name in order:
            values = interests[name].get(horizon)
            if values is None:
                continue
            js = _number(values.get("js"))
            change = None if js is None or not base or name == PERSISTENCE else \
                (js - base) / base
            users = values.get("users")
            rows.append({"horizon": horizon, "forecaster": name,
                         INTEREST_LABELS["js"]: js,
                         "JS vs persistence": change,
                         INTEREST_LABELS["top3"]: _number(values.get("top3")),
                         "users": None if users is None else int(users)})
    frame = pd.DataFrame(rows, columns=["horizon", "forecaster", INTEREST_LABELS["js"],
                                        "JS vs persistence", INTEREST_LABELS["top3"],
                                        "users"])
    frame["users"] = frame["users"].astype("Int64")
    return frame


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


# -- widgets -------------------------------------------------------------------------------

class PercentFrameModel(FrameModel):
    """A frame model that shows the change-against-persistence column as a signed percent
    (``-12.3%``): a fraction with four places reads as another divergence."""

    PERCENT = "JS vs persistence"

    def data(self, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.DisplayRole and index.isValid()
                and self.frame.columns[index.column()] == self.PERCENT):
            value = self.frame.iat[index.row(), index.column()]
            return "" if value is None or pd.isna(value) else f"{value:+.1%}"
        return super().data(index, role)


def _plot(title: str, bottom: str, left: str) -> pg.PlotWidget:
    pg.setConfigOptions(antialias=True, background="w", foreground="#333")
    plot = pg.PlotWidget(title=title)
    plot.setLabel("bottom", bottom)
    plot.setLabel("left", left)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.setMouseEnabled(x=False, y=False)
    return plot


class ResultsView(QWidget):
    """One finished run's ranking metrics by horizon (table and plot) and, when it scored
    them, its interest forecasts against persistence (table and bars)."""

    def __init__(self, store: RunStore, parent: Any = None) -> None:
        super().__init__(parent)
        self.store = store
        self.run_id: int | None = None
        self._records: dict[int, RunRecord] = {}
        self.results: dict[str, Any] = {}
        self.interests: dict[str, Any] = {}
        self.main_model = ""
        #: What the ranking plot draws: ``{model: (horizon days, values)}``.
        self.plotted: dict[str, tuple[list[float], list[float]]] = {}
        #: What the interest plot draws: ``{forecaster: (horizon positions, values)}``.
        self.interest_plotted: dict[str, tuple[list[float], list[float]]] = {}

        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(40)
        self.run_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.summary_label = QLabel()
        self.summary_label.setStyleSheet("color: #555;")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the run store again")

        # ranking: table beside a plot of one metric against horizon
        self.table_model = FrameModel()
        self.table = frame_table(self.table_model, sortable=False, stretch_last=False)
        self.metric_combo = QComboBox()
        self.metric_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.plot = _plot("Accuracy by horizon", "horizon (days)", "metric")
        # Right, below the top: accuracy rises with the horizon, so the upper left holds
        # the lines and the middle right is where the space is.
        self.legend = self.plot.addLegend(offset=(-10, 90))
        self.legend.setBrush(pg.mkBrush(255, 255, 255, 215))
        plot_box = QWidget()
        column = QVBoxLayout(plot_box)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Metric:"))
        row.addWidget(self.metric_combo)
        row.addStretch(1)
        row.addWidget(message_label_small("thick line: this run's model"))
        column.addLayout(row)
        column.addWidget(self.plot, 1)
        ranking = QSplitter(Qt.Orientation.Horizontal)
        ranking.addWidget(self.table)
        ranking.addWidget(plot_box)
        ranking.setSizes([700, 600])
        self.ranking_pane = Placeheld(ranking)
        ranking_group = _group("Ranking accuracy: this run's model against the baselines",
                               self.ranking_pane)

        # interests: a small table beside bars of JS divergence or top-3 overlap
        self.interest_model = PercentFrameModel()
        self.interest_table = frame_table(self.interest_model, stretch_last=False)
        self.interest_metric_combo = QComboBox()
        for key, label in INTEREST_LABELS.items():
            self.interest_metric_combo.addItem(label, key)
        self.interest_plot = _plot("", "horizon", "JS divergence")
        self.interest_legend = self.interest_plot.addLegend(offset=(-10, 10), colCount=3)
        self.interest_legend.setBrush(pg.mkBrush(255, 255, 255, 215))
        self.interest_note = QLabel()
        self.interest_note.setWordWrap(True)
        self.interest_note.setStyleSheet("color: #555;")
        bars_box = QWidget()
        column = QVBoxLayout(bars_box)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show:"))
        row.addWidget(self.interest_metric_combo)
        row.addStretch(1)
        column.addLayout(row)
        column.addWidget(self.interest_plot, 1)
        table_box = QWidget()
        column = QVBoxLayout(table_box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.interest_note)
        column.addWidget(self.interest_table, 1)
        interest = QSplitter(Qt.Orientation.Horizontal)
        interest.addWidget(table_box)
        interest.addWidget(bars_box)
        interest.setSizes([560, 740])
        self.interest_pane = Placeheld(interest)
        interest_group = _group("Interest forecasts: category shares against persistence",
                                self.interest_pane)

        sections = QSplitter(Qt.Orientation.Vertical)
        sections.addWidget(ranking_group)
        sections.addWidget(interest_group)
        sections.setStretchFactor(0, 3)
        sections.setStretchFactor(1, 2)
        self.placeholder = message_label(NO_RUNS)
        self.stack = QStackedWidget()
        self.stack.addWidget(sections)
        self.stack.addWidget(self.placeholder)
        self._sections = sections

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Run:"))
        bar.addWidget(self.run_combo)
        bar.addWidget(self.summary_label, 1)
        bar.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)

        self.run_combo.currentIndexChanged.connect(self._run_chosen)
        self.metric_combo.currentTextChanged.connect(self._draw_ranking)
        self.interest_metric_combo.currentIndexChanged.connect(self._draw_interests)
        self.refresh_button.clicked.connect(self.refresh)
        self.refresh()

    # -- public ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the finished runs, keeping the run shown when it is still there."""
        records = self.store.runs(status="finished")
        self._records = {r.id: r for r in records}
        keep = self.run_id if self.run_id in self._records else None
        blocked = self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for record in records:
            self.run_combo.addItem(f"{record.id}: {record.name} ({record.model})", record.id)
        self.run_combo.blockSignals(blocked)
        self.run_combo.setEnabled(bool(records))
        if not records:
            self.run_id = None
            self.summary_label.clear()
            self.stack.setCurrentWidget(self.placeholder)
            return
        self.stack.setCurrentWidget(self._sections)
        self.show_run(keep if keep is not None else records[0].id)

    def show_run(self, run_id: int) -> None:
        """Show run ``run_id`` (choosing it in the picker); a run that is not finished or not
        in the store is ignored, since it has no results to show."""
        if run_id not in self._records:
            self.refresh()  # a run that finished since the last refresh
            if run_id not in self._records:
                return
        index = self.run_combo.findData(run_id)
        blocked = self.run_combo.blockSignals(True)
        self.run_combo.setCurrentIndex(index)
        self.run_combo.blockSignals(blocked)
        self._load(run_id)

    # -- drawing ---------------------------------------------------------------------------

    def _run_chosen(self, index: int) -> None:
        run_id = self.run_combo.itemData(index)
        if run_id is not None:
            self._load(int(run_id))

    def _load(self, run_id: int) -> None:
        record = self._records[run_id]
        self.run_id = run_id
        metrics = run_metrics(self.store, run_id)
        self.main_model = str(metrics.get("model") or record.model)
        self.results = dict(metrics.get("results") or {})
        self.interests = dict(metrics.get("interests") or {})
        cutoff = str(metrics.get("cutoff", ""))[:16]
        self.summary_label.setText("; ".join(filter(None, [
            f"cutoff {cutoff}" if cutoff else "", versus_note(metrics.get("versus"),
                                                              self.main_model)])))

        self.table_model.set_frame(ranking_frame(self.results, self.main_model,
                                                 metrics.get("versus"))
                                   if self.results else pd.DataFrame())
        previous = self.metric_combo.currentText()
        names = ranking_metrics(self.results) if self.results else []
        blocked = self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        self.metric_combo.addItems(names)
        if previous in names:
            self.metric_combo.setCurrentText(previous)
        self.metric_combo.blockSignals(blocked)
        if self.results:
            self.ranking_pane.show_content()
        else:
            self.ranking_pane.show_message(NO_METRICS)
        self._draw_ranking()

        if self.interests:
            self.interest_model.set_frame(interest_frame(self.interests, self.main_model))
            self.interest_note.setText(self._interest_note())
            self.interest_pane.show_content()
            self._sections.setSizes([560, 380])
        else:
            self.interest_model.set_frame(pd.DataFrame())
            self.interest_pane.show_message(NO_INTERESTS)
            self._sections.setSizes([820, 120])  # a message needs a few lines, not half
        self._draw_interests()

    def _interest_note(self) -> str:
        if self.main_model in self.interests:
            return (f"JS divergence between forecast and actual category shares: lower is "
                    f"better; a negative change means {self.main_model} beats persistence. "
                    "Top-3 overlap: higher is better.")
        return (f"{self.main_model} does not forecast interests, so only the persistence "
                "baselines were scored; use <code>[model] plugin = \"evolution\"</code> to "
                "score a forecasting model against them.")

    def _draw_ranking(self, *_: Any) -> None:
        self.plot.clear()
        self.legend.clear()
        metric = self.metric_combo.currentText()
        self.plotted = ranking_series(self.results, metric) if metric else {}
        self.plot.setLabel("left", metric or "metric")
        for i, name in enumerate(_ordered_models(self.plotted, self.main_model)):
            xs, ys = self.plotted[name]
            colour = COLOURS[i % len(COLOURS)]
            own = name == self.main_model
            pen = pg.mkPen(colour, width=4 if own else 1.5,
                           style=Qt.PenStyle.SolidLine if own else Qt.PenStyle.DashLine)
            self.plot.plot(xs, ys, pen=pen, name=name + (" (this run)" if own else ""),
                           symbol="o", symbolSize=9 if own else 6, symbolBrush=colour,
                           symbolPen=None)
        days = sorted({x for xs, _ in self.plotted.values() for x in xs})
        self.plot.getAxis("bottom").setTicks([[(d, f"{d:g}") for d in days]] if days else None)
        if days:
            pad = max(1.0, (days[-1] - days[0]) * 0.05)
            self.plot.setXRange(days[0] - pad, days[-1] + pad, padding=0)
            self.plot.enableAutoRange(axis="y")

    def _draw_interests(self, *_: Any) -> None:
        self.interest_plot.clear()
        self.interest_legend.clear()
        self.interest_plotted = {}
        key = self.interest_metric_combo.currentData() or "js"
        label = INTEREST_LABELS[key]
        better = "lower is better" if key == "js" else "higher is better"
        self.interest_plot.setLabel("left", f"{label} ({better})")
        if not self.interests:
            return
        frame = interest_frame(self.interests, self.main_model)
        horizons = list(dict.fromkeys(frame["horizon"]))
        forecasters = list(dict.fromkeys(frame["forecaster"]))
        width = 0.8 / max(1, len(forecasters))
        for i, name in enumerate(forecasters):
            rows = frame[frame["forecaster"] == name]
            xs = [horizons.index(h) - 0.4 + width * (i + 0.5) for h in rows["horizon"]]
            ys = [float(v) if pd.notna(v) else 0.0 for v in rows[label]]
            self.interest_plotted[name] = (xs, ys)
            colour = COLOURS[i % len(COLOURS)]
            bars = pg.BarGraphItem(x=xs, height=ys, width=width * 0.9, brush=colour,
                                   pen=pg.mkPen("#333" if name == self.main_model else colour,
                                                width=2 if name == self.main_model else 1),
                                   name=name)
            self.interest_plot.addItem(bars)
        self.interest_plot.getAxis("bottom").setTicks([list(enumerate(horizons))])
        self.interest_plot.setXRange(-0.6, len(horizons) - 0.4, padding=0)
        top = max((max(ys) for _, ys in self.interest_plotted.values() if ys), default=1.0)
        self.interest_plot.setYRange(0, top * 1.45 or 1.0, padding=0)  # room for the legend


def _group(title: str, content: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 6, 6, 6)
    layout.addWidget(content)
    return box


def message_label_small(text: str) -> QLabel:
    """A grey hint beside a control, smaller than a pane's placeholder."""
    label = QLabel(text)
    label.setStyleSheet("color: #666;")
    return label
