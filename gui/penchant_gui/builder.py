"""The pipeline builder: a palette of installed components, the pipeline's stages in run
order, and a form for the selected one.

Components are added by selecting one in the palette and pressing Add (or double-clicking
it, or dragging it onto the stages), removed, reordered within a stage (buttons or drag),
and swapped for another of the same kind from the form's component list. Every edit goes
to the :class:`~penchant_gui.document.PipelineDocument`; the whole pipeline is checked by
the host a moment after each edit and each problem is shown on the field it concerns.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QMimeData, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from penchant.pipeline import EVALUATION_PARAMS, PIPELINE_PARAMS
from penchant.plugins import Registry
from penchant_gui.document import KIND_OF, MANY, SLOTS, PipelineDocument, Slot, problems_by_field
from penchant_gui.param_form import ParamForm

STAGE_OF_KIND = {kind: stage for stage, kind in KIND_OF.items()}
TITLES = {"pipeline": "Pipeline settings", "source": "Source", "preprocess": "Preprocess",
          "features": "Features", "model": "Model", "recommender": "Recommender",
          "evaluation": "Evaluation"}
KIND_TITLES = {"source": "Sources", "preprocessor": "Preprocessors",
               "features": "Feature extractors", "model": "Models",
               "recommender": "Recommenders"}
_MIME = "application/x-penchant-component"
_SETTINGS = {"pipeline": (PIPELINE_PARAMS, "Name and seed of the pipeline."),
             "evaluation": (EVALUATION_PARAMS, "How the run is split by time and scored: "
                                               "cutoff, horizons, k and baselines.")}
_PROBLEM = QColor("#b00020")


class Palette(QTreeWidget):
    """Installed components grouped by kind; a drag carries ``kind:name``."""

    def __init__(self, registry: Registry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Components"])
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.fill(registry)

    def fill(self, registry: Registry) -> None:
        self.clear()
        for kind, title in KIND_TITLES.items():
            group = QTreeWidgetItem(self, [title])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for name in registry.names(kind):
                cls = registry.get(kind, name)
                item = QTreeWidgetItem(group, [name])
                item.setToolTip(0, cls.description)
                item.setData(0, Qt.ItemDataRole.UserRole, (kind, name))
            group.setExpanded(True)

    def chosen(self) -> tuple[str, str] | None:
        item = self.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item else None

    def item_for(self, name: str, kind: str) -> QTreeWidgetItem | None:
        for group in range(self.topLevelItemCount()):
            top = self.topLevelItem(group)
            for i in range(top.childCount()):
                if top.child(i).data(0, Qt.ItemDataRole.UserRole) == (kind, name):
                    return top.child(i)
        return None

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        chosen = items[0].data(0, Qt.ItemDataRole.UserRole) if items else None
        if chosen:
            data.setData(_MIME, f"{chosen[0]}:{chosen[1]}".encode())
        return data


class StageTree(QTreeWidget):
    """The pipeline's tables in run order; accepts components dropped from the palette and
    reorders a list stage's components by drag."""

    dropped = Signal(str, str)        # kind, name
    reordered = Signal(object, int)   # slot, delta

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Pipeline"])
        self.setAcceptDrops(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)

    def dragEnterEvent(self, event: Any) -> None:
        event.accept()

    def dragMoveEvent(self, event: Any) -> None:
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        data = event.mimeData()
        if data.hasFormat(_MIME):
            kind, name = bytes(data.data(_MIME)).decode().split(":", 1)
            self.dropped.emit(kind, name)
            event.acceptProposedAction()
            return
        moving = self.currentItem()
        target = self.itemAt(event.position().toPoint())
        event.ignore()  # the tree is redrawn from the document, never moved by Qt
        if moving is None or target is None:
            return
        source, goal = (moving.data(0, Qt.ItemDataRole.UserRole),
                        target.data(0, Qt.ItemDataRole.UserRole))
        if isinstance(source, Slot) and isinstance(goal, Slot) \
                and source.table == goal.table and source.table in MANY:
            self.reordered.emit(source, goal.index - source.index)


class PipelineBuilder(QWidget):
    """Palette, stages and form over one document; ``validated`` carries the problems."""

    validated = Signal(list)

    def __init__(self, registry: Registry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.document = PipelineDocument()
        self.selected: Slot | None = None
        self.form: ParamForm | None = None
        self.problems: list[str] = []

        self.palette = Palette(registry)
        self.palette.itemDoubleClicked.connect(lambda *_: self.add_chosen())
        self.stages = StageTree()
        self.stages.currentItemChanged.connect(self._on_select)
        self.stages.dropped.connect(self.add_component)
        self.stages.reordered.connect(self._move)

        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("add the component chosen in the palette to its stage")
        self.add_button.clicked.connect(self.add_chosen)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button = QPushButton("Move up")
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button = QPushButton("Move down")
        self.down_button.clicked.connect(lambda: self.move_selected(+1))

        self.plugin_choice = QComboBox()
        self.plugin_choice.activated.connect(self._pick_plugin)
        self.form_area = QScrollArea()
        self.form_area.setWidgetResizable(True)
        self.problem_list = QListWidget()
        self.problem_list.setMaximumHeight(72)
        self.problem_list.itemActivated.connect(self._go_to_problem)

        self._checker = QTimer(self)
        self._checker.setSingleShot(True)
        self._checker.setInterval(250)
        self._checker.timeout.connect(self.revalidate)
        self._layout()
        self.set_document(self.document)

    def _layout(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.up_button,
                       self.down_button):
            buttons.addWidget(button)
        middle = QWidget()
        column = QVBoxLayout(middle)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.stages)
        column.addLayout(buttons)
        right = QWidget()
        form_column = QVBoxLayout(right)
        form_column.setContentsMargins(0, 0, 0, 0)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Component:"))
        pick.addWidget(self.plugin_choice, 1)
        form_column.addLayout(pick)
        form_column.addWidget(self.form_area, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        for part in (self.palette, middle, right):
            split.addWidget(part)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 5)
        split.setSizes([220, 300, 520])
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(QLabel("Problems"))
        layout.addWidget(self.problem_list)

    # -- the document --------------------------------------------------------------------

    def set_document(self, document: PipelineDocument) -> None:
        self.document = document
        document.changed.connect(self._checker.start)
        self.selected = None
        self.redraw()
        self.revalidate()
        first = self._item_for(Slot("source"))
        if first is not None:
            self.stages.setCurrentItem(first)

    def redraw(self) -> None:
        """Rebuild the stage tree from the document, keeping the selection."""
        keep = self.selected
        self.stages.blockSignals(True)
        self.stages.clear()
        for table, kind, _many in SLOTS:
            top = QTreeWidgetItem(self.stages, [TITLES[table]])
            top.setData(0, Qt.ItemDataRole.UserRole, Slot(table) if kind is None else table)
            if kind is None:
                continue
            for i, spec in enumerate(self.document.tables(table)):
                child = QTreeWidgetItem(top, [str(spec.get("plugin", "?"))])
                child.setData(0, Qt.ItemDataRole.UserRole, Slot(table, i))
                child.setFlags(child.flags() | Qt.ItemFlag.ItemIsDragEnabled)
            top.setExpanded(True)
        self.stages.blockSignals(False)
        item = self._item_for(keep) if keep else None
        if item is not None:
            self.stages.setCurrentItem(item)
        else:
            self._show_form(None)
        self._mark_problems()

    def _item_for(self, slot: Slot) -> QTreeWidgetItem | None:
        for i in range(self.stages.topLevelItemCount()):
            top = self.stages.topLevelItem(i)
            if top.data(0, Qt.ItemDataRole.UserRole) == slot:
                return top
            for j in range(top.childCount()):
                if top.child(j).data(0, Qt.ItemDataRole.UserRole) == slot:
                    return top.child(j)
        return None

    def select(self, slot: Slot) -> None:
        item = self._item_for(slot)
        if item is not None:
            self.stages.setCurrentItem(item)

    # -- editing -------------------------------------------------------------------------

    def add_chosen(self) -> None:
        chosen = self.palette.chosen()
        if chosen:
            self.add_component(*chosen)

    def choose(self, name: str, kind: str | None = None) -> None:
        """Select ``name`` in the palette (what a click does)."""
        kinds = [kind] if kind else list(KIND_TITLES)
        for k in kinds:
            item = self.palette.item_for(name, k)
            if item is not None:
                self.palette.setCurrentItem(item)
                return
        raise KeyError(name)

    def add_component(self, kind: str, name: str) -> None:
        slot = self.document.add(STAGE_OF_KIND[kind], name)
        self.selected = slot
        self.redraw()

    def remove_selected(self) -> None:
        if self.selected is None or self.selected.table in _SETTINGS:
            return
        self.document.remove(self.selected)
        self.selected = None
        self.redraw()

    def move_selected(self, delta: int) -> None:
        if self.selected is not None:
            self._move(self.selected, delta)

    def _move(self, slot: Slot, delta: int) -> None:
        self.selected = self.document.move(slot, delta)
        self.redraw()

    def _pick_plugin(self, index: int) -> None:
        slot = self.selected
        if slot is None or slot.table in _SETTINGS:
            return
        name = self.plugin_choice.itemText(index)
        if name and name != self.document.plugin(slot):
            self.document.set_plugin(slot, name, self.registry)
            self.redraw()

    # -- selection and form --------------------------------------------------------------

    def _on_select(self, current: QTreeWidgetItem | None, _previous: Any) -> None:
        data = current.data(0, Qt.ItemDataRole.UserRole) if current else None
        self.selected = data if isinstance(data, Slot) else None
        self._show_form(self.selected)
        self._update_buttons()
        if isinstance(data, str):  # a stage heading: the palette shows its kind
            group = list(KIND_TITLES).index(KIND_OF[data])
            self.palette.setCurrentItem(self.palette.topLevelItem(group))

    def _update_buttons(self) -> None:
        slot = self.selected
        component = slot is not None and slot.table not in _SETTINGS
        self.remove_button.setEnabled(component)
        listed = component and slot.table in MANY
        self.up_button.setEnabled(listed and slot.index > 0)
        self.down_button.setEnabled(listed and slot.index < len(
            self.document.tables(slot.table)) - 1)

    def _show_form(self, slot: Slot | None) -> None:
        self.plugin_choice.clear()
        if slot is None:
            self.form = None
            hint = QLabel("Select a stage's component to edit it, or add one from the "
                          "palette (select it and press Add, double-click it, or drag it "
                          "onto the pipeline).")
            hint.setWordWrap(True)
            hint.setAlignment(Qt.AlignmentFlag.AlignTop)
            self.form_area.setWidget(hint)
            self.plugin_choice.setEnabled(False)
            return
        if slot.table in _SETTINGS:
            params, description = _SETTINGS[slot.table]
            title = TITLES[slot.table]
            self.plugin_choice.setEnabled(False)
        else:
            kind, plugin = KIND_OF[slot.table], self.document.plugin(slot)
            names = self.registry.names(kind)
            self.plugin_choice.addItems(names)
            self.plugin_choice.setEnabled(True)
            if plugin in names:
                self.plugin_choice.setCurrentIndex(names.index(plugin))
            try:
                cls = self.registry.get(kind, plugin)
            except Exception:  # an unknown plugin: the problems list says so
                self.form = None
                self.form_area.setWidget(QLabel(f"No installed {kind} is called "
                                                f"{plugin!r}: pick one above."))
                return
            params, description, title = cls.schema(), cls.description, \
                f"{TITLES[slot.table]}: {plugin}"
        self.form = ParamForm(title, description, params,
                              get=lambda key: self.document.value(slot, key),
                              put=lambda key, value: self.document.set_value(slot, key, value))
        self.form_area.setWidget(self.form)
        self._mark_problems()

    # -- checking ------------------------------------------------------------------------

    def revalidate(self) -> None:
        """Ask the host whether the pipeline would run; show each problem where it is."""
        self.problems = self.document.problems(self.registry)
        self.problem_list.clear()
        for line in self.problems:
            self.problem_list.addItem(line)
        if not self.problems:
            self.problem_list.addItem("No problems: the pipeline is ready to run.")
        self._mark_problems()
        self.validated.emit(self.problems)

    def _mark_problems(self) -> None:
        found = problems_by_field(self.problems)
        labels = {label for label, _ in found}
        for i in range(self.stages.topLevelItemCount()):
            top = self.stages.topLevelItem(i)
            items = [top] + [top.child(j) for j in range(top.childCount())]
            for item in items:
                data = item.data(0, Qt.ItemDataRole.UserRole)
                label = data.label if isinstance(data, Slot) else data
                bad = label in labels
                item.setForeground(0, QBrush(_PROBLEM) if bad else QBrush())
                item.setToolTip(0, "\n".join(m for (lab, _), ms in found.items()
                                             if lab == label for m in ms))
        if self.form is not None and self.selected is not None:
            mine = {key: messages for (label, key), messages in found.items()
                    if label == self.selected.label}
            self.form.show_problems(mine)

    def _go_to_problem(self, item: Any) -> None:
        found = problems_by_field([item.text()])
        for label, _key in found:
            table, _, index = label.partition("[")
            if table in TITLES:
                self.select(Slot(table, int(index.rstrip("]") or 0)))
