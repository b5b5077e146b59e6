"""Built-in sources: where events come from."""

from __future__ import annotations

import penchant
from penchant_plugins.sources.csv import CsvSource
from penchant_plugins.sources.mongodb import MongoSource
from penchant_plugins.sources.parquet import ParquetSource
from penchant_plugins.sources.sql import SqlSource


@penchant.hookimpl
def penchant_register_sources() -> list[type[penchant.Source]]:
    return [CsvSource, MongoSource, SqlSource, ParquetSource]
