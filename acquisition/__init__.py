"""uxo-acquisition: magnetic UXO detector acquisition, processing and events.

Importing the package is cheap: sub-modules load what they need, and the
public names below are imported on first use.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["ProcessedSurvey", "ProcessingError", "Survey", "SurveyFrame", "SurveyReadError",
           "process_survey", "read_survey"]

_LAZY = {"Survey": "acquisition.survey", "SurveyReadError": "acquisition.survey",
         "read_survey": "acquisition.survey", "SurveyFrame": "acquisition.coords",
         "process_survey": "acquisition.processing",
         "ProcessedSurvey": "acquisition.processing",
         "ProcessingError": "acquisition.processing"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'acquisition' has no attribute {name!r}")


try:
    __version__ = version("uxo-acquisition")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
