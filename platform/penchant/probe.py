"""Checking a pipeline's source before a long run: connect, map, read a sample, count.

``penchant sources test`` prints a :class:`SourceProbe`; the desktop app shows the same one,
so both tell a user the same thing about a connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from penchant.components import Context
from penchant.errors import PenchantError

if TYPE_CHECKING:
    from penchant.pipeline import Pipeline
    from penchant.plugins import Registry


@dataclass
class SourceProbe:
    """What a source looks like from here. ``missing`` maps canonical names to mapped
    columns the source lacks (then there is no sample); ``problems`` is what the checks
    would drop from the sample (see :mod:`penchant.loading`), by problem."""

    plugin: str
    origin: str
    columns: list[str]
    mapping: dict[str, str]
    missing: dict[str, str] = field(default_factory=dict)
    sample: pd.DataFrame | None = None
    problems: dict[str, Any] = field(default_factory=dict)
    count: int | None = None
    seconds: float = 0.0

    def render(self) -> str:
        lines = [f"source: {self.plugin} — {self.origin}",
                 f"columns: {', '.join(map(str, self.columns))}",
                 "mapping: " + ", ".join(f"{k} = {v!r}" + (" (missing)" if k in self.missing
                                                           else "")
                                         for k, v in self.mapping.items())]
        if self.missing:
            lines.append("no sample: fix the mapping first")
            return "\n".join(lines)
        lines.append("rows: " + ("unknown without a full read" if self.count is None
                                 else f"{self.count:,}"))
        if self.sample is not None:
            lines += [f"first {len(self.sample)} events after mapping:",
                      self.sample.to_string(index=False)]
        for problem, found in self.problems.items():
            shown = ", ".join(map(str, found["rows"][:10]))
            lines.append(f"problem in the sample: {found['count']} with {problem} ({shown})")
        lines.append(f"checked in {self.seconds:.2f} s")
        return "\n".join(lines)


def probe_source(pipeline: Pipeline, registry: Registry, rows: int = 10,
                 count: bool = True, ctx: Context | None = None) -> SourceProbe:
    """Probe ``pipeline``'s source. Bad rows in the sample are reported, not raised: the
    point is to see them. Connection and mapping errors raise as in a run."""
    started = time.perf_counter()
    spec = pipeline.one("source")
    source = pipeline.create(replace(spec, params={**spec.params, "on_error": "drop"}),
                             registry)
    columns = source.available_columns()
    mapping = dict(source.params.columns)
    probe = SourceProbe(spec.plugin, source.describe_origin(), columns, mapping,
                        missing={k: v for k, v in mapping.items() if v not in columns})
    if not probe.missing:
        ctx = ctx or Context()
        events = source.sample(ctx, rows).events
        probe.sample = _readable(events.frame)
        probe.problems = dict(ctx.report.get("dropped", {}))
        probe.count = source.count() if count else None
    probe.seconds = time.perf_counter() - started
    return probe


@dataclass
class PreviewStep:
    """The sample as it stands after one step: the source's mapping, then each
    preprocessor. ``error`` is set when the step could not run on the sample."""

    label: str
    rows: int
    dropped: int
    head: pd.DataFrame
    error: str | None = None


def preview_steps(pipeline: Pipeline, registry: Registry, sample: int = 5000,
                  rows: int = 50, ctx: Context | None = None) -> list[PreviewStep]:
    """The first ``sample`` events through the source and each preprocessor in turn, for
    the app's data preview; each step keeps ``rows`` rows to show. A step that fails on
    the sample (it may need side tables a sample lacks) is reported and ends the preview;
    the source's own errors raise, as in a run."""
    ctx = ctx or Context()
    spec = pipeline.one("source")
    source = pipeline.create(replace(spec, params={**spec.params, "on_error": "drop"}),
                             registry)
    dataset = source.sample(ctx, sample)
    events = dataset.events
    dropped = sum(found["count"] for found in ctx.report.get("dropped", {}).values())
    steps = [PreviewStep(f"source: {spec.plugin}", len(events), dropped,
                         _readable(events.frame.head(rows)))]
    dataset = dataset.noted(f"sample of {source.describe_origin()}")
    for i, step_spec in enumerate(pipeline.stages["preprocess"]):
        label = f"preprocess {i + 1}: {step_spec.plugin}"
        before = len(dataset.events)
        try:
            dataset = pipeline.create(step_spec, registry).apply(dataset, Context())
        except PenchantError as exc:
            steps.append(PreviewStep(label, before, 0, pd.DataFrame(), str(exc)))
            break
        steps.append(PreviewStep(label, len(dataset.events), before - len(dataset.events),
                                 _readable(dataset.events.frame.head(rows))))
    return steps


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical columns as a user reads them: ids as text, times in ISO form."""
    out = frame.copy()
    out["time"] = out["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out
