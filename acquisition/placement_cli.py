"""Command-line options that place a survey or borehole collars on the Earth, and read a survey.

``--crs``, ``--grid-origin E,N``, ``--grid-rotation DEG`` (`add_frame_arguments`)
become the metadata keys ``crs``, ``grid_origin_e``/``grid_origin_n``,
``grid_rotation_deg`` (`frame_metadata`), so options override the file's keys
(`acquisition.coords.SurveyFrame.from_metadata`). `add_survey_input_arguments`
adds ``--from``, ``--columns`` and ``--value-unit`` beside them, and
`survey_read_kwargs` turns them all into `acquisition.read_survey` arguments.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_frame_arguments(p: argparse.ArgumentParser) -> Any:
    """--crs, --grid-origin, --grid-rotation: where local metres lie on the Earth."""
    g = p.add_argument_group("coordinates (default: from the file)")
    g.add_argument("--crs", metavar="EPSG:N", help="CRS of the positions or of the taped grid "
                   "(e.g. EPSG:32648, UTM 48N); lat/lon files default to their UTM zone")
    g.add_argument("--grid-origin", metavar="E,N",
                   help="CRS easting,northing of the taped grid's (0, 0)")
    g.add_argument("--grid-rotation", type=float, metavar="DEG",
                   help="azimuth of the grid's y axis, degrees clockwise from the CRS's north")
    return g


def frame_metadata(args: argparse.Namespace) -> dict[str, str]:
    """The metadata keys (crs, grid_origin_e/n, grid_rotation_deg) the frame options give."""
    from acquisition.coords import ORIGIN_E_KEY, ORIGIN_N_KEY, ROTATION_KEY, parse_origin

    md: dict[str, str] = {}
    if getattr(args, "crs", None):
        md["crs"] = args.crs
    if getattr(args, "grid_origin", None):
        e, n = parse_origin(args.grid_origin)
        md[ORIGIN_E_KEY], md[ORIGIN_N_KEY] = repr(e), repr(n)
    if getattr(args, "grid_rotation", None) is not None:
        md[ROTATION_KEY] = repr(args.grid_rotation)
    return md


def add_survey_input_arguments(p: argparse.ArgumentParser) -> None:
    """How a survey file is read and placed: --from, --columns, --value-unit, --crs, grid."""
    g = add_frame_arguments(p)
    g.add_argument("--from", dest="from_format", metavar="FORMAT",
                   help="read the file as FORMAT instead of sniffing it")
    g.add_argument("--columns", metavar="MAP",
                   help="column mapping of a generic CSV, e.g. x=Easting,y=Northing,value=Grad")
    g.add_argument("--value-unit", metavar="UNIT", help="unit of the values: nT, nT/m, pT, T")


def survey_read_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """`acquisition.read_survey` keyword arguments from `add_survey_input_arguments` options.

    The coordinate and unit options arrive as metadata keys, so they override
    the file's (docs/api.md). Raises ValueError for a malformed option.
    """
    md: dict[str, Any] = dict(frame_metadata(args))
    if getattr(args, "value_unit", None):
        md["value_unit"] = args.value_unit
    columns = None
    if getattr(args, "columns", None):
        columns = {}
        for part in args.columns.split(","):
            if "=" not in part or not part.split("=", 1)[1].strip():
                raise ValueError(f"--columns: {part.strip()!r} is not name=COLUMN "
                                 "(e.g. x=Easting,y=Northing,value=Grad)")
            k, v = part.split("=", 1)
            columns[k.strip()] = v.strip()
    return {"format": getattr(args, "from_format", None), "columns": columns, "metadata": md}
