"""Built-in preprocessors: cleaning and filtering steps between the source and the features."""

from __future__ import annotations

import penchant
from penchant_plugins.preprocess.dedup import Deduplicate
from penchant_plugins.preprocess.drop_columns import DropColumns
from penchant_plugins.preprocess.drop_malformed import DropMalformed
from penchant_plugins.preprocess.fill_missing import FillMissing
from penchant_plugins.preprocess.kcore import KCore
from penchant_plugins.preprocess.pseudonymize import Pseudonymize


@penchant.hookimpl
def penchant_register_preprocessors() -> list[type[penchant.Preprocessor]]:
    return [Deduplicate, DropColumns, DropMalformed, FillMissing, KCore, Pseudonymize]
