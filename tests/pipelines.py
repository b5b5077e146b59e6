"""Pipeline files for tests that are about one stage (a source, a writer) and want the rest
to be quick: interaction counts, popularity, top-k."""

from __future__ import annotations

import json
from typing import Any

import penchant

QUICK_STAGES = """
[[features]]
plugin = "interactions"

[model]
plugin = "popularity"

[recommender]
plugin = "top-k"

[evaluation]
horizons = ["{horizon}"]
k = [5]
recommend_k = 5
baselines = []
"""


def quick_pipeline(source: str, horizon: str = "7d") -> str:
    """A whole pipeline around ``source`` (the ``[source]`` table's lines, plugin included)."""
    return f"[source]\n{source.strip()}\n" + QUICK_STAGES.format(horizon=horizon)


class Said:
    """An observer that keeps everything a run says: log lines, each stage's report and a
    failure's message, for tests that check what must never be said."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @penchant.hookimpl
    def penchant_on_log(self, run: Any, message: str) -> None:
        self.lines.append(message)

    @penchant.hookimpl
    def penchant_on_stage_end(self, run: Any, stage: str, seconds: float,
                              summary: dict[str, Any]) -> None:
        self.lines.append(json.dumps(summary, default=str))

    @penchant.hookimpl
    def penchant_on_run_failed(self, run: Any, status: str, error: str) -> None:
        self.lines.append(error)
