"""Fuzzing pipeline files and ``--set`` overrides: whatever a user writes, loading either
gives a pipeline or a ``PipelineError`` whose every line names the file (with the table and
key) or the override, never a traceback from tomllib or a component's constructor.

Documents start from a valid pipeline and are mutated the ways people get them wrong:
unknown tables and plugins, unknown keys, values of the wrong type or out of range, tables
where values belong and the reverse, deep nesting, broken syntax, bytes that are not UTF-8.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import string
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from penchant.errors import PenchantError, PipelineError
from penchant.params import Param
from penchant.pipeline import (
    EVALUATION_PARAMS,
    FEEDBACK_PARAMS,
    PIPELINE_PARAMS,
    STAGES,
    load_pipeline,
    save_pipeline,
)
from penchant.plugins import Registry

REGISTRY = Registry()
BASE: dict[str, Any] = {
    "pipeline": {"name": "fuzz", "seed": 0},
    "source": {"plugin": "csv", "path": "events.csv",
               "columns": {"user": "user_id", "item": "item_id", "time": "ts"}},
    "preprocess": [{"plugin": "dedup"}],
    "features": [{"plugin": "interactions"}],
    "model": {"plugin": "popularity"},
    "recommender": {"plugin": "top-k"},
    "evaluation": {"horizons": ["7d"], "k": [5]},
}
KINDS = {stage: kind for stage, kind, _ in STAGES}
MANY = {stage for stage, _, many in STAGES if many}
FIXED = {"pipeline": PIPELINE_PARAMS, "evaluation": EVALUATION_PARAMS,
         "feedback": FEEDBACK_PARAMS}

keys = st.one_of(st.sampled_from(["plugin", "path", "columns", "epochs", "k", "", " ", "a.b",
                                  "${env:HOME}"]),
                 st.text(max_size=6))
scalars = st.one_of(
    st.integers(-2**63, 2**63 - 1), st.floats(), st.booleans(), st.text(max_size=8),
    st.sampled_from(["7d", "0d", "1.5h", "99999999999w", "1e400d", "2024-06-01", "0.8",
                     "${env:PENCHANT_FUZZ_UNSET}", "${env:}", "tab", "\n"]),
    st.dates(), st.datetimes(), st.datetimes(timezones=st.just(dt.UTC)), st.times(),
)
toml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(keys, inner, max_size=3), max_leaves=6)


def typed(param: Param) -> st.SearchStrategy[Any]:
    """Values of the right TOML type for ``param``, at its edges, or anything at all."""
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "int": st.integers(-3, 2**63 - 1), "float": st.floats(),
        "bool": st.booleans(), "str": st.text(max_size=8), "path": st.text(max_size=8),
        "duration": st.from_regex(r"\A\s?\d{1,12}(\.\d{1,3})?\s?(s|m|min|h|d|w)\Z"),
        "timepoint": st.one_of(st.floats(), st.dates().map(str), st.text(max_size=8)),
        "date": st.one_of(st.dates(), st.datetimes().map(str), st.text(max_size=8)),
    }
    item = by_type.get(param.items or "str", st.text(max_size=8))
    if param.type == "list":
        right = st.lists(item, max_size=3)
    elif param.type == "table":
        right = st.dictionaries(st.sampled_from(param.keys) if param.keys else keys, item,
                                max_size=3)
    else:
        right = by_type[param.type]
    options = [right, right, toml_values]  # mostly right: most tables then get validated
    if param.choices:
        options.append(st.sampled_from(param.choices))
    return st.one_of(options)


def schema_of(table: str, spec: Any) -> tuple[Param, ...]:
    """The parameters a table takes: fixed for [pipeline] and the like, else its plugin's."""
    if table in FIXED:
        return FIXED[table]
    plugin = spec.get("plugin")
    if table not in KINDS or not isinstance(plugin, str) or plugin not in REGISTRY.names(
            KINDS[table]):
        return ()
    return REGISTRY.get(KINDS[table], plugin).schema()


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """The valid base pipeline after a few mutations."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(0, 3))):
        table = draw(st.sampled_from([*FIXED, *KINDS, "modle"]))
        action = draw(st.sampled_from(["set"] * 5 + ["plugin", "delete", "replace"]))
        if action == "replace":
            doc[table] = draw(toml_values)
            continue
        if action == "delete":
            doc.pop(table, None)
            continue
        tables = doc.setdefault(table, [{}] if table in MANY else {})
        specs = [tables] if isinstance(tables, dict) else [
            t for t in tables if isinstance(t, dict)] if isinstance(tables, list) else []
        if not specs:
            continue
        spec = draw(st.sampled_from(specs))
        if action == "plugin":
            names = REGISTRY.names(KINDS.get(table, "model"))
            spec["plugin"] = draw(st.one_of(st.sampled_from(names), toml_values))
            continue
        params = schema_of(table, spec)
        if params and draw(st.integers(0, 3)):  # mostly known keys, sometimes unknown ones
            param = draw(st.sampled_from(params))
            spec[param.name] = draw(typed(param))
        else:
            spec[draw(keys)] = draw(toml_values)
    return doc


#: Loading a pipeline takes milliseconds, so these properties try three times as many
#: examples as the active profile's (300 in CI).
MORE = settings(max_examples=3 * settings.default.max_examples)


def assert_names_where(error: PenchantError, path: Path, overrides: Sequence[str]) -> None:
    """An override's error starts with that override; a file's names the file on every line
    (one line per problem) with the table or the place in the text (only nesting too deep
    has neither)."""
    message = str(error)
    if message.startswith("--set "):
        assert any(message.startswith(f"--set {o!r}: ") for o in overrides), message
        return
    for line in message.splitlines():
        assert str(path) in line, message
        assert re.search(r"\[|\bline \d|end of document|nested", line), message


def load_or_refuse(data: bytes, overrides: Sequence[str] = ()) -> None:
    """Load ``data`` as a pipeline file; when that works, save what a run records and load
    that again."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pipeline.toml"
        path.write_bytes(data)
        try:
            pipeline = load_pipeline(path, REGISTRY, overrides)
        except PenchantError as error:
            event("refused")
            assert isinstance(error, PipelineError)
            assert_names_where(error, path, overrides)
            return
        event("loaded")
        again = save_pipeline(pipeline.resolved_doc(REGISTRY), Path(folder) / "saved.toml")
        reloaded = load_pipeline(again, REGISTRY)
    assert {s: [c.plugin for c in specs] for s, specs in reloaded.stages.items()} == \
        {s: [c.plugin for c in specs] for s, specs in pipeline.stages.items()}


@given(documents())
@MORE
@example({**BASE, "evaluation": {"horizons": ["99999999999w"]}})  # OverflowError
@example({**BASE, "source": {**BASE["source"], "path": "\0"}})  # ValueError from pathlib
def test_any_pipeline_document_loads_or_is_refused_naming_file_table_and_key(
        doc: dict[str, Any]) -> None:
    load_or_refuse(tomli_w.dumps(doc).encode())


@st.composite
def damaged_texts(draw: st.DrawFn) -> bytes:
    """A valid pipeline's text, edited at random: syntax errors, junk bytes, deep nesting."""
    text = tomli_w.dumps(BASE)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        insert = draw(st.one_of(st.sampled_from([*"[]{}=\"'\n.,#\\ ", "[[", "]]"]),
                                st.text(max_size=3)))
        text = text[:at] + insert + text[at + cut:]
    data = text.encode()
    depth = draw(st.sampled_from([0, 0, 50, 5000]))
    if depth:
        data += b"\ndeep = " + b"[" * depth + b"]" * depth + b"\n"
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=4)) + data[at:]
    return data


@given(damaged_texts())
@MORE
@example(b"deep = " + b"[" * 5000)  # RecursionError from tomllib
@example(b'[pipeline]\nname = "caf\xe9"\n')  # latin-1: named a byte position, not a line
def test_any_bytes_load_or_are_refused_naming_the_file(data: bytes) -> None:
    load_or_refuse(data)


#: Pieces of an override's left side: real tables and keys, list indexes, and junk.
segments = st.one_of(
    st.sampled_from([*FIXED, *KINDS, "plugin", "epochs", "columns", "user", "k", "horizons",
                     "0", "1", "2", "9", "-1", "²", "01", "[0]", "[1]", ""]),
    st.text(alphabet=string.ascii_letters + string.digits + ".[]=_- ", max_size=4),
)


def toml_literal(value: Any) -> str:
    """``value`` in TOML's inline syntax: what a user types after ``--set key=``."""
    if isinstance(value, dict):
        pairs = (f"{toml_literal(str(k))} = {toml_literal(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_literal, value)) + "]"
    return tomli_w.dumps({"v": value})[4:].strip()


literals = st.one_of(
    toml_values.map(toml_literal),
    st.sampled_from(["", "[", "{", "'", "\"", "[" * 5000, "{a=" * 2000, "x\ny = 1",
                     "1 2", "${env:PENCHANT_FUZZ_UNSET}", "[1, 'a']", "{ user = 'u' }"]),
    st.text(max_size=8),
)
junk_overrides = st.builds(lambda path, sep, value: f"{path}{sep}{value}",
                           st.lists(segments, min_size=1, max_size=4).map(".".join),
                           st.sampled_from(["=", "=", " = ", ""]), literals)


@st.composite
def key_overrides(draw: st.DrawFn) -> str:
    """A real key of the base pipeline set to a value of about the right type."""
    table = draw(st.sampled_from([*FIXED, *KINDS]))
    spec = BASE[table][0] if table in MANY else BASE.get(table, {})
    param = draw(st.sampled_from([*schema_of(table, spec), Param("plugin", "str")]))
    index = f".{draw(st.integers(0, 1))}" if table in MANY else ""
    return f"{table}{index}.{param.name}={toml_literal(draw(typed(param)))}"


overrides = st.one_of(junk_overrides, key_overrides())

@given(st.lists(overrides, min_size=1, max_size=3))
@MORE
@example(["preprocess.².keep=1"])  # "²".isdigit() but int("²") raises
@example(["model.epochs=" + "[" * 5000])  # RecursionError from tomllib
def test_any_set_override_applies_or_is_refused_naming_it(sets: list[str]) -> None:
    load_or_refuse(tomli_w.dumps(BASE).encode(), sets)
