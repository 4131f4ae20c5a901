"""Argument helpers shared by `uxo` sub-commands (field, sensor and driver options).

Precedence everywhere: command-line options override file metadata, which
overrides defaults (FORMATS.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from acquisition.geomag import EarthField, resolve


def add_field_arguments(p: argparse.ArgumentParser) -> None:
    """--field-total/--field-inclination/--field-declination, or --lat/--lon/--date (IGRF)."""
    g = p.add_argument_group("Earth field (default: from file metadata, else Quang Tri)")
    g.add_argument("--field-total", type=float, metavar="NT", help="total field, nT")
    g.add_argument("--field-inclination", type=float, metavar="DEG",
                   help="inclination, degrees, positive down")
    g.add_argument("--field-declination", type=float, metavar="DEG",
                   help="declination, degrees east")
    g.add_argument("--lat", type=float, help="site latitude (IGRF)")
    g.add_argument("--lon", type=float, help="site longitude (IGRF)")
    g.add_argument("--date", help="survey date YYYY-MM-DD (IGRF; default today)")


def field_from_args(args: argparse.Namespace, metadata: dict[str, Any] | None = None
                    ) -> EarthField:
    """Resolve the Earth field from CLI options over metadata keys (FORMATS.md).

    Explicit components (--field-*) win over an IGRF field, and on each level
    the command line wins over the file. A place or date given on the command
    line (--lat/--lon/--date) asks for the IGRF field there and then, so the
    file's own field_* values give way to it; a place or date missing on the
    command line comes from the file. A half-given place (a latitude without a
    longitude, a date with no place anywhere) is a ValueError, not a silent
    fall-back to the default field.
    """
    md = metadata or {}

    def cli(name: str) -> Any:
        return getattr(args, name, None)

    def meta(key: str) -> Any:
        v = md.get(key)
        return None if v in (None, "") else v

    def num(v: Any, what: str) -> float | None:
        if v is None:
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: {v!r} is not a number") from None

    site_on_cli = any(cli(n) is not None for n in ("lat", "lon", "date"))
    lat = num(cli("lat") if cli("lat") is not None else meta("latitude"), "latitude")
    lon = num(cli("lon") if cli("lon") is not None else meta("longitude"), "longitude")
    if (lat is None) != (lon is None):
        raise ValueError("a latitude needs a longitude and a longitude a latitude "
                         "(--lat and --lon, or latitude/longitude in the file)")
    if site_on_cli and lat is None:
        raise ValueError("--date needs a place: --lat and --lon, or latitude/longitude "
                         "in the file")
    components = {}
    for opt, key in (("field_total", "field_total_nT"),
                     ("field_inclination", "field_inclination_deg"),
                     ("field_declination", "field_declination_deg")):
        v = cli(opt)
        if v is None and not site_on_cli:
            v = meta(key)
        components[key] = num(v, key)
    return resolve(
        total_nT=components["field_total_nT"],
        inclination_deg=components["field_inclination_deg"],
        declination_deg=components["field_declination_deg"],
        lat=lat, lon=lon,
        date=cli("date") or meta("date"),
    )


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs to a dict; numbers become int/float, true/false booleans."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise argparse.ArgumentTypeError(f"option {pair!r} is not key=value")
        k, v = pair.split("=", 1)
        out[k.strip()] = _coerce(v.strip())
    return out


def _coerce(v: str) -> Any:
    low = v.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


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
