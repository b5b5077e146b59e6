"""Built-in recommenders."""

from __future__ import annotations

from penchant import hookimpl
from penchant_plugins.recommenders.hybrid import Hybrid
from penchant_plugins.recommenders.topk import TopK


@hookimpl
def penchant_register_recommenders() -> list[type]:
    return [TopK, Hybrid]
