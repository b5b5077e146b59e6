"""The pipeline being edited: a TOML document that keeps the user's comments and order.

The app edits the very file ``penchant run`` reads. It is held as a tomlkit document, so a
hand-written file opens and saves without losing a comment, a key order or an ``${env:…}``
reference, and a file the app saves runs headless unchanged. Checking goes through the host
(:func:`penchant.pipeline.build_pipeline`), whose messages name the table and key at fault;
:func:`problems_by_field` turns them into the fields the form shows them on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from PySide6.QtCore import QObject, Signal

from penchant.errors import PenchantError, PipelineError
from penchant.pipeline import STAGES, Pipeline, build_pipeline
from penchant.plugins import Registry

#: Tables the builder shows, in run order: (table, kind or None for settings, many).
SLOTS: tuple[tuple[str, str | None, bool], ...] = (
    ("pipeline", None, False), *STAGES, ("evaluation", None, False))
KIND_OF = {stage: kind for stage, kind, _ in STAGES}
MANY = {stage for stage, _, many in STAGES if many}

NEW_PIPELINE = """\
[pipeline]
name = "new-pipeline"

[source]
plugin = "csv"
path = ""
columns = { user = "user_id", item = "item_id", time = "timestamp" }

[[features]]
plugin = "interactions"

[model]
plugin = "vae"

[recommender]
plugin = "top-k"

[evaluation]
"""

_WHERE = re.compile(r"\[(?P<table>[a-z]+)(?:\[(?P<index>\d+)\])?\](?: key '(?P<key>[^']+)')?")


@dataclass(frozen=True)
class Slot:
    """One editable table: ``("model", 0)``, ``("preprocess", 2)``, ``("evaluation", 0)``."""

    table: str
    index: int = 0

    @property
    def label(self) -> str:
        return f"{self.table}[{self.index}]" if self.table in MANY else self.table


class PipelineDocument(QObject):
    """The open pipeline; every edit emits ``changed`` so views and checks follow."""

    changed = Signal()

    def __init__(self, text: str = NEW_PIPELINE, path: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.dirty = False
        try:
            self.doc = tomlkit.parse(text)
        except tomlkit.exceptions.TOMLKitError as exc:
            raise PipelineError(f"{path or '<pipeline>'}: not valid TOML: {exc}") from None

    @classmethod
    def open(cls, path: Path) -> PipelineDocument:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PipelineError(f"{path}: cannot be read: {exc.strerror}") from None
        return cls(text, Path(path))

    # -- reading -------------------------------------------------------------------------

    def text(self) -> str:
        return tomlkit.dumps(self.doc)

    def plain(self) -> dict[str, Any]:
        """The document as plain Python values, what the host checks and runs."""
        return self.doc.unwrap()

    def tables(self, table: str) -> list[Any]:
        """The tables of a stage (a list even for single ones; empty when absent)."""
        value = self.doc.get(table)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def table(self, slot: Slot) -> Any:
        """The slot's table, created empty for a settings table that is not written yet."""
        if slot.table in MANY:
            return self.doc[slot.table][slot.index]
        if slot.table not in self.doc:
            self.doc[slot.table] = tomlkit.table()
        return self.doc[slot.table]

    def value(self, slot: Slot, key: str) -> Any:
        node = self.doc.get(slot.table)
        if node is None:
            return None
        if slot.table in MANY:
            node = node[slot.index]
        value = node.get(key)
        return value.unwrap() if hasattr(value, "unwrap") else value

    def plugin(self, slot: Slot) -> str | None:
        return self.value(slot, "plugin")

    # -- editing -------------------------------------------------------------------------

    def set_value(self, slot: Slot, key: str, value: Any) -> None:
        """Set one key; ``None`` removes it (the component's default then applies)."""
        table = self.table(slot)
        if value is None:
            if key in table:
                del table[key]
        else:
            table[key] = _inline(value)
        self._edited()

    def set_plugin(self, slot: Slot, plugin: str, registry: Registry) -> None:
        """Pick another component for a slot, keeping the values its schema also has."""
        keep = {p.name for p in registry.get(KIND_OF[slot.table], plugin).schema()}
        table = self.table(slot)
        for key in [k for k in table if k != "plugin" and k not in keep]:
            del table[key]
        table["plugin"] = plugin
        self._edited()

    def add(self, table: str, plugin: str) -> Slot:
        """Add a component: appended to a list stage, or replacing a single one."""
        if table in MANY:
            if table not in self.doc:
                self.doc[table] = tomlkit.aot()
            self.doc[table].append(tomlkit.table())
            self.doc[table][-1]["plugin"] = plugin
            slot = Slot(table, len(self.doc[table]) - 1)
        else:
            fresh = tomlkit.table()
            fresh["plugin"] = plugin
            self.doc[table] = fresh
            slot = Slot(table)
        self._edited()
        return slot

    def remove(self, slot: Slot) -> None:
        if slot.table in MANY:
            del self.doc[slot.table][slot.index]
            if not len(self.doc[slot.table]):
                del self.doc[slot.table]
        elif slot.table in self.doc:
            del self.doc[slot.table]
        self._edited()

    def move(self, slot: Slot, delta: int) -> Slot:
        """Move a component of a list stage up (-1) or down (+1); returns where it went."""
        items = self.doc.get(slot.table)
        target = slot.index + delta
        if slot.table not in MANY or items is None or not 0 <= target < len(items):
            return slot
        tables = [items[i] for i in range(len(items))]
        tables[slot.index], tables[target] = tables[target], tables[slot.index]
        replacement = tomlkit.aot()
        for table in tables:
            replacement.append(table)
        self.doc[slot.table] = replacement
        self._edited()
        return Slot(slot.table, target)

    def save(self, path: Path | None = None) -> Path:
        """Write the file (atomically, as the host writes everything)."""
        from penchant import atomic

        target = Path(path or self.path or "pipeline.toml")
        atomic.write_text(target, self.text())
        self.path, self.dirty = target, False
        self.changed.emit()
        return target

    def _edited(self) -> None:
        self.dirty = True
        self.changed.emit()

    # -- checking ------------------------------------------------------------------------

    def build(self, registry: Registry) -> Pipeline:
        """The pipeline as the runner takes it; a :class:`PipelineError` lists problems."""
        return build_pipeline(self.plain(), registry, self.path)

    def problems(self, registry: Registry) -> list[str]:
        try:
            self.build(registry)
        except PenchantError as exc:
            return str(exc).splitlines()
        return []


def problems_by_field(problems: list[str]) -> dict[tuple[str, str | None], list[str]]:
    """``{(slot label, key or None): [message, …]}`` from the host's messages, which name
    ``[table]`` or ``[table[i]]`` and often ``key 'name'``."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for line in problems:
        match = _WHERE.search(line)
        if match is None:
            found.setdefault(("pipeline", None), []).append(line)
            continue
        table, index, key = match.group("table", "index", "key")
        label = f"{table}[{index}]" if index is not None else table
        message = line[match.end():].lstrip(": ") or line
        found.setdefault((label, key), []).append(message)
    return found


def _inline(value: Any) -> Any:
    """Tables as TOML inline tables (``columns = { user = … }``), as people write them."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table
    return value
