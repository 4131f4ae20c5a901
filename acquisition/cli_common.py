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
    """Resolve the Earth field from CLI options over metadata keys (FORMATS.md)."""
    md = metadata or {}

    def pick(cli: Any, key: str) -> Any:
        if cli is not None:
            return cli
        v = md.get(key)
        return None if v in (None, "") else v

    def num(v: Any) -> float | None:
        return None if v is None else float(v)

    lat = pick(getattr(args, "lat", None), "latitude")
    lon = pick(getattr(args, "lon", None), "longitude")
    return resolve(
        total_nT=num(pick(getattr(args, "field_total", None), "field_total_nT")),
        inclination_deg=num(pick(getattr(args, "field_inclination", None),
                                 "field_inclination_deg")),
        declination_deg=num(pick(getattr(args, "field_declination", None),
                                 "field_declination_deg")),
        lat=num(lat), lon=num(lon),
        date=pick(getattr(args, "date", None), "date"),
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
