"""The plugins view: what is installed, what each component accepts, and what failed.

Like ``penchant plugins list``, it reads only the :class:`~penchant.plugins.Registry`: every
component with the distribution it comes from, the selected component's parameters (the
same :class:`~penchant.params.Param` schema that validates pipeline files), and the plugins
the host refused, each with its error, so a broken install is diagnosed without a terminal.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

import pandas as pd
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from penchant.params import Param
from penchant.plugins import ComponentInfo, Registry
from penchant_gui.frame_model import FrameModel
from penchant_gui.widgets import Placeheld, RawSortProxy, frame_table

_Index = QModelIndex | QPersistentModelIndex
ALL_KINDS = "all kinds"
COMPONENT_COLUMNS = ["kind", "name", "version", "package", "description"]
PARAM_COLUMNS = ["name", "type", "default", "allowed", "help"]


def components_frame(components: Iterable[ComponentInfo]) -> pd.DataFrame:
    """One row per component; the description's first line (the rest is in the details)."""
    rows = [{"kind": c.kind, "name": c.name, "version": c.version, "package": c.package,
             "description": (c.cls.description or "").strip().splitlines()[0]
             if (c.cls.description or "").strip() else ""}
            for c in components]
    return pd.DataFrame(rows, columns=COMPONENT_COLUMNS)


def origin(package: str, version: str) -> str:
    """``"penchant 0.1.0"``; a plugin handed in directly has no distribution or version."""
    package = package.strip("()")  # "(registered directly)" reads badly in parentheses
    return f"{package} {version}".strip() if version and version != "?" else package


def param_type(param: Param) -> str:
    return param.type if param.items is None else f"{param.type} of {param.items}"


def param_default(param: Param) -> str:
    """The default as it would be written in a pipeline file (TOML and JSON agree on these
    simple values); ``required`` where there is none to fall back on."""
    if param.required:
        return "required"
    if param.default is None:
        return ""
    return json.dumps(param.default, default=str, ensure_ascii=False)


def param_allowed(param: Param) -> str:
    """Choices, or the range (``"≥ 1"``, ``"0 – 1"``), or the keys of a table."""
    if param.choices is not None:
        return "one of " + ", ".join(json.dumps(c, default=str) for c in param.choices)
    if param.min is not None and param.max is not None:
        return f"{_number(param.min)} – {_number(param.max)}"
    if param.min is not None:
        return f"≥ {_number(param.min)}"
    if param.max is not None:
        return f"≤ {_number(param.max)}"
    if param.keys is not None:
        return "keys " + ", ".join(param.keys)
    return ""


def _number(value: float) -> str:
    return f"{value:g}"


def params_frame(params: Iterable[Param]) -> pd.DataFrame:
    """A component's parameters as text cells: a number formatted as a float would turn a
    default of 1e-5 into 0.0000."""
    rows = [{"name": p.name, "type": param_type(p), "default": param_default(p),
             "allowed": param_allowed(p),
             "help": ("secret: give as ${env:NAME}. " if p.secret else "") + p.help}
            for p in params]
    return pd.DataFrame(rows, columns=PARAM_COLUMNS)


def problems_html(registry: Registry) -> str:
    """The plugins the host refused, each with its error; those left out on purpose; or
    a line saying that everything loaded."""
    parts = []
    if registry.failures:
        count = len(registry.failures)
        parts.append(f"<p style='color: #C0392B'><b>{count} plugin problem"
                     f"{'s' if count > 1 else ''}</b>: the host skipped what is listed and "
                     "works with everything else.</p><ul>")
        parts += [f"<li><b>{html.escape(f.plugin)}</b>: "
                  f"<span style='font-family: monospace'>{html.escape(f.error)}</span></li>"
                  for f in registry.failures]
        parts.append("</ul>")
    else:
        parts.append("<p style='color: #1E7B34'><b>✓ No plugin failed to load.</b></p>")
    if registry.skipped:
        parts.append("<p><b>Left out by PENCHANT_PLUGINS</b>: "
                     + html.escape(", ".join(registry.skipped)) + "</p>")
    loaded = [f"{p['plugin']} ({origin(p['package'], p['version'])})"
              for p in registry.plugins()]
    if loaded:
        parts.append("<p style='color: #666'>Loaded plugins: "
                     + html.escape(", ".join(loaded)) + "</p>")
    return "".join(parts)


class ComponentsFilter(RawSortProxy):
    """Keeps the rows of the chosen kind whose kind, name, package or
    description contain every word typed."""

    TEXT_COLUMNS = ("kind", "name", "package", "description")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self._kind = ALL_KINDS

    def set_text(self, text: str) -> None:
        self.change_rows_filter(lambda: setattr(self, "_words", text.lower().split()))

    def set_kind(self, kind: str) -> None:
        self.change_rows_filter(lambda: setattr(self, "_kind", kind))

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:
        frame = self.sourceModel().frame
        if self._kind != ALL_KINDS and frame.at[row, "kind"] != self._kind:
            return False
        text = " ".join(str(frame.at[row, c]) for c in self.TEXT_COLUMNS).lower()
        return all(word in text for word in self._words)


class ComponentDetails(QWidget):
    """The selected component: who it is, where it comes from, and its parameters."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.params_model = FrameModel()
        self.params_table = frame_table(self.params_model)
        self.params_table.setWordWrap(True)
        self.params_pane = Placeheld(self.params_table)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.params_pane, 1)

    def show_component(self, info: ComponentInfo) -> None:
        cls = info.cls
        self.title.setText(
            f"<span style='font-size: 13pt'><b>{html.escape(info.kind)} "
            f"{html.escape(info.name)}</b></span> &nbsp; from "
            f"<b>{html.escape(origin(info.package, info.version))}</b> "
            f"(plugin {html.escape(info.plugin)})<br>"
            f"{html.escape(cls.description or '')}")
        schema = cls.schema()
        self.params_model.set_frame(params_frame(schema))
        self.params_table.resizeRowsToContents()  # long help wraps instead of being cut
        if schema:
            self.params_pane.show_content()
        else:
            self.params_pane.show_message(f"{info.name} takes no parameters.")


class PluginsView(QWidget):
    """Every installed component, sortable and filterable, the selected one's parameters,
    and below them the plugins that failed to load."""

    def __init__(self, registry: Registry, parent: Any = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self._infos: dict[tuple[str, str], ComponentInfo] = {}

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by kind, name, package or description…")
        self.filter_edit.setClearButtonEnabled(True)
        self.kind_combo = QComboBox()
        self.count_label = QLabel()
        self.count_label.setStyleSheet("color: #666;")

        self.model = FrameModel()
        self.proxy = ComponentsFilter(self)
        self.table = frame_table(self.model, proxy=self.proxy)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # registry order: by kind
        self.table.setSelectionMode(self.table.SelectionMode.SingleSelection)

        self.details = ComponentDetails()
        self.details_pane = Placeheld(self.details)
        self.problems = QTextBrowser()
        self.problems.setOpenExternalLinks(False)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details_pane)
        splitter.addWidget(self._titled_problems())
        for index, stretch in enumerate((1, 1, 0)):  # extra height goes to the tables
            splitter.setStretchFactor(index, stretch)
        self.splitter = splitter

        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 2)
        bar.addWidget(QLabel("Kind:"))
        bar.addWidget(self.kind_combo)
        bar.addWidget(self.count_label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)

        self.filter_edit.textChanged.connect(self._filter_changed)
        self.kind_combo.currentTextChanged.connect(self._kind_changed)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.refresh()

    def _titled_problems(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Plugin problems</b>"))
        layout.addWidget(self.problems, 1)
        return box

    def refresh(self, registry: Registry | None = None) -> None:
        """Show ``registry`` (after plugins were installed or removed), or show the current
        one again; the selected component stays selected where it still exists."""
        if registry is not None:
            self.registry = registry
        selected = self.selected()
        infos = self.registry.all()
        self._infos = {(i.kind, i.name): i for i in infos}
        kind = self.kind_combo.currentText() or ALL_KINDS
        blocked = self.kind_combo.blockSignals(True)
        self.kind_combo.clear()
        self.kind_combo.addItems([ALL_KINDS, *self.registry.components])
        self.kind_combo.setCurrentText(kind)
        self.kind_combo.blockSignals(blocked)
        self.proxy.set_kind(self.kind_combo.currentText())
        self.model.set_frame(components_frame(infos))
        self.problems.setHtml(problems_html(self.registry))
        total = sum(self.splitter.sizes()) or 770
        low = 150 if self.registry.failures else 80  # room for errors, a line otherwise
        self.splitter.setSizes([(total - low) // 2, total - low - (total - low) // 2, low])
        self._update_count()
        if selected is not None and (selected.kind, selected.name) in self._infos:
            self.select(selected.kind, selected.name)
        else:
            self._selection_changed()

    def selected(self) -> ComponentInfo | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        frame = self.model.frame
        row = self.proxy.mapToSource(rows[0]).row()
        return self._infos.get((frame.at[row, "kind"], frame.at[row, "name"]))

    def select(self, kind: str, name: str) -> bool:
        """Select a component as a click would; False when it is not shown."""
        frame = self.model.frame
        for row in range(self.proxy.rowCount()):
            source = self.proxy.mapToSource(self.proxy.index(row, 0)).row()
            if frame.at[source, "kind"] == kind and frame.at[source, "name"] == name:
                self.table.selectRow(row)
                self.table.scrollTo(self.proxy.index(row, 0))
                return True
        return False

    def _selection_changed(self, *_: Any) -> None:
        info = self.selected()
        if info is None:
            self.details_pane.show_message("Select a component to see its parameters: the "
                                           "keys its table in a pipeline file accepts.")
        else:
            self.details.show_component(info)
            self.details_pane.show_content()

    def _filter_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _kind_changed(self, kind: str) -> None:
        self.proxy.set_kind(kind)
        self._update_count()

    def _update_count(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        self.count_label.setText(f"{total} components" if shown == total
                                 else f"{shown} of {total} components shown")
