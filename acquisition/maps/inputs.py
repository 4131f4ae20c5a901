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
import math
from typing import Any

import numpy as np

from acquisition.coords import (
    CRS_KEY,
    ORIGIN_E_KEY,
    ORIGIN_N_KEY,
    ROTATION_KEY,
    CoordinateError,
    parse_origin,
)
from acquisition.survey import Survey, SurveyReadError, read_survey


class InputError(ValueError):
    """Input a command cannot use; the message names the file (and line) and what was expected."""


def add_survey_input_arguments(p: argparse.ArgumentParser) -> None:
    """``--crs``, ``--grid-origin``, ``--grid-rotation`` (as ``uxo process``), ``--stream``."""
    g = p.add_argument_group("coordinates (default: from the file's metadata)")
    g.add_argument("--crs", metavar="CRS", help="projected CRS of the survey, e.g. EPSG:32648")
    g.add_argument("--grid-origin", metavar="E,N",
                   help="CRS easting,northing of the local grid's origin (a taped grid)")
    g.add_argument("--grid-rotation", type=float, metavar="DEG",
                   help="azimuth of the grid's y axis, degrees clockwise from CRS north")
    g.add_argument("--stream", help="stream id inside an HDF5 recording")


def survey_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The metadata keys the coordinate options set (only those given)."""
    out: dict[str, Any] = {}
    if getattr(args, "crs", None):
        out[CRS_KEY] = args.crs
    if getattr(args, "grid_origin", None):
        try:
            e, n = parse_origin(args.grid_origin)
        except CoordinateError as exc:
            raise InputError(f"--grid-origin: {exc}") from None
        out[ORIGIN_E_KEY], out[ORIGIN_N_KEY] = e, n
    if getattr(args, "grid_rotation", None) is not None:
        out[ROTATION_KEY] = args.grid_rotation
    return out


def load_survey(path: str, args: argparse.Namespace | None = None,
                overrides: dict[str, Any] | None = None) -> Survey:
    """`read_survey` with the command's coordinate options; an empty survey is an `InputError`."""
    md = dict(overrides or {})
    if args is not None:
        md.update(survey_overrides(args))
    try:
        s = read_survey(path, metadata=md, stream=getattr(args, "stream", None))
    except (SurveyReadError, CoordinateError) as exc:
        raise InputError(str(exc)) from None
    ok = np.isfinite(s.x) & np.isfinite(s.y) & np.isfinite(s.value)
    if not ok.any():
        raise InputError(f"{path}: empty survey: no reading with a position and a value "
                         "(nothing to map or report)")
    return s


def lane_spacing(s: Survey) -> float:
    v = s.metadata.get("lane_spacing_m")
    try:
        f = float(v) if v not in (None, "") else 1.0
    except ValueError:
        raise InputError(f"{s.source}: metadata lane_spacing_m: {v!r} is not a number") from None
    if not (math.isfinite(f) and f > 0):
        raise InputError(f"{s.source}: metadata lane_spacing_m must be > 0, got {v!r}")
    return f


def geometry_of(s: Survey) -> dict[str, Any]:
    """Sensor geometry from the survey (stated geometry, then metadata, then defaults)."""
    md = s.metadata
    g = dict(s.geometry)
    g.setdefault("kind", md.get("kind", "gradient") or "gradient")
    g.setdefault("sensor_height_m", float(md.get("sensor_height_m", 0.3)))
    g.setdefault("sensor_separation_m", float(md.get("sensor_separation_m", 0.65)))
    return g


def process(s: Survey, args: argparse.Namespace | None = None) -> Any:
    """Run the batch DSP on a survey (as ``uxo process`` does); returns its `SurveyResult`."""
    from acquisition.cli_common import field_from_args
    from acquisition.dsp.batch import process_survey
    from acquisition.dsp.pipeline import LaneConfig

    md = s.metadata

    def num(key: str) -> float | None:
        v = md.get(key)
        return None if v in (None, "") else float(v)

    try:
        field = field_from_args(args if args is not None else argparse.Namespace(), md)
        config = LaneConfig(lane_spacing_m=lane_spacing(s), noise_nT=num("soil_noise_nT"),
                            threshold_nT=num("soil_threshold_nT"))
        return process_survey(s.x, s.y, s.value, t=s.t, lane=s.lane, geometry=geometry_of(s),
                              field=field, config=config)
    except ValueError as exc:
        raise InputError(f"{s.source}: {exc}") from None
