"""``uxo process``: a survey file in, a target list out, with a survey summary.

Built on the library: `acquisition.read_survey` reads any supported file
(format sniffed, ``--from`` forces it) and places it (``--crs``,
``--grid-origin``, ``--grid-rotation``), and `acquisition.process_survey`
resolves every setting from the options given here (as overrides) and the
file's metadata. This module only turns options into those arguments and
prints, so the CLI and Python give the same answer (docs/api.md).
Prints area, lanes, noise level, signals found and the signal density class
per hectare by depth band (docs/field.md), the unit assumed and the CRS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from acquisition.cli_common import add_field_arguments
from acquisition.errors import UxoError
from acquisition.survey_cli import add_survey_input_arguments

#: Fewer samples per lane than this on average: the lanes cannot be real.
FEW_PER_LANE = 20


def register_process(sub: argparse._SubParsersAction) -> None:
    """Add the ``process`` sub-command to the ``uxo`` parser."""
    from acquisition.dsp.pipeline import LaneConfig

    p = sub.add_parser(
        "process", help="locate signals in a lane survey (any supported file)",
        description="Level, detect and locate signals in a lane survey; write the target list.")
    p.add_argument("file", help="survey file: survey CSV (# uxo-survey v1), HDF5 recording "
                   "(.h5), or any format `--from` names")
    p.add_argument("-o", "--output", required=True, help="target list CSV to write")
    p.add_argument("--geojson", metavar="FILE", help="also write targets as GeoJSON (WGS84: "
                   "needs a georeferenced survey)")
    p.add_argument("--kml", metavar="FILE", help="also write targets as KML (WGS84: needs a "
                   "georeferenced survey)")
    p.add_argument("--stream", help="stream id inside an HDF5 recording "
                   "(default: the first with positions)")
    add_survey_input_arguments(p)
    g = p.add_argument_group("sensor (default: from file metadata)")
    g.add_argument("--kind", help="reading kind: gradient (vertical fluxgate gradiometer: "
                   "Bz lower - Bz upper), total (total field), tf_gradient (two total-field "
                   "sensors: F lower - F upper)")
    g.add_argument("--sensor-height", type=float, metavar="M", help="lower sensor height, m")
    g.add_argument("--separation", type=float, metavar="M", help="gradiometer separation, m")
    g.add_argument("--lane-spacing", type=float, metavar="M", help="nominal lane spacing, m")
    d = p.add_argument_group("detection (default: from the data, or soil-calibration metadata)")
    d.add_argument("--noise", type=float, metavar="NT", help="noise sigma, nT")
    d.add_argument("--threshold", type=float, metavar="NT", help="detection threshold, nT")
    d.add_argument("--detect-k", type=float, metavar="K",
                   help=f"threshold in noise sigmas (default {LaneConfig().detect_k})")
    d.add_argument("--max-bad-share", type=float, default=0.1, metavar="F",
                   help="fail if more than this share of rows is bad (default 0.1)")
    d.add_argument("--keep-weak", action="store_true",
                   help="also list the signals set aside at the end of the survey: under its "
                        "final threshold (found on the first lanes while it was being learnt), "
                        "flagged under_threshold, or explained by the fitted targets' fields "
                        "(no fit of their own), flagged explained")
    loc = p.add_argument_group("positions")
    loc.add_argument("--position-sigma", type=_non_negative, metavar="M",
                     help="horizontal position uncertainty per axis, m, added to every "
                          "reported 1-sigma: taped lanes or plain GNSS ~0.05, RTK GNSS ~0.02 "
                          f"(default {LaneConfig().position_sigma_m})")
    loc.add_argument("--lag", metavar="SECONDS|auto",
                     help="time by which positions trail the readings; 'auto' estimates it "
                          "from a zig-zag survey's opposite lanes (needs times)")
    p.add_argument("--base", metavar="FILE",
                   help="base-station record (GSM-19 dump or t,value CSV): remove the diurnal "
                        "variation from a total-field survey")
    add_field_arguments(p)
    p.set_defaults(func=run_process)


def _non_negative(text: str) -> float:
    v = float(text)
    if not v >= 0.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return v


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """`acquisition.process_survey` overrides from the options (None: not given)."""
    return {
        "kind": args.kind, "sensor_height_m": args.sensor_height,
        "sensor_separation_m": args.separation, "lane_spacing_m": args.lane_spacing,
        "noise_nT": args.noise, "threshold_nT": args.threshold, "detect_k": args.detect_k,
        "position_sigma_m": args.position_sigma, "position_lag_s": args.lag,
        "field_total_nT": args.field_total, "field_inclination_deg": args.field_inclination,
        "field_declination_deg": args.field_declination, "latitude": args.lat,
        "longitude": args.lon, "date": args.date, "base": args.base,
    }


def _fail(msg: object) -> int:
    print(f"uxo process: {msg}", file=sys.stderr)
    return 2


def unit_line(survey: Any) -> str:
    """What the values were read as, said in every output."""
    if not survey.unit_stated:
        return "values read as nT: the file does not say (give --value-unit)"
    if survey.value_unit.lower().replace(" ", "") == "nt/m":
        return "values in nT/m, converted to nT (times the sensor separation)"
    return f"values in {survey.value_unit}" + ("" if survey.value_unit == "nT"
                                               else ", converted to nT")


def crs_line(frame: Any) -> str:
    if not frame.georeferenced:
        return ("coordinates: local grid, not georeferenced (place it with --crs and "
                "--grid-origin/--grid-rotation)")
    return (f"coordinates: {frame.crs}, local grid origin E {frame.origin_e:.3f} "
            f"N {frame.origin_n:.3f}, rotation {frame.rotation_deg:g} deg")


def run_process(args: argparse.Namespace) -> int:
    # Anything the library refuses (a setting out of range, an unreadable
    # file) is one line and exit 2, never a traceback.
    try:
        return _run_process(args)
    except (UxoError, OSError) as exc:
        msg = str(exc)
        where = "" if str(args.file) in msg else f"{args.file}: "
        return _fail(f"{where}{msg}")


def _run_process(args: argparse.Namespace) -> int:
    from acquisition.processing import process_survey
    from acquisition.survey import read_survey
    from acquisition.survey_cli import survey_read_kwargs
    from acquisition.targets_io import (
        write_targets_csv,
        write_targets_geojson,
        write_targets_kml,
    )

    path = Path(args.file)
    try:
        survey = read_survey(path, **survey_read_kwargs(args), stream=args.stream,
                             max_bad_share=args.max_bad_share)
    except ValueError as exc:
        return _fail(exc)
    for note in survey.notes:
        print(f"uxo process: note: {path}: {note}", file=sys.stderr)
    for b in survey.bad_rows[:20]:
        print(f"{path}:{b.line}: skipped bad row: {b.reason}", file=sys.stderr)
    if len(survey.bad_rows) > 20:
        print(f"{path}: ... {len(survey.bad_rows) - 20} more bad rows skipped", file=sys.stderr)
    if (args.geojson or args.kml) and not survey.frame.georeferenced:
        which = " and ".join(o for o, v in (("--geojson", args.geojson), ("--kml", args.kml))
                             if v)
        return _fail(f"{which}: GeoJSON and KML are WGS84 latitude/longitude, and {path} is a "
                     "local grid nobody placed: give --crs EPSG:NNNN (e.g. EPSG:32648) and "
                     "--grid-origin E,N (with --grid-rotation DEG if the grid is turned)")
    from acquisition.progress import Progress

    try:
        with Progress(survey.n, "process", unit="reading") as bar:
            res = process_survey(survey, **overrides_from_args(args),
                                 on_progress=lambda done, _total: bar.step(done - bar.count))
    except ValueError as exc:
        # a setting from the file's metadata or an option: name the file too
        return _fail(exc if str(path) in str(exc) else f"{path}: {exc}")
    st = res.settings
    geometry, field = st.geometry, st.field
    comments = {"source": path.name, "format": survey.format, "value_unit": survey.value_unit
                + ("" if survey.unit_stated else " (assumed: the file does not say)"),
                "crs": survey.frame.crs or "none (local grid)",
                "kind": geometry["kind"], "sensor_height_m": geometry["sensor_height_m"],
                "sensor_separation_m": geometry["sensor_separation_m"],
                **field.to_dict(), "grid_declination_deg": f"{st.grid_field.declination_deg:.4g}",
                "position_lag_s": f"{res.lag_s:.3f} ({res.lag_source})",
                "noise_nT": f"{res.noise_nT:.4g}",
                "threshold_nT": f"{res.threshold_nT:.4g}", "area_m2": f"{res.area_m2:.1f}",
                "lanes": res.lanes}
    if res.diurnal_range_nT is not None:
        comments["diurnal_range_nT"] = f"{res.diurnal_range_nT:.3f}"
    listed = res.targets
    if args.keep_weak:
        listed = sorted(res.targets + res.under_threshold + res.explained,
                        key=lambda t_: t_.target_id)
    write_targets_csv(args.output, listed, comments, res.frame)
    if args.geojson:
        write_targets_geojson(args.geojson, listed, res.frame, comments)
    if args.kml:
        write_targets_kml(args.kml, listed, res.frame, name=path.name)
    print(f"{path.name}: {survey.format}, {geometry['kind']} survey, field "
          f"{field.total_nT:.0f} nT inc {field.inclination_deg:.1f} dec "
          f"{field.declination_deg:.1f} ({field.source})")
    print(unit_line(survey))
    print(crs_line(res.frame))
    if res.lag_s or res.lag_source.startswith("auto"):
        print(f"position lag: {res.lag_s:.3f} s ({res.lag_source}), positions moved along "
              "the track")
    if res.diurnal_range_nT is not None:
        print(f"diurnal correction: base station varied by {res.diurnal_range_nT:.2f} nT "
              "over the survey, removed")
    print(res.summary())
    for w in res.warnings:
        print(f"uxo process: warning: {w}", file=sys.stderr)
    for note in res.result.notes:
        print(f"uxo process: note: {note}", file=sys.stderr)
    if res.lanes and res.n_samples / res.lanes < FEW_PER_LANE:
        # Rows of a multi-sensor cart without time stamps or lanes read in file
        # order jump across the lanes at every row (acquisition.dsp.cart needs `t`).
        print(f"uxo process: warning: {res.lanes} lanes of {res.n_samples / res.lanes:.1f} "
              "samples on average: are rows of several sensors interleaved? Give a `t` "
              "column (rows of one instant share it) or a `lane` column", file=sys.stderr)
    flagged = sum(1 for t_ in listed if t_.flags)
    outs = [str(args.output)] + [str(f) for f in (args.geojson, args.kml) if f]
    print(f"targets written: {len(listed)} to {' and '.join(outs)}"
          + (f" ({flagged} flagged: check quality/flags)" if flagged else ""))
    return 0
