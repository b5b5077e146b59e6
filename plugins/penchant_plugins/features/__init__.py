"""Built-in feature extractors."""

from __future__ import annotations

from penchant import hookimpl
from penchant_plugins.features.interactions import Interactions


@hookimpl
def penchant_register_features() -> list[type]:
    return [Interactions]
