"""The project's exception tree: one `UxoError` base, stdlib mixins per kind.

Every error the project raises on purpose derives from `UxoError`, so a
caller (a script, the CLI) can catch "anything uxo refused" in one clause,
while each class also keeps its stdlib ancestor (`ValueError`, `OSError`,
`LookupError`, `RuntimeError`), so code written against those goes on
working. The pattern is python-can's (``CanTimeoutError(CanError,
TimeoutError)``). The concrete classes stay in the modules that raise them;
this module holds the bases and names the acquisition classes lazily (so
importing it costs nothing). docs/developing.md lists the whole tree.
"""

from __future__ import annotations

import importlib
from typing import Any


class UxoError(Exception):
    """Base of every error the project raises on purpose."""


class UxoValueError(UxoError, ValueError):
    """Bad input: a file, a message, a setting or metadata value."""


class UxoLookupError(UxoError, LookupError):
    """Something asked for by name is not there (a driver, a stream)."""


class UxoOSError(UxoError, OSError):
    """A port, pty or file that cannot be used."""


class UxoRuntimeError(UxoError, RuntimeError):
    """A component in a state where it cannot do what was asked (a closed sink)."""


class SettingError(UxoValueError):
    """A setting, option or metadata value outside its allowed range or unknown.

    The message names the option or key, the value given and what is allowed,
    e.g. ``threshold_nT = 0.0 is out of range: allowed > 0``.
    """


# Concrete classes of the acquisition package, by name -> module (loaded on use).
_LAZY = {
    "MessageError": "acquisition.messages",
    "SurveyCSVError": "acquisition.survey_csv",
    "DecodeError": "acquisition.decode",
    "BoreholeFormatError": "acquisition.borehole.logs",
    "CalibrationError": "acquisition.dsp.calibration",
    "PortError": "acquisition.drivers.transport",
    "ConfigError": "acquisition.drivers.lineproto",
    "UnknownDriverError": "acquisition.drivers.registry",
}

__all__ = ["SettingError", "UxoError", "UxoLookupError", "UxoOSError", "UxoRuntimeError",
           "UxoValueError", *_LAZY]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
