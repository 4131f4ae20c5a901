"""The project's error classes form one tree under `UxoError`, each keeping its stdlib base."""

from __future__ import annotations

import importlib

import pytest

from acquisition import errors
from acquisition.errors import UxoError

TREE = [
    ("acquisition.messages", "MessageError", ValueError),
    ("acquisition.survey_csv", "SurveyCSVError", ValueError),
    ("acquisition.decode", "DecodeError", ValueError),
    ("acquisition.borehole.logs", "BoreholeFormatError", ValueError),
    ("acquisition.dsp.calibration", "CalibrationError", ValueError),
    ("acquisition.errors", "SettingError", ValueError),
    ("recorder.reader", "RecordingError", ValueError),
    ("recorder.repair", "RepairError", ValueError),
    ("recorder.export", "ExportError", ValueError),
    ("recorder.sink", "RecorderError", RuntimeError),
    ("simulator.scenario", "ScenarioError", ValueError),
    ("simulator.pty", "PtyClosedError", OSError),
    ("acquisition.outfile", "OutputError", OSError),
    ("acquisition.drivers.transport", "PortError", OSError),
    ("acquisition.drivers.lineproto", "ConfigError", ValueError),
    ("acquisition.drivers.registry", "UnknownDriverError", LookupError),
]


@pytest.mark.parametrize(("module", "name", "stdlib"), TREE)
def test_class_keeps_its_name_module_and_stdlib_base(module, name, stdlib) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert cls.__module__ == module and cls.__name__ == name
    assert issubclass(cls, UxoError) and issubclass(cls, stdlib)
    with pytest.raises(UxoError):
        raise cls("x")
    with pytest.raises(stdlib):
        raise cls("x")


def test_acquisition_classes_are_exported_from_errors() -> None:
    from acquisition.errors import BoreholeFormatError, SurveyCSVError
    from acquisition.survey_csv import SurveyCSVError as direct

    assert SurveyCSVError is direct and issubclass(BoreholeFormatError, errors.UxoValueError)
    assert set(errors.__all__) >= {"UxoError", "SettingError", "MessageError"}
    with pytest.raises(AttributeError):
        errors.NoSuchError  # noqa: B018


def test_a_survey_refusal_is_caught_as_uxo_error() -> None:
    from acquisition.survey_csv import parse_survey_csv

    with pytest.raises(UxoError, match="lacks required column"):
        parse_survey_csv("a,b\n1,2\n")


def test_driver_refusals_are_caught_as_uxo_errors(tmp_path) -> None:
    """The drivers' own refusals, raised by the real code paths, land in the tree."""
    from acquisition.drivers import registry
    from acquisition.drivers.lineproto import parse_column
    from acquisition.drivers.transport import open_port

    with pytest.raises(errors.UxoLookupError, match="no driver named 'no-such-driver'"):
        registry.get("no-such-driver")
    with pytest.raises(errors.UxoValueError, match="bad column"):
        parse_column("x*notanumber")
    missing = tmp_path / "ttyNOPE0"
    with pytest.raises(errors.UxoOSError, match="cannot open") as info:
        open_port(str(missing))
    assert isinstance(info.value, OSError) and str(missing) in str(info.value)
