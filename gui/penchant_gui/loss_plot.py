"""Loss curves: one pyqtgraph line per loss term, shared by the training and runs views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

#: Colour-blind-safe line colours (Okabe-Ito), cycled by term.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000")


class LossPlot(QWidget):
    """A titled plot of named series against epochs, with a legend.

    ``add_point`` appends live (from observer signals); ``set_series`` redraws from stored
    curves. Validation metrics (``val_`` in the name) are dashed.
    """

    def __init__(self, title: str, y_label: str = "value", parent: Any = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, background="w", foreground="#333")
        self.plot = pg.PlotWidget(title=title)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", y_label)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self._lines: dict[str, pg.PlotDataItem] = {}

    def clear(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.series.clear()
        self._lines.clear()

    def add_point(self, name: str, x: float, y: float) -> None:
        xs, ys = self.series.setdefault(name, ([], []))
        xs.append(float(x))
        ys.append(float(y))
        self._line(name).setData(xs, ys)

    def set_series(self, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> None:
        self.clear()
        for name, (xs, ys) in curves.items():
            self.series[name] = (list(map(float, xs)), list(map(float, ys)))
            self._line(name).setData(*self.series[name])

    def points(self, name: str) -> int:
        return len(self.series.get(name, ([], []))[0])

    def _line(self, name: str) -> pg.PlotDataItem:
        if name not in self._lines:
            colour = COLOURS[len(self._lines) % len(COLOURS)]
            style = pg.QtCore.Qt.PenStyle.DashLine if "val_" in name else \
                pg.QtCore.Qt.PenStyle.SolidLine
            self._lines[name] = self.plot.plot(
                [], [], name=name, pen=pg.mkPen(colour, width=2, style=style),
                symbol="o", symbolSize=5, symbolBrush=colour, symbolPen=None)
        return self._lines[name]
