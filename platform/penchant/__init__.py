"""Penchant: a plugin platform that forecasts shoppers' interests and recommends from them.

This module is the public API that plugins and the desktop app use; everything else in the
package is internal and may change between releases.
"""

from __future__ import annotations

from penchant.components import (
    Component,
    Context,
    FeatureExtractor,
    Model,
    Preprocessor,
    Recommender,
    Source,
    Validation,
)
from penchant.data import (
    EPOCH_MS_FROM,
    Dataset,
    Events,
    Features,
    Recommendations,
    distinct_pairs,
)
from penchant.errors import DataError, PenchantError, PipelineError, PluginError, StoreError
from penchant.hookspecs import hookimpl
from penchant.params import Param, ParamValues, parse_duration
from penchant.secrets import mask_url

__version__ = "0.1.0"

__all__ = [
    "EPOCH_MS_FROM",
    "Component",
    "Context",
    "DataError",
    "Dataset",
    "Events",
    "FeatureExtractor",
    "Features",
    "Model",
    "Param",
    "ParamValues",
    "PenchantError",
    "PipelineError",
    "PluginError",
    "Preprocessor",
    "Recommendations",
    "Recommender",
    "Source",
    "StoreError",
    "Validation",
    "__version__",
    "distinct_pairs",
    "hookimpl",
    "mask_url",
    "parse_duration",
]
