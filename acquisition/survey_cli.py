"""Command-line options that say how to read a survey file, shared by every command that reads one.

``uxo convert``, ``uxo process`` and the map/report/qa commands take the same
options, added by `add_survey_input_arguments`; `survey_read_kwargs` turns them
into `acquisition.survey.read_survey` arguments, so options mean the same thing
everywhere and override the file's metadata keys (docs/formats.md):

    --from FORMAT          force a reader instead of sniffing  (read_survey format=)
    --columns MAP          x=Easting,y=Northing,value=Grad      (read_survey columns=)
    --crs EPSG:N           metadata crs
    --grid-origin E,N      metadata grid_origin_e, grid_origin_n
    --grid-rotation DEG    metadata grid_rotation_deg
    --value-unit U         metadata value_unit (nT, nT/m, pT, T)

`survey_notes` lists what was assumed (unit not stated, CRS chosen, readers'
guesses) and `bad_row_lines` the rejected rows, for the command's report.
"""

from __future__ import annotations

import argparse
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

#: Rejected rows listed one by one before the rest are only counted.
BAD_ROWS_SHOWN = 20
#: A survey wider than this (m) is more likely wrong columns or a wrong CRS.
WIDE_SURVEY_M = 20_000.0


def parse_columns(text: str | None) -> dict[str, str] | None:
    """``"x=Easting,y=Northing,value=Grad"`` -> {"x": "Easting", ...}; ValueError if malformed."""
    if text is None or not text.strip():
        return None
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, name = part.partition("=")
        key, name = key.strip().lower(), name.strip()
        if not sep or not key or not name:
            raise ValueError(f"--columns: expected KEY=COLUMN pairs separated by commas "
                             f"(e.g. x=Easting,y=Northing,value=Grad), got {part.strip()!r}")
        if key in out:
            raise ValueError(f"--columns: {key!r} given twice")
        out[key] = name
    return out


def add_frame_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add --crs, --grid-origin, --grid-rotation (where local metres lie on the Earth).

    Commands that place something other than a survey file (borehole collars)
    take these alone; `frame_metadata` turns them into metadata keys.
    """
    g = parser.add_argument_group("coordinates (default: from the file's metadata)")
    g.add_argument("--crs", metavar="CRS",
                   help="coordinate system of eastings/northings or of a taped grid's origin "
                        "(e.g. EPSG:32648, UTM 48N; VN-2000 zones too). Lat/lon go to the "
                        "survey's UTM zone unless this is given")
    g.add_argument("--grid-origin", metavar="E,N",
                   help="CRS coordinates of a taped grid's (0, 0); needs --crs")
    g.add_argument("--grid-rotation", type=float, metavar="DEG",
                   help="azimuth of the taped grid's y axis, degrees clockwise from the "
                        "CRS's north")
    return g


def add_survey_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --from, --columns, --value-unit and the coordinate options."""
    g = parser.add_argument_group("reading the survey file (default: from its content and "
                                  "metadata; see `uxo formats`)")
    g.add_argument("--from", dest="from_format", metavar="FORMAT",
                   help="file format, instead of sniffing it (see `uxo formats`)")
    g.add_argument("--columns", metavar="MAP",
                   help="columns of a generic CSV/XYZ: x=Easting,y=Northing,value=Grad or "
                        "lat=Lat,lon=Lon,value=TMI (also t=, lane=)")
    # not argparse choices: the library checks units for files and options alike,
    # with one message naming the unit and the ones it knows
    g.add_argument("--value-unit", metavar="UNIT",
                   help="unit of the file's values: nT, nT/m, pT or T (default: the file's "
                        "value_unit, else nT)")
    add_frame_arguments(parser)


def frame_metadata(args: argparse.Namespace) -> dict[str, str]:
    """Metadata keys set by --crs, --grid-origin, --grid-rotation; ValueError if malformed."""
    md: dict[str, str] = {}
    if getattr(args, "crs", None):
        md[CRS_KEY] = args.crs.strip()
    if getattr(args, "grid_origin", None):
        try:
            e, n = parse_origin(args.grid_origin)
        except CoordinateError as exc:
            raise ValueError(f"--grid-origin: {exc}") from None
        md[ORIGIN_E_KEY], md[ORIGIN_N_KEY] = repr(e), repr(n)
    if getattr(args, "grid_rotation", None) is not None:
        md[ROTATION_KEY] = repr(float(args.grid_rotation))
    return md


def survey_overrides(args: argparse.Namespace) -> dict[str, str]:
    """Metadata keys set by the options (they override the file's); ValueError if malformed."""
    md = frame_metadata(args)
    if getattr(args, "value_unit", None):
        md["value_unit"] = args.value_unit
    return md


def survey_read_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``format``, ``columns`` and ``metadata`` for `read_survey`, from the options."""
    return {"format": getattr(args, "from_format", None),
            "columns": parse_columns(getattr(args, "columns", None)),
            "metadata": survey_overrides(args)}


def survey_notes(survey: Any, overrides: dict[str, str] | None = None) -> list[str]:
    """What was assumed while reading ``survey`` (an `acquisition.survey.Survey`), one per line."""
    overrides = overrides or {}
    notes: list[str] = []
    if not survey.unit_stated:
        notes.append("values read as nT: the file does not say (give --value-unit)")
    elif survey.value_unit != "nT":
        notes.append(f"values converted from {survey.value_unit} to nT")
    if survey.positions == "geographic" and CRS_KEY not in overrides and \
            survey.frame.crs is not None:
        notes.append(f"lat/lon projected to {survey.frame.crs} (the survey's UTM zone; "
                     "--crs to choose another)")
    if survey.positions == "local" and not survey.frame.georeferenced:
        notes.append("positions are a local grid with no CRS (--crs, --grid-origin, "
                     "--grid-rotation place it)")
    if survey.n:
        span = max(float(np.ptp(survey.x)), float(np.ptp(survey.y)))
        if span > WIDE_SURVEY_M:
            notes.append(f"positions span {span / 1000:.0f} km: far wider than a clearance "
                         "survey; check the position columns and the CRS")
    kind = survey.metadata.get("kind", "").strip()
    if kind in ("gradient", "tf_gradient") and not survey.metadata.get("sensor_separation_m"):
        notes.append(f"kind {kind}: sensor separation not stated, processing assumes 0.65 m")
    if not kind:
        notes.append("sensor kind not stated (metadata kind): processing assumes gradient")
    notes.extend(survey.notes)
    return notes


def bad_row_lines(survey: Any, limit: int = BAD_ROWS_SHOWN, suffix: str = " (row skipped)"
                  ) -> list[str]:
    """``FILE:LINE: reason (row skipped)`` for the first ``limit`` rejects, then a count."""
    bad = survey.bad_rows
    out = [f"{survey.source}:{b.line}: {b.reason}{suffix}" for b in bad[:limit]]
    if len(bad) > limit:
        out.append(f"{survey.source}: ... and {len(bad) - limit} more rows rejected")
    return out
