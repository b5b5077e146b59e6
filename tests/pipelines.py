"""Pipeline files for tests that are about one stage (a source, a writer) and want the rest
to be quick: interaction counts, popularity, top-k."""

from __future__ import annotations

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
