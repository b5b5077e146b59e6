"""``penchant plugins new``: a complete, installable plugin package to start from.

:func:`create_plugin` writes ``DIR/NAME``: a ``pyproject.toml`` whose ``penchant`` entry
point names the package, a working component of the chosen kind with a small parameter
schema, tests that run the conformance kit on it (found through the entry point, as a
pipeline finds it) plus one test of what it does, and a README. ``pip install -e .`` then
makes it show in ``penchant plugins list`` and usable in any pipeline.

The templates live here as strings (no package data to ship); ``__DIST__``, ``__MODULE__``,
``__ENTRY__``, ``__COMPONENT__``, ``__CLASS__`` and ``__KIND__`` are filled in. Every
generated Python file is kept clean under the repository's ruff settings (the suite checks).
"""

from __future__ import annotations

import difflib
import keyword
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from penchant.components import KINDS
from penchant.errors import PenchantError

_DIST_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
#: Longer names would push generated lines past the 100 columns ruff allows.
MAX_NAME = 40
_COMPONENT_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_RESERVED = {"penchant", "penchant_plugins", "penchant_gui", "test", "tests", "src"}
_HOOKS = {"source": "penchant_register_sources",
          "preprocessor": "penchant_register_preprocessors",
          "features": "penchant_register_features",
          "model": "penchant_register_models",
          "recommender": "penchant_register_recommenders"}
_CLASS_SUFFIX = {"source": "Source", "preprocessor": "Preprocessor", "features": "Features",
                 "model": "Model", "recommender": "Recommender"}


def names_for(name: str, kind: str) -> dict[str, str]:
    """The distribution, module, entry-point, component and class names for ``NAME``;
    raises :class:`PenchantError` saying what is wrong with ``name`` or ``kind``."""
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PenchantError(f"kind {kind!r} is not one of {', '.join(KINDS)}{hint}")
    if not isinstance(name, str) or not _DIST_NAME.match(name):
        raise PenchantError(
            f"plugin name {name!r} is not a distribution name: use lower-case letters, digits "
            "and single dashes, starting with a letter, e.g. penchant-acme-boost")
    if len(name) > MAX_NAME:
        raise PenchantError(f"plugin name {name!r} is longer than {MAX_NAME} characters")
    module = name.replace("-", "_")
    if (module in _RESERVED or module in sys.stdlib_module_names
            or keyword.iskeyword(module)):
        raise PenchantError(f"plugin name {name!r} would make a module {module!r} that "
                            "shadows another one; prefix it, e.g. penchant-" + name)
    short = re.sub(r"^penchant[-_]", "", name)
    component = short.replace("_", "-")
    if not _COMPONENT_NAME.match(component):
        raise PenchantError(f"plugin name {name!r} gives the component name {component!r}, "
                            "which must start with a letter; e.g. penchant-acme-boost gives "
                            "acme-boost")
    camel = "".join(part.capitalize() for part in component.split("-"))
    suffix = _CLASS_SUFFIX[kind]
    return {"dist": name, "module": module, "entry": component.replace("-", "_"),
            "component": component, "class": camel if camel.endswith(suffix)
            else camel + suffix, "kind": kind, "hook": _HOOKS[kind]}


def create_plugin(name: str, kind: str, parent: str | Path = ".",
                  taken: Iterable[str] = ()) -> list[Path]:
    """Write the package for plugin ``name`` of ``kind`` into ``parent/name``; return the
    files written. ``taken`` are component names of this kind already installed: a new
    one with the same name would be refused by the host, so it is refused here first.

    Refuses (with :class:`PenchantError`) a bad name or kind and an existing non-empty
    folder; never overwrites anything.
    """
    n = names_for(name, kind)
    if n["component"] in set(taken):
        raise PenchantError(f"a {kind} named {n['component']!r} is already installed; choose "
                            f"another plugin name (the component is named after it without "
                            "'penchant-')")
    target = Path(parent).expanduser() / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PenchantError(f"{target} already exists and is not an empty folder; choose "
                            "another --dir or name, or remove it first")
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README.replace("__SNIPPET__", SNIPPETS[kind].strip()),
        f"src/{n['module']}/__init__.py": MODULES[kind],
        f"tests/test_{n['module']}.py": TESTS[kind],
        **{f"tests/{path}": text for path, text in TEST_DATA.get(kind, {}).items()},
    }
    written = []
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(text, n), encoding="utf-8")
        written.append(path)
    return written


def _fill(text: str, n: dict[str, str]) -> str:
    for key in ("dist", "module", "entry", "component", "class", "kind", "hook"):
        text = text.replace(f"__{key.upper()}__", n[key])
    return text.lstrip("\n")


# -- shared files ---------------------------------------------------------------------------

PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "A __KIND__ plugin for Penchant: __COMPONENT__."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["penchant"]

[project.optional-dependencies]
test = ["pytest"]

# How Penchant finds this plugin: every module in the `penchant` group is loaded and its
# @penchant.hookimpl functions are called.
[project.entry-points.penchant]
__ENTRY__ = "__MODULE__"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100
target-version = "py311"

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP", "SIM", "RUF"]
ignore = ["RUF001", "RUF002", "RUF003"]  # "×" and other typography in text is intended

# Penchant's own imports in a block of their own, after the other third-party ones.
[tool.ruff.lint.isort]
section-order = ["future", "standard-library", "third-party", "penchant", "first-party",
                 "local-folder"]

[tool.ruff.lint.isort.sections]
penchant = ["penchant"]
'''

README = '''
# __DIST__

A Penchant __KIND__ plugin: the component `__COMPONENT__` (`__MODULE__.__CLASS__`).
It started from `penchant plugins new __DIST__ --kind __KIND__`; change it freely, and
keep its tests passing.

## Install

In the environment where Penchant is installed, from this folder:

```sh
pip install -e .
penchant plugins list    # shows __COMPONENT__ (__KIND__) from __DIST__
penchant plugins info __COMPONENT__    # its description and parameters
```

`pip install -e .` is an editable install: edits to `src/__MODULE__/` take effect at once.
Penchant finds the plugin through the `penchant` entry point in `pyproject.toml`.

## Use it in a pipeline

Name the component in a pipeline file; every other stage stays as it was:

```toml
__SNIPPET__
```

then run it headless with `penchant run pipeline.toml` (or pick it in the desktop app).
`penchant plugins info __COMPONENT__` lists every parameter it accepts.

## Test

```sh
pip install -e '.[test]'
pytest
```

`tests/test___MODULE__.py` finds the component through its entry point (so install first),
runs Penchant's conformance kit on it (`penchant.testing.check_component`: its parameter
schema, a pipeline-file round trip and everything the contract asks of a __KIND__), and
checks what the component itself does. Add a test for every behaviour you add.

## How it is put together

- `src/__MODULE__/__init__.py`: `PENCHANT_API`, the plugin-API versions this plugin is
  written for (Penchant skips it, saying why, when it provides another); the component class
  `__CLASS__` with its `name`, `description` and parameter schema (`params`, a tuple of
  `penchant.Param`: the same declaration validates pipeline files and renders the app's
  form); and `__HOOK__`, the `@penchant.hookimpl` that hands the class to Penchant.
- `pyproject.toml`: the `[project.entry-points.penchant]` table that makes Penchant load
  the module.

## Publish

Build and upload as any Python package (`python -m build`, then `twine upload dist/*`).
Keep the `penchant-` prefix in the name so users can find it, and run the tests in CI.
'''

SNIPPETS = {
    "source": '''
[source]
plugin = "__COMPONENT__"
path = "events.jsonl"                  # relative to the pipeline file
columns = { user = "user_id", item = "item_id", time = "timestamp", event = "event_type" }
''',
    "preprocessor": '''
[[preprocess]]
plugin = "__COMPONENT__"
max_age = "180d"                       # drop events older than this before the newest
''',
    "features": '''
[[features]]
plugin = "__COMPONENT__"
scale = "log"                          # log(1 + count), or "linear"
''',
    "model": '''
[model]
plugin = "__COMPONENT__"
half_life = "14d"                      # an event counts half as much every 14 days
''',
    "recommender": '''
[recommender]
plugin = "__COMPONENT__"
limit = 5                              # at most 5 items per user
''',
}


# -- the component of each kind -------------------------------------------------------------

MODULES = {}
TESTS = {}
TEST_DATA = {}

MODULES["source"] = '''
"""__DIST__.

A Penchant source that reads events from a JSON-lines file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

import penchant

PENCHANT_API = ">=1.0,<2"  # the plugin-API versions this plugin is written for


class __CLASS__(penchant.Source):
    """Events from a JSON-lines file: one JSON object per line, such as
    ``{"user_id": "u1", "item_id": "i9", "timestamp": "2024-05-01T10:00:00Z"}``.

    ``columns`` maps Penchant's user, item, time (and optional event, value) to the file's
    fields, as for every source. Compression (.gz, .bz2, .xz, .zst) follows the file name.
    Side tables, ``items = { path = "items.jsonl", id = "item_id" }``, are JSON lines too.
    """

    name = "__COMPONENT__"
    description = "Events (and item/user tables) from JSON-lines files, one object per line."
    params = (
        penchant.Param("path", "path", required=True,
                       help="events file; relative paths start at the pipeline file's folder"),
    )

    def __init__(self, params: Any = None, where: str | None = None,
                 base_dir: str | Path | None = None) -> None:
        super().__init__(params, where, base_dir)
        for side in ("items", "users"):
            spec = self.params[side]
            if spec is not None and ("path" not in spec or "table" in spec):
                raise penchant.PipelineError(
                    f"{where or self.name}: key {side!r}: this source reads side tables from "
                    f"files; write {side} = {{ path = \\"{side}.jsonl\\", id = \\"id\\" }}")
        self.path = self.resolve_path(self.params.path)

    def describe_origin(self) -> str:
        return str(self.path)

    def available_columns(self) -> list[str]:
        return [str(c) for c in self._read(self.path, nrows=1).columns]

    def load(self, ctx: penchant.Context) -> penchant.Dataset:
        raw = self._read(self.path)
        mapping = self.params.columns  # Penchant's column -> the file's field
        missing = [f"columns.{key} = {field!r}" for key, field in mapping.items()
                   if field not in raw.columns]
        if missing:
            raise penchant.DataError(f"{self.path}: no field for {'; '.join(missing)}; the "
                                     f"records have {', '.join(map(repr, raw.columns))}")
        frame = pd.DataFrame({key: raw[field] for key, field in mapping.items()})
        events = penchant.Events.from_frame(frame, self.params.time_unit)
        ctx.log(f"{self.name}: {len(events)} events from {self.path}")
        return penchant.Dataset(events, items=self._side_table("items"),
                                users=self._side_table("users"),
                                provenance=(f"{self.name}: {len(events)} events from "
                                            f"{self.path}",))

    def _side_table(self, side: str) -> pd.DataFrame | None:
        """The side table indexed by its id as text, the index named "item" or "user"."""
        spec = self.params[side]
        if spec is None:
            return None
        table = self._read(self.resolve_path(spec["path"]))
        id_field = spec.get("id", "id")
        if id_field not in table.columns:
            raise penchant.DataError(f"{spec['path']}: no id field {id_field!r}; set `id` in "
                                     f"the {side} table")
        ids = table.pop(id_field).astype("string").str.strip()
        table.index = pd.Index(ids, dtype="string", name=side[:-1])
        return table

    @staticmethod
    def _read(path: Path, nrows: int | None = None) -> pd.DataFrame:
        if not path.is_file():
            raise penchant.DataError(f"{path}: no such file")
        try:
            # Values stay as written (no type or date guessing): Events parses times.
            return pd.read_json(path, lines=True, nrows=nrows, dtype=False,
                                convert_dates=False)
        except ValueError as exc:
            raise penchant.DataError(f"{path}: not JSON lines ({exc})") from None


@penchant.hookimpl
def __HOOK__() -> list[type[penchant.Source]]:
    return [__CLASS__]
'''

TEST_DATA["source"] = {"data/events.jsonl": """
{"user_id": "u1", "item_id": "i1", "timestamp": "2024-05-01T10:00:00Z", "event_type": "view"}
{"user_id": "u1", "item_id": "i2", "timestamp": "2024-05-02T11:30:00Z", "event_type": "view"}
{"user_id": "u1", "item_id": "i2", "timestamp": "2024-05-02T11:35:00Z", "event_type": "purchase"}
{"user_id": "u2", "item_id": "i1", "timestamp": "2024-05-03T09:00:00Z", "event_type": "view"}
{"user_id": "u2", "item_id": "i3", "timestamp": "2024-05-04T18:20:00Z", "event_type": "view"}
{"user_id": "u3", "item_id": "i3", "timestamp": "2024-05-05T08:00:00Z", "event_type": "purchase"}
"""}

_TEST_HEAD = '''
"""Tests of __DIST__.

Penchant's conformance kit first, then what the __KIND__ itself does.
"""

from __future__ import annotations
'''

_FIXTURE = '''

@pytest.fixture(scope="module")
def component() -> type:
    """The class as Penchant finds it: through the `penchant` entry point, so these tests
    also check the packaging (run `pip install -e .` first)."""
    return default_registry().get("__KIND__", "__COMPONENT__")


def test_conformance(component) -> None:
    # Raises penchant.testing.ConformanceError naming every check that fails.
    check_component(component, PARAMS)
'''

TESTS["source"] = _TEST_HEAD + '''
from pathlib import Path

import pandas as pd
import pytest

import penchant
from penchant.plugins import default_registry
from penchant.testing import check_component

DATA = Path(__file__).parent / "data"
COLUMNS = {"user": "user_id", "item": "item_id", "time": "timestamp", "event": "event_type"}
#: The parameters the kit builds the source with: a source needs at least its input.
PARAMS = {"path": str(DATA / "events.jsonl"), "columns": COLUMNS}
''' + _FIXTURE + '''

def test_reads_every_line_as_a_canonical_event(component) -> None:
    dataset = component(PARAMS).load(penchant.Context())
    frame = dataset.events.frame
    assert len(frame) == 6
    assert sorted(frame["user"].astype(str).unique()) == ["u1", "u2", "u3"]
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert frame["time"].min() == pd.Timestamp("2024-05-01T10:00:00Z")
    assert frame["event"].astype(str).value_counts()["purchase"] == 2


def test_a_missing_field_is_named(component) -> None:
    with pytest.raises(penchant.DataError, match=r"columns\\.user = 'customer'"):
        component({**PARAMS, "columns": {**COLUMNS, "user": "customer"}}).load(
            penchant.Context())
'''

MODULES["preprocessor"] = '''
"""__DIST__.

A Penchant preprocessor that keeps only recent events.
"""

from __future__ import annotations

import penchant

PENCHANT_API = ">=1.0,<2"  # the plugin-API versions this plugin is written for


class __CLASS__(penchant.Preprocessor):
    """Drops events older than ``max_age`` before the newest event.

    Shoppers' tastes drift: years-old clicks can say less about next month than they cost
    to train on. Rows whose time could not be read are kept, for ``drop-malformed`` or the
    run's data check to report by row.
    """

    name = "__COMPONENT__"
    description = "Drops events older than max_age before the newest event."
    params = (
        penchant.Param("max_age", "duration", "365d",
                       help="keep events at most this long before the newest one, e.g. '180d'"),
    )

    def apply(self, dataset: penchant.Dataset, ctx: penchant.Context) -> penchant.Dataset:
        events = dataset.events
        if len(events) == 0:
            return dataset
        oldest = events.end - penchant.parse_duration(self.params.max_age)
        keep = ~(events.frame["time"] < oldest).to_numpy()
        dropped = int((~keep).sum())
        frame = events.select(keep).frame
        # Users and items with no event left must not live on as categories.
        frame = frame.assign(**{col: frame[col].cat.remove_unused_categories()
                                for col in ("user", "item", "event")})
        ctx.report[self.name] = {"dropped": dropped}
        ctx.log(f"{self.name}: dropped {dropped} event(s) before {oldest:%Y-%m-%d}")
        return dataset.with_events(penchant.Events(frame), note=f"{self.name}: -{dropped} events")


@penchant.hookimpl
def __HOOK__() -> list[type[penchant.Preprocessor]]:
    return [__CLASS__]
'''

TESTS["preprocessor"] = _TEST_HEAD + '''
import pandas as pd
import pytest

import penchant
from penchant.plugins import default_registry
from penchant.testing import check_component

#: The parameters the kit builds the preprocessor with ({} checks the defaults).
PARAMS: dict = {"max_age": "90d"}
''' + _FIXTURE + '''

def test_drops_only_events_older_than_max_age(component) -> None:
    newest = pd.Timestamp("2024-06-01", tz="UTC")
    ages = [0, 10, 29, 31, 400]
    frame = pd.DataFrame({"user": ["a", "a", "b", "b", "c"],
                          "item": ["x", "y", "x", "z", "w"],
                          "time": [newest - pd.Timedelta(days=d) for d in ages]})
    dataset = penchant.Dataset(penchant.Events.from_frame(frame))
    ctx = penchant.Context()
    out = component({"max_age": "30d"}).apply(dataset, ctx)
    assert len(out.events) == 3
    assert ctx.report["__COMPONENT__"] == {"dropped": 2}
    assert set(out.events.frame["user"].cat.categories) == {"a", "b"}  # "c" is gone
'''

MODULES["features"] = '''
"""__DIST__.

A Penchant feature extractor of interaction counts.
"""

from __future__ import annotations

import numpy as np

import penchant

PENCHANT_API = ">=1.0,<2"  # the plugin-API versions this plugin is written for


class __CLASS__(penchant.FeatureExtractor):
    """How often each user interacted with each item, as the user×item matrix models read.

    On the default log scale, ``log(1 + count)``, a shopper who viewed an item fifty times
    does not drown out everything else they did.
    """

    name = "__COMPONENT__"
    description = "User×item interaction counts, on a log scale (log(1 + count)) by default."
    params = (
        penchant.Param("events", "list", [], items="str",
                       help="event types to count, e.g. [\\"purchase\\"]; empty: every type"),
        penchant.Param("scale", "str", "log", choices=("log", "linear"),
                       help="log: log(1 + count); linear: the count itself"),
    )

    def extract(self, features: penchant.Features, ctx: penchant.Context) -> penchant.Features:
        frame = features.dataset.events.frame
        if self.params.events:
            counted = frame["event"].isin(self.params.events).to_numpy(dtype=np.float32)
        else:
            counted = np.ones(len(frame), dtype=np.float32)
        # Summed per (user, item) over the given user and item indexes, in their order.
        matrix = features.interaction_matrix(counted)
        if self.params.scale == "log":
            matrix.data = np.log1p(matrix.data)
        features.matrix = matrix
        ctx.log(f"{self.name}: {matrix.nnz} non-zeros over {matrix.shape[0]} users × "
                f"{matrix.shape[1]} items")
        return features


@penchant.hookimpl
def __HOOK__() -> list[type[penchant.FeatureExtractor]]:
    return [__CLASS__]
'''

TESTS["features"] = _TEST_HEAD + '''
import numpy as np
import pandas as pd
import pytest

import penchant
from penchant.plugins import default_registry
from penchant.testing import check_component

#: The parameters the kit builds the extractor with ({} checks the defaults).
PARAMS: dict = {"scale": "log"}
''' + _FIXTURE + '''

def test_counts_on_a_log_scale(component) -> None:
    frame = pd.DataFrame({"user": ["a", "a", "a", "b"], "item": ["x", "x", "x", "y"],
                          "time": ["2024-05-01T00:00:00Z"] * 4,
                          "event": ["view", "view", "purchase", "view"]})
    dataset = penchant.Dataset(penchant.Events.from_frame(frame))
    now = pd.Timestamp("2024-06-01", tz="UTC")

    def matrix(params: dict) -> np.ndarray:
        start = penchant.Features.start(dataset, now)
        return component(params).extract(start, penchant.Context()).matrix.toarray()

    assert matrix({})[0, 0] == pytest.approx(np.log1p(3))
    assert matrix({"scale": "linear"})[0, 0] == 3
    assert matrix({"scale": "linear", "events": ["purchase"]}).tolist() == [[1, 0], [0, 0]]
'''

MODULES["model"] = '''
"""__DIST__.

A Penchant model of item popularity that forgets old interactions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import penchant

PENCHANT_API = ">=1.0,<2"  # the plugin-API versions this plugin is written for


class __CLASS__(penchant.Model):
    """Trending items: each event adds its weight to its item's score, halved for every
    ``half_life`` it lies before the cutoff, so what sold last month outranks what sold
    last year. Every user gets the same scores; the recommender leaves out what each user
    already has.
    """

    name = "__COMPONENT__"
    description = "Item popularity with exponential time decay: recent interactions count more."
    params = (
        penchant.Param("half_life", "duration", "30d",
                       help="an event counts half as much for every this long before the cutoff"),
        penchant.Param("weights", "table", {}, items="float",
                       help="weight per event type, e.g. { view = 1, purchase = 5 }; "
                            "unlisted types weigh 1"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scores = np.zeros(0, dtype=np.float32)

    def fit(self, features: penchant.Features, validation: penchant.Validation | None,
            ctx: penchant.Context) -> None:
        frame = features.dataset.events.frame
        half_life = penchant.parse_duration(self.params.half_life).total_seconds()
        age = (features.now - frame["time"]).dt.total_seconds().to_numpy()
        decay = np.power(0.5, np.clip(age, 0, None) / half_life)
        weights = (frame["event"].astype("string").map(self.params.weights)
                   .astype("float64").fillna(1.0).to_numpy())
        columns = features.items.get_indexer(frame["item"].astype("string"))
        known = columns >= 0
        scores = np.bincount(columns[known], weights=np.nan_to_num(decay * weights)[known],
                             minlength=len(features.items))
        self.scores = scores.astype(np.float32)
        ctx.log(f"{self.name}: scored {len(self.scores)} items")

    def score(self, features: penchant.Features, rows: np.ndarray) -> np.ndarray:
        return np.repeat(self.scores[None, :], len(rows), axis=0)

    def state(self) -> dict[str, Any]:
        # Tensors only: checkpoints load with torch.load(weights_only=True).
        return {"scores": torch.from_numpy(self.scores)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.scores = state["scores"].numpy()


@penchant.hookimpl
def __HOOK__() -> list[type[penchant.Model]]:
    return [__CLASS__]
'''

TESTS["model"] = _TEST_HEAD + '''
import numpy as np
import pandas as pd
import pytest

import penchant
from penchant.plugins import default_registry
from penchant.testing import check_component

#: The parameters the kit builds the model with ({} checks the defaults).
PARAMS: dict = {"half_life": "14d"}
''' + _FIXTURE + '''

def test_recent_interactions_outweigh_old_ones(component) -> None:
    now = pd.Timestamp("2024-06-01", tz="UTC")
    days = {"old": [300, 301, 302], "new": [1], "never": []}
    frame = pd.DataFrame([(f"u{i}", item, now - pd.Timedelta(days=d))
                          for item, ds in days.items() for i, d in enumerate(ds)],
                         columns=["user", "item", "time"])
    dataset = penchant.Dataset(penchant.Events.from_frame(frame))
    items = pd.Index(list(days), dtype="string")
    features = penchant.Features.start(dataset, now, items=items)
    model = component({"half_life": "30d"})
    model.fit(features, None, penchant.Context())
    old, new, never = model.score(features, np.array([0]))[0]
    assert new > old > never == 0
    assert new == pytest.approx(0.5 ** (1 / 30), rel=1e-5)
'''

MODULES["recommender"] = '''
"""__DIST__.

A Penchant recommender of top-k lists with a length limit.
"""

from __future__ import annotations

import numpy as np

import penchant
from penchant.ranking import top_k

PENCHANT_API = ">=1.0,<2"  # the plugin-API versions this plugin is written for


class __CLASS__(penchant.Recommender):
    """The model's best-scored items per user, at most ``limit`` of them whatever length
    the run asks for: a shop widget with room for five shows five.
    """

    name = "__COMPONENT__"
    description = "Top-k of the model's scores, at most `limit` items per user."
    params = (
        penchant.Param("limit", "int", 0, min=0,
                       help="at most this many items per user (0: as many as asked for)"),
        penchant.Param("exclude_seen", "bool", True,
                       help="leave out items in the user's history"),
    )

    def recommend(self, model: penchant.Model, features: penchant.Features, rows: np.ndarray,
                  k: int, ctx: penchant.Context) -> penchant.Recommendations:
        if self.params.limit:
            k = min(k, self.params.limit)
        # top_k scores users in batches and ranks; seen items get -inf when excluded.
        return top_k(model.score, features, rows, k, ctx, self.params.exclude_seen)


@penchant.hookimpl
def __HOOK__() -> list[type[penchant.Recommender]]:
    return [__CLASS__]
'''

TESTS["recommender"] = _TEST_HEAD + '''
import numpy as np
import pytest

import penchant
from penchant.plugins import default_registry
from penchant.testing import check_component, tiny_features

#: The parameters the kit builds the recommender with ({} checks the defaults).
PARAMS: dict = {"limit": 3}
''' + _FIXTURE + '''

class ByColumn(penchant.Model):
    """A stand-in model: item j scores j for everyone."""

    name = "by-column"
    description = "Scores each item by its column number."

    def score(self, features: penchant.Features, rows: np.ndarray) -> np.ndarray:
        return np.tile(np.arange(features.shape[1], dtype=np.float32), (len(rows), 1))


def test_lists_at_most_limit_unseen_items_best_first(component) -> None:
    features = tiny_features()
    rows = np.arange(features.shape[0])
    frame = component({"limit": 3}).recommend(ByColumn(), features, rows, 10,
                                              penchant.Context()).frame
    assert frame.groupby("user").size().max() == 3
    for user, group in frame.groupby("user"):
        row = features.users.get_loc(user)
        unseen = np.flatnonzero(features.history[row].toarray().ravel() == 0)
        expected = features.items[np.sort(unseen)[::-1][:3]].tolist()
        assert group.sort_values("rank")["item"].tolist() == expected
'''
