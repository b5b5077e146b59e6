"""Finding plugins and the components they register.

Plugins come from the ``penchant`` entry-point group (the built-ins too) or are handed in
directly (tests, embedding). A plugin that fails to import, needs another version of the
plugin API, raises in a registration hook, or registers a class that breaks the contract is
recorded in :attr:`Registry.failures` by name with its error, and skipped: the host keeps
working with everything else.

Diagnostics: ``PENCHANT_PLUGINS=dist-or-entry-point,...`` loads only the named entry
points (``penchant`` names the built-ins); ``PENCHANT_TRACE_HOOKS=1`` prints every hook
call, per plugin, with its duration, to standard error.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from penchant import hookspecs
from penchant.components import BASES, KINDS, Component
from penchant.errors import PipelineError

ENTRY_POINT_GROUP = "penchant"
ONLY_ENV = "PENCHANT_PLUGINS"
TRACE_ENV = "PENCHANT_TRACE_HOOKS"

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
        #: Entry points left out on purpose (``PENCHANT_PLUGINS``), by label.
        self.skipped: list[str] = []
        self.trace = os.environ.get(TRACE_ENV, "") not in ("", "0")
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
        only = {n.strip() for n in os.environ.get(ONLY_ENV, "").split(",") if n.strip()}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            label = f"{dist}:{ep.name}"
            if only and not only & {dist, label, ep.name}:
                self.skipped.append(label)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the host down
                self.failures.append(PluginFailure(label, f"failed to import {ep.value}: "
                                                          f"{_short_error(exc)}"))
                continue
            self._register(plugin, label, (dist, version))

    def _register(self, plugin: Any, label: str, origin: tuple[str, str]) -> None:
        declared = getattr(plugin, "PENCHANT_API", None)
        if declared is not None:
            try:
                compatible = hookspecs.API_VERSION in SpecifierSet(str(declared))
            except InvalidSpecifier:
                self.failures.append(PluginFailure(
                    label, f"PENCHANT_API = {declared!r} is not a version range such as "
                           "\">=1.0,<2\""))
                return
            if not compatible:
                self.failures.append(PluginFailure(
                    label, f"needs penchant plugin API {declared} but this penchant provides "
                           f"{hookspecs.API_VERSION}; install a matching release of either"))
                return
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
            for label, classes, error in self.call_each(hook_name):
                if error is not None:
                    self.failures.append(PluginFailure(label, f"{hook_name} raised "
                                                              f"{_short_error(error)}"))
                    continue
                for cls in classes or ():
                    self._accept(kind, cls, label)

    def listens(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name``: callers skip building arguments
        nobody would read."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def call_each(self, hook_name: str, **kwargs: Any
                  ) -> list[tuple[str, Any, Exception | None]]:
        """Call every implementation of a hook on its own, in registration order, passing
        only the arguments it names: one plugin's exception is returned, not raised, so it
        cannot stop the others. Traced when ``PENCHANT_TRACE_HOOKS`` is set."""
        results = []
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            started = time.perf_counter()
            try:
                value, error = impl.function(
                    **{a: kwargs[a] for a in impl.argnames if a in kwargs}), None
            except Exception as exc:  # isolation is the point
                value, error = None, exc
            if self.trace:
                took = (time.perf_counter() - started) * 1000
                raised = f" raised {type(error).__name__}" if error else ""
                print(f"[penchant hook] {hook_name} -> {impl.plugin_name}: {took:.2f} ms"
                      f"{raised}", file=sys.stderr)
            results.append((impl.plugin_name, value, error))
        return results

    def plugins(self) -> list[dict[str, Any]]:
        """Each registered plugin: where it comes from and which hooks it implements."""
        out = []
        for label, plugin in self.pm.list_name_plugin():
            dist, version = self._origin.get(label, ("?", "?"))
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or ())
            where = getattr(plugin, "__file__", None) or type(plugin).__module__
            out.append({"plugin": label, "package": dist, "version": version,
                        "module": str(where), "hooks": hooks,
                        "api": getattr(plugin, "PENCHANT_API", None)})
        return sorted(out, key=lambda p: p["plugin"])

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
