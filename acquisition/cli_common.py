"""Argument helpers shared by `uxo` sub-commands (field, sensor and driver options).

Precedence everywhere: command-line options override file metadata, which
overrides defaults (docs/formats.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from acquisition.geomag import EarthField, resolve
from acquisition.validate import finite_float


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
    """Resolve the Earth field from CLI options over metadata keys (docs/formats.md).

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
        return finite_float(what, v, ValueError)

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


def add_bus_arguments(p: argparse.ArgumentParser, *, publisher: bool = False) -> None:
    """``--bus-keys DIR`` (and, for a command that binds, ``--insecure``).

    Every command on the event bus takes the same options through this helper,
    and turns them into socket settings with `bus_options_from_args`::

        add_bus_arguments(parser)                       # a subscriber: record, tail, view
        ...
        try:
            opts = bus_options_from_args(args)          # {} or the CURVE keys
        except ValueError as exc:                       # BusKeyError: one clear line
            print(f"uxo view: {exc}", file=sys.stderr); return 2
        sub = Subscriber(endpoint, **opts)

    A command that binds (acquire, demo) passes ``publisher=True`` and gives its
    endpoint to `bus_options_from_args`, which then also refuses an
    unencrypted bind beyond loopback unless ``--insecure`` (InsecureBindError).
    The key directory is described in acquisition.buskeys.
    """
    g = p.add_argument_group("event bus security")
    g.add_argument("--bus-keys", metavar="DIR",
                   help="CURVE key directory from `uxo keys generate DIR`: encrypt the bus "
                        "and " + ("admit only the clients in DIR/clients" if publisher
                                  else "authenticate as DIR's client"))
    if publisher:
        g.add_argument("--insecure", action="store_true",
                       help="allow publishing beyond loopback without --bus-keys")


def bus_options_from_args(args: argparse.Namespace, *, bind: str | None = None
                          ) -> dict[str, Any]:
    """Publisher (``bind`` given) or Subscriber keyword arguments from the bus options.

    Returns {} without --bus-keys. Raises `acquisition.buskeys.BusKeyError`
    or `InsecureBindError` (both ValueError) with a one-line reason.
    """
    from acquisition import buskeys

    directory = getattr(args, "bus_keys", None)
    opts: dict[str, Any] = {}
    if directory:
        keys = buskeys.load(directory)
        opts = keys.publisher_options() if bind is not None else keys.subscriber_options()
    if bind is not None:
        buskeys.check_bind(bind, encrypted=bool(opts),
                           insecure=bool(getattr(args, "insecure", False)))
    return opts


def stop_on_signals(on_stop: Callable[[], None]) -> None:
    """Call ``on_stop`` on SIGTERM or SIGINT; a second SIGINT raises KeyboardInterrupt.

    Installed explicitly because Python leaves SIGINT ignored when the process
    started with it ignored (a command run in the background from a script),
    and SIGTERM otherwise kills it without cleaning up. Off the main thread
    (a command run by a test or an embedding program) it does nothing: only the
    main thread may install handlers, and the process's owner handles signals.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    stopping = False

    def handler(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stopping = True
        on_stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
