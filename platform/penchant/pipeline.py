"""Pipeline files: parse, override, resolve ``${env:NAME}``, validate, save.

A pipeline is one TOML file; the CLI, the desktop app and third-party plugins all read and
write the same shape::

    [pipeline]      name, seed
    [source]        plugin = "csv", columns = { user = …, item = …, time = … }, …
    [[preprocess]]  zero or more, in order
    [[features]]    one or more, in order
    [model]
    [recommender]
    [evaluation]    cutoff, horizons, k, baselines, …
    [feedback]      optional: merge stored feedback into the events (penchant.feedback)

Everything is checked before any work starts, and every problem is reported at once with
the file, the table and the key.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from penchant import atomic
from penchant.components import Component
from penchant.errors import PenchantError, PipelineError
from penchant.feedback import MERGED
from penchant.params import Param, ParamValues, mask, validate
from penchant.plugins import Registry
from penchant.secrets import url_password

#: Stage tables in run order, with the component kind each holds and whether it is a list.
STAGES: tuple[tuple[str, str, bool], ...] = (
    ("source", "source", False),
    ("preprocess", "preprocessor", True),
    ("features", "features", True),
    ("model", "model", False),
    ("recommender", "recommender", False),
)

PIPELINE_PARAMS: tuple[Param, ...] = (
    Param("name", "str", "pipeline", help="shown in the run store and the app"),
    Param("seed", "int", 0, min=0, help="seeds every random choice, so runs repeat"),
)

EVALUATION_PARAMS: tuple[Param, ...] = (
    Param("cutoff", "timepoint", 0.8,
          help="train before this time, evaluate after: an ISO date or a quantile of times"),
    Param("until", "timepoint", None,
          help="ignore events from this time on (a date or quantile of all event times): "
               "what tuning uses to keep the test period out of sight"),
    Param("horizons", "list", ["7d", "30d", "90d"], items="duration",
          help="windows after the cutoff in which a user's new items count as relevant"),
    Param("k", "list", [10, 20], items="int", min=1, help="list lengths for the metrics"),
    Param("baselines", "list", ["popularity", "recent-popularity"], items="str",
          help="models trained beside the main one with their default parameters"),
    Param("validation", "float", 0.1, min=0, max=0.5,
          help="last share of the training events held out (from a quantile of their "
               "times, as the test's cutoff) for early stopping and blend weights (0: none)"),
    Param("validation_users", "int", 10_000, min=0,
          help="users scored each epoch for early stopping, a fixed sample when there are "
               "more (0: all of them)"),
    Param("refit", "bool", True,
          help="early-stop a model that never saw the held-out window, then retrain on the "
               "whole training period for that many epochs"),
    Param("recommend_k", "int", 20, min=1,
          help="length of each user's list in recommendations.csv"),
    Param("intervals", "float", 0.95, min=0, max=0.999,
          help="confidence level of the interval around the NDCG ratio (at the largest k) "
               "of the pipeline's model to each baseline, from resampling the evaluated "
               "users (0: none)"),
    Param("resamples", "int", 1000, min=100,
          help="bootstrap resamples behind each interval"),
    Param("light_users", "int", 3, min=0,
          help="also score users with at most this many training events apart (0: off)"),
    Param("interests", "bool", False,
          help="also score forecasts of each user's category distribution per horizon "
               "(Jensen-Shannon divergence, top-3 overlap) and write trajectories.csv"),
    Param("category", "str", "category",
          help="column of the items side table that holds each item's category"),
    Param("interest_half_life", "duration", "30d",
          help="half-life of the recency-weighted persistence baseline of interests"),
)

FEEDBACK_PARAMS: tuple[Param, ...] = (
    Param("merge", "bool", False,
          help="add stored feedback (clicks, add-to-carts, purchases, thumbs, dismissals; "
               "never impressions) to the events before preprocessing; what falls after the "
               "cutoff stays out of training and of the test period"),
    Param("runs", "list", [], items="int", min=1,
          help="runs whose feedback is merged (empty: every run's)"),
    Param("weights", "table", {}, items="float", keys=MERGED,
          help="interaction weight per feedback kind, over the defaults click = 1, "
               "add-to-cart = 2, purchase = 4, thumbs-up = 2, dismiss = 0, thumbs-down = 0; "
               "an extractor's own weights table wins. Every merged event marks the item "
               "as seen, so a dismissal at weight 0 only keeps it out of that user's lists; "
               "a negative weight (with interactions reduce = \"sum\") also trains against "
               "it, for models that take negative entries"),
)

_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_TOP_LEVEL = {"pipeline", "evaluation", "feedback"} | {name for name, _, _ in STAGES}


@dataclass
class ComponentSpec:
    """One component table: which plugin, with which (raw, unresolved) parameters."""

    kind: str
    plugin: str
    params: dict[str, Any]
    table: str

    def to_toml(self) -> dict[str, Any]:
        return {"plugin": self.plugin, **self.params}


@dataclass
class Pipeline:
    """A validated pipeline. ``doc`` is the file's content after overrides, with
    ``${env:…}`` references kept, so saving it never writes a secret."""

    doc: dict[str, Any]
    path: Path | None
    settings: ParamValues
    evaluation: ParamValues
    stages: dict[str, list[ComponentSpec]] = field(default_factory=dict)
    feedback: ParamValues = field(default_factory=lambda: validate(FEEDBACK_PARAMS, {}, ""))

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def base_dir(self) -> Path:
        return self.path.parent.resolve() if self.path else Path.cwd()

    @property
    def origin(self) -> str:
        return str(self.path) if self.path else "<pipeline>"

    def one(self, stage: str) -> ComponentSpec:
        return self.stages[stage][0]

    def create(self, spec: ComponentSpec, registry: Registry) -> Component:
        """An instance of ``spec``'s component with environment references resolved."""
        cls = registry.get(spec.kind, spec.plugin, f"{self.origin} [{spec.table}]")
        where = f"{self.origin} [{spec.table}]"
        params = resolve_env(spec.params, where)
        return cls(params, where=where, base_dir=self.base_dir)

    def resolved_doc(self, registry: Registry, masked: bool = False) -> dict[str, Any]:
        """The document with every default written out (env references still unresolved):
        what a run used, in a form that reruns identically. ``masked`` hides secrets
        written as literals, for anything stored or shown."""
        doc = copy.deepcopy(self.doc)
        doc["pipeline"] = dict(self.settings)
        doc["evaluation"] = dict(self.evaluation)
        if "feedback" in doc:
            doc["feedback"] = dict(self.feedback)
        for stage, _, many in STAGES:
            specs = []
            for spec in self.stages[stage]:
                cls = registry.get(spec.kind, spec.plugin)
                full = {p.name: p.default for p in cls.schema() if p.default is not None}
                full.update(mask(cls.schema(), spec.params) if masked else spec.params)
                specs.append({"plugin": spec.plugin, **full})
            doc[stage] = specs if many else specs[0]
        return doc


    def secret_values(self, registry: Registry) -> list[str]:
        """What a run must never write or say: the resolved value of every secret
        parameter, the password in it when it is a URL, and every environment value such a
        parameter refers to."""
        found: list[str] = []
        for specs in self.stages.values():
            for spec in specs:
                cls = registry.get(spec.kind, spec.plugin)
                for param in cls.schema():
                    value = spec.params.get(param.name)
                    if not param.secret or not isinstance(value, str):
                        continue
                    found += [os.environ.get(name, "") for name in _ENV.findall(value)]
                    try:
                        resolved = resolve_env(value, "")
                    except PipelineError:
                        continue
                    found += [resolved, url_password(resolved) or ""]
        return [s for s in dict.fromkeys(found) if s]


def resolve_env(value: Any, where: str) -> Any:
    """Replace ``${env:NAME}`` in strings (anywhere in nested tables and lists)."""
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise PipelineError(f"{where}: environment variable {name} is not set "
                                    f"(referenced as ${{env:{name}}})")
            return os.environ[name]
        return _ENV.sub(substitute, value)
    if isinstance(value, Mapping):
        return {k: resolve_env(v, f"{where} key {k!r}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, where) for v in value]
    return value


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax when it parses (numbers, booleans, lists, tables),
    otherwise the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):  # tomllib recurses per nesting level
        return text


def apply_overrides(doc: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """``table.key=value``; ``preprocess.1.key=value`` sets the second of a list, and the
    index just past the end adds a table (``features.1.plugin=item-features``)."""
    doc = copy.deepcopy(doc)
    for override in overrides:
        path, sep, text = override.partition("=")
        keys = [k for k in re.split(r"[.\[\]]+", path.strip()) if k]
        if not sep or len(keys) < 2:
            raise PipelineError(f"--set {override!r}: write table.key=value, e.g. "
                                "--set model.epochs=20")
        node: Any = doc
        for i, key in enumerate(keys[:-1]):
            if isinstance(node, list):
                if not key.isdecimal() or int(key) > len(node):  # "²" is a digit, no int
                    raise PipelineError(f"--set {override!r}: {'.'.join(keys[:i])} has "
                                        f"{len(node)} entries; {key!r} is not one of them "
                                        f"(use {len(node)} to add one)")
                if int(key) == len(node):
                    node.append({})
                node = node[int(key)]
            else:
                nxt = node.setdefault(key, {})
                if isinstance(nxt, list) and len(keys) == i + 2:
                    raise PipelineError(f"--set {override!r}: {key} is a list of tables; "
                                        f"name one, e.g. {key}.0.{keys[-1]}")
                node = nxt
            if not isinstance(node, dict | list):
                raise PipelineError(f"--set {override!r}: {key} is not a table")
        if not isinstance(node, dict):
            raise PipelineError(f"--set {override!r}: the last key must be in a table")
        node[keys[-1]] = parse_value(text.strip())
    return doc


def read_document(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such pipeline file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise PipelineError(f"{path}: not valid TOML: arrays or tables nested hundreds of "
                            "levels deep") from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise PipelineError(f"{path}: line {line} is not UTF-8 text ({exc.reason}: byte "
                            f"0x{exc.object[exc.start]:02x}); save the file as UTF-8") from None


def load_pipeline(path: str | Path, registry: Registry,
                  overrides: Iterable[str] = ()) -> Pipeline:
    path = Path(path)
    doc = apply_overrides(read_document(path), overrides)
    return build_pipeline(doc, registry, path)


def build_pipeline(doc: dict[str, Any], registry: Registry,
                   path: Path | None = None) -> Pipeline:
    """Check the whole document against the installed components; collect every problem."""
    origin = str(path) if path else "<pipeline>"
    problems: list[str] = []

    def check(params: Iterable[Param], values: Any, where: str) -> ParamValues | None:
        if not isinstance(values, Mapping):
            problems.append(f"{where}: expected a table, got {values!r}")
            return None
        try:
            return validate(params, values, where)
        except PipelineError as exc:
            problems.extend(str(exc).splitlines())
            return None

    for key in doc:
        if key not in _TOP_LEVEL:
            problems.append(f"{origin}: unknown table [{key}]; allowed: "
                            f"{', '.join(sorted(_TOP_LEVEL))}")
    settings = check(PIPELINE_PARAMS, doc.get("pipeline", {}), f"{origin} [pipeline]")
    evaluation = check(EVALUATION_PARAMS, doc.get("evaluation", {}), f"{origin} [evaluation]")
    feedback = check(FEEDBACK_PARAMS, doc.get("feedback", {}), f"{origin} [feedback]")
    stages: dict[str, list[ComponentSpec]] = {}
    for stage, kind, many in STAGES:
        tables = doc.get(stage)
        if tables is None:
            if stage == "preprocess":
                tables = []
            elif stage == "recommender":
                tables = {"plugin": "top-k"}
            else:
                problems.append(f"{origin}: [{stage}] is missing; it needs at least "
                                f"plugin = one of: {', '.join(registry.names(kind))}")
                continue
        if many and isinstance(tables, Mapping):
            tables = [tables]
        if not many and not isinstance(tables, Mapping):
            problems.append(f"{origin}: [{stage}] must be a single table, not a list")
            continue
        if many and not isinstance(tables, list):
            problems.append(f"{origin}: [[{stage}]] must be a list of tables")
            continue
        specs = []
        for i, table in enumerate(tables if many else [tables]):
            label = f"{stage}[{i}]" if many else stage
            where = f"{origin} [{label}]"
            if not isinstance(table, Mapping):
                problems.append(f"{where}: expected a table, got {table!r}")
                continue
            plugin = table.get("plugin")
            if not isinstance(plugin, str):
                problems.append(f"{where}: key 'plugin' is required; one of: "
                                f"{', '.join(registry.names(kind))}")
                continue
            params = {k: v for k, v in table.items() if k != "plugin"}
            spec = ComponentSpec(kind, plugin, params, label)
            try:
                cls = registry.get(kind, plugin, where)
                # Only the schema is checked here: env references may be unset until run.
                cls(_placeholder_env(params), where=where)
            except PenchantError as exc:
                problems.extend(str(exc).splitlines())
                continue
            specs.append(spec)
        if stage == "features" and not tables:
            problems.append(f"{origin}: [[features]] needs at least one extractor, e.g. "
                            "plugin = \"interactions\"")
        stages[stage] = specs
    if evaluation is not None:
        for name in evaluation.baselines:
            try:
                registry.get("model", name, f"{origin} [evaluation] key 'baselines'")
            except PipelineError as exc:
                problems.append(str(exc))
    if problems:
        raise PipelineError("\n".join(dict.fromkeys(problems)))
    return Pipeline(doc=doc, path=path, settings=settings, evaluation=evaluation,
                    stages=stages, feedback=feedback)


def _placeholder_env(params: dict[str, Any]) -> dict[str, Any]:
    """Validation stand-in: an env reference counts as a valid string."""
    return {k: ("" if isinstance(v, str) and _ENV.fullmatch(v) else v)
            for k, v in params.items()}


def dump(doc: Mapping[str, Any]) -> str:
    ordered = {key: doc[key] for key in ("pipeline", "source", "preprocess", "features",
                                          "model", "recommender", "evaluation", "feedback")
               if key in doc}
    return tomli_w.dumps(_drop_none(ordered))


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def save_pipeline(doc: Mapping[str, Any], path: str | Path) -> Path:
    """Write atomically: a crash leaves the old file or the new one."""
    return atomic.write_text(Path(path), dump(doc))
