"""Built-in sources: where events come from."""

from __future__ import annotations

import penchant
from penchant_plugins.sources.csv import CsvSource


@penchant.hookimpl
def penchant_register_sources() -> list[type[penchant.Source]]:
    return [CsvSource]
