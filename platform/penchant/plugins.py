"""Finding plugins and the components they register.

Plugins come from the ``penchant`` entry-point group (the built-ins too) or are handed in
directly (tests, embedding). A plugin that fails to import, raises in a registration hook,
or registers a class that breaks the contract is recorded in :attr:`Registry.failures` by
name with its error, and skipped: the host keeps working with everything else.
"""

from __future__ import annotations

import importlib.metadata
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import pluggy

from penchant import hookspecs
from penchant.components import BASES, KINDS, Component
from penchant.errors import PipelineError

ENTRY_POINT_GROUP = "penchant"

#: Registration hook for each component kind.
REGISTRATION_HOOKS = {
    "source": "penchant_register_sources",
    "preprocessor": "penchant_register_preprocessors",
    "features": "penchant_register_features",
    "model": "penchant_register_models",
    "recommender": "penchant_register_recommenders",
}


@dataclass(frozen=True)
class PluginFailure:
    """A plugin, or one thing it registered, that the host refused."""

    plugin: str
    error: str

    def __str__(self) -> str:
        return f"{self.plugin}: {self.error}"


@dataclass(frozen=True)
class ComponentInfo:
    cls: type[Component]
    plugin: str
    package: str
    version: str

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def kind(self) -> str:
        return self.cls.kind


def _short_error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


class Registry:
    """The plugin manager plus every valid component, by kind and name."""

    def __init__(self, plugins: Iterable[ModuleType | Any] = (),
                 entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._origin: dict[str, tuple[str, str]] = {}
        if entry_points:
            self._load_entry_points()
        for plugin in plugins:
            name = getattr(plugin, "__name__", None) or repr(plugin)
            self._register(plugin, name, ("(registered directly)", ""))
        self.components: dict[str, dict[str, ComponentInfo]] = {k: {} for k in KINDS}
        self._collect()

    # -- discovery ---------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            label = f"{dist}:{ep.name}"
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the host down
                self.failures.append(PluginFailure(label, f"failed to import {ep.value}: "
                                                          f"{_short_error(exc)}"))
                continue
            self._register(plugin, label, (dist, version))

    def _register(self, plugin: Any, label: str, origin: tuple[str, str]) -> None:
        if self.pm.is_registered(plugin) or self.pm.has_plugin(label):
            self.failures.append(PluginFailure(label, "registered twice; skipped"))
            return
        try:
            self.pm.register(plugin, name=label)
        except Exception as exc:  # e.g. a hook with a misspelt argument
            self.failures.append(PluginFailure(label, f"does not fit the hook specs: {exc}"))
            return
        self._origin[label] = origin

    def _collect(self) -> None:
        for kind, hook_name in REGISTRATION_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                label = impl.plugin_name
                try:
                    classes = impl.function()
                except Exception as exc:
                    self.failures.append(PluginFailure(label, f"{hook_name} raised "
                                                              f"{_short_error(exc)}"))
                    continue
                for cls in classes or ():
                    self._accept(kind, cls, label)

    def _accept(self, kind: str, cls: Any, label: str) -> None:
        base = BASES[kind]
        what = getattr(cls, "__qualname__", repr(cls))
        if not (isinstance(cls, type) and issubclass(cls, base)):
            self.failures.append(PluginFailure(
                label, f"{REGISTRATION_HOOKS[kind]} returned {what}, which is not a "
                       f"subclass of penchant.{base.__name__}"))
            return
        problems = cls.contract_problems()
        if cls.kind != kind:
            problems.append(f"kind is {cls.kind!r} but it was registered as a {kind}")
        if problems:
            self.failures.append(PluginFailure(label, f"{kind} {what} breaks the contract: "
                                                      + "; ".join(problems)))
            return
        existing = self.components[kind].get(cls.name)
        if existing is not None:
            self.failures.append(PluginFailure(
                label, f"{kind} name {cls.name!r} is already taken by {existing.plugin}"))
            return
        dist, version = self._origin.get(label, ("?", "?"))
        self.components[kind][cls.name] = ComponentInfo(cls, label, dist, version)

    # -- lookup ------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: str, name: str, where: str = "") -> type[Component]:
        info = self.components[kind].get(name)
        if info is None:
            allowed = ", ".join(self.names(kind)) or "none installed"
            prefix = f"{where}: " if where else ""
            hint = ""
            broken = [f for f in self.failures if name in f.error]
            if broken:
                hint = f" (a plugin that failed to load mentions it: {broken[0]})"
            raise PipelineError(f"{prefix}no {kind} named {name!r} is installed; "
                                f"available: {allowed}{hint}")
        return info.cls

    def find(self, name: str) -> list[ComponentInfo]:
        """Every component called ``name``, whatever its kind."""
        return [c[name] for c in self.components.values() if name in c]

    def all(self) -> list[ComponentInfo]:
        return [info for kind in KINDS for _, info in sorted(self.components[kind].items())]


@cache
def default_registry() -> Registry:
    """The process-wide registry of installed plugins, built on first use."""
    return Registry()
