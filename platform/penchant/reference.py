"""The plugin reference, rendered from the code so that it cannot drift from it.

``python -m penchant.reference > docs/plugins/reference.md`` regenerates the page; a test
fails when the committed page differs from what the code says.
"""

from __future__ import annotations

import inspect

from penchant import components, hookspecs
from penchant.params import TYPES, Param
from penchant.plugins import REGISTRATION_HOOKS

_METHODS = {
    "Source": ("available_columns", "describe_origin", "load"),
    "Preprocessor": ("apply",),
    "FeatureExtractor": ("extract",),
    "Model": ("fit", "score", "state", "load_state", "explain"),
    "Recommender": ("fit", "recommend", "state", "load_state"),
}


def _doc(obj: object) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _signature(fn: object) -> str:
    return str(inspect.signature(fn)).replace("'", "")


def render() -> str:
    lines = ["# Plugin reference", "",
             "Generated from `platform/penchant/hookspecs.py`, `components.py` and `params.py` "
             "by `python -m penchant.reference`; do not edit by hand.", "",
             f"Plugin API version: **{hookspecs.API_VERSION}**.", "", "## The contract", "",
             _doc(hookspecs), "", "## Hooks", ""]
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("penchant_"):
            continue
        lines += [f"### `{name}{_signature(fn)}`", "", _doc(fn), ""]
    lines += ["## Component kinds", "",
              "| kind | base class | registration hook |", "|---|---|---|"]
    lines += [f"| {kind} | `penchant.{components.BASES[kind].__name__}` | `{hook}` |"
              for kind, hook in REGISTRATION_HOOKS.items()]
    lines.append("")
    for kind, base in components.BASES.items():
        lines += [f"### `penchant.{base.__name__}` ({kind})", "", _doc(base), ""]
        for method in _METHODS[base.__name__]:
            fn = getattr(base, method)
            text = _doc(fn)
            lines += [f"- `{method}{_signature(fn)}`" + (f": {text}" if text else "")]
        lines.append("")
    lines += ["### `penchant.Context`", "", _doc(components.Context), "",
              "## Parameters", "", _doc(Param), "",
              "Types: " + ", ".join(f"`{t}`" for t in TYPES) + ".", ""]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
