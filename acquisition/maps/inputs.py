"""Survey input for the map/report/QA/daily commands: coordinate options, loading, processing.

Every command takes the coordinate options of ``uxo process`` (``--crs``,
``--grid-origin E,N``, ``--grid-rotation DEG``); they reach `read_survey` as
metadata overrides, so the command line wins over the file. `process` runs the
batch DSP with the sensor geometry and detection settings the file's metadata
states (the same defaults as ``uxo process``); it is the one place to swap for
a survey-level processing call.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from acquisition import survey_cli
from acquisition.coords import CoordinateError
from acquisition.survey import Survey, SurveyReadError, read_survey


class InputError(ValueError):
    """Input a command cannot use; the message names the file (and line) and what was expected."""


def add_survey_input_arguments(p: argparse.ArgumentParser) -> None:
    """The survey options of every reading command (`acquisition.survey_cli`), and --stream."""
    survey_cli.add_survey_input_arguments(p)
    p.add_argument("--stream", help="stream id inside an HDF5 recording")


def load_survey(path: str, args: argparse.Namespace | None = None,
                overrides: dict[str, Any] | None = None) -> Survey:
    """`read_survey` with the command's coordinate options; an empty survey is an `InputError`."""
    kw: dict[str, Any] = {"metadata": {}}
    try:
        if args is not None:
            kw = survey_cli.survey_read_kwargs(args)
        kw["metadata"] = {**(overrides or {}), **kw["metadata"]}
        s = read_survey(path, stream=getattr(args, "stream", None), **kw)
    except (SurveyReadError, CoordinateError, ValueError) as exc:
        raise InputError(str(exc)) from None
    ok = np.isfinite(s.x) & np.isfinite(s.y) & np.isfinite(s.value)
    if not ok.any():
        raise InputError(f"{path}: empty survey: no reading with a position and a value "
                         "(nothing to map or report)")
    return s


def lane_spacing(s: Survey) -> float:
    """The survey's nominal lane spacing, resolved as `acquisition.process_survey` resolves it."""
    from acquisition.processing import resolve_settings

    try:
        return float(resolve_settings(s, {}).config.lane_spacing_m)
    except ValueError as exc:
        raise InputError(f"{s.source}: {exc}") from None


def process(s: Survey, args: argparse.Namespace | None = None) -> Any:
    """Run the DSP on a survey exactly as ``uxo process`` does; returns its `SurveyResult`.

    The settings (sensor, lane spacing, soil calibration, the site's field)
    resolve from the survey's metadata in `acquisition.processing`, the one
    place that does it for every command.
    """
    from acquisition.processing import process_survey

    try:
        return process_survey(s).result
    except ValueError as exc:
        raise InputError(f"{s.source}: {exc}") from None
