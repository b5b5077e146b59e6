"""Small widgets every view uses: sortable read-only tables over frames, and panes that
say why they are empty instead of showing a blank."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QPlainTextEdit,
    QStackedWidget,
    QTableView,
    QWidget,
)

from penchant_gui.frame_model import FrameModel

_Index = QModelIndex | QPersistentModelIndex


class RawSortProxy(QSortFilterProxyModel):
    """Sorts by raw values (``Qt.UserRole``: numbers as numbers), blank cells last in either
    order: a run without a metric is never the best one."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def change_rows_filter(self, apply: Callable[[], None]) -> None:
        """Change what the row filter keeps (``apply``) and refilter, the Qt 6.10+ way where
        there is one (``invalidateRowsFilter`` is deprecated there)."""
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            apply()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            apply()
            self.invalidateRowsFilter()

    def lessThan(self, left: _Index, right: _Index) -> bool:
        left_blank = left.data(self.sortRole()) is None
        right_blank = right.data(self.sortRole()) is None
        if left_blank or right_blank:
            descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
            return (left_blank and not right_blank) if descending else \
                (right_blank and not left_blank)
        return super().lessThan(left, right)


def frame_table(model: FrameModel, sortable: bool = False, stretch_last: bool = True,
                proxy: QSortFilterProxyModel | None = None) -> QTableView:
    """A read-only table over a frame model, rows selected whole, columns fit to contents;
    the last column takes the spare width unless it holds numbers, which would then sit
    far from their header. Sortable through ``proxy`` (a filter) or a :class:`RawSortProxy`."""
    view = QTableView()
    if sortable or proxy is not None:
        proxy = proxy or RawSortProxy(view)
        proxy.setSourceModel(model)
        view.setModel(proxy)
        view.setSortingEnabled(True)
        view.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # a header starts out descending
    else:
        view.setModel(model)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setAlternatingRowColors(True)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(24)
    view.horizontalHeader().setStretchLastSection(stretch_last)
    view.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft
                                                | Qt.AlignmentFlag.AlignVCenter)
    model.modelReset.connect(view.resizeColumnsToContents)
    return view


def message_label(text: str) -> QLabel:
    """Grey centred text standing in for a pane that has nothing to show."""
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.AutoText)
    label.setStyleSheet("color: #666; padding: 16px;")
    return label


class Placeheld(QStackedWidget):
    """A pane that shows its content, or a message saying why there is none, so that no
    pane is ever an unexplained blank."""

    def __init__(self, content: QWidget, parent: Any = None) -> None:
        super().__init__(parent)
        self.content = content
        self.message = message_label("")
        self.addWidget(content)
        self.addWidget(self.message)

    def show_content(self) -> None:
        self.setCurrentWidget(self.content)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.setCurrentWidget(self.message)

    @property
    def showing_content(self) -> bool:
        return self.currentWidget() is self.content


def text_view() -> QPlainTextEdit:
    view = QPlainTextEdit()
    view.setReadOnly(True)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    return view
