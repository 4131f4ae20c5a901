"""``uxo process``: a survey file in, a target list out, with a survey summary.

Input is a survey CSV (FORMATS.md, ``# uxo-survey v1``) or one of our HDF5
recordings (read through `recorder.reader`, imported only when needed so the
DSP stays free of h5py). Command-line options override file metadata, which
overrides defaults. Prints area, lanes, noise level, signals found and the
signal density class per hectare by depth band (DOMAIN.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.cli_common import add_field_arguments, field_from_args
from acquisition.dsp.batch import SurveyResult, process_survey
from acquisition.dsp.pipeline import LaneConfig
from acquisition.survey_csv import SurveyCSVError, read_survey_csv
from acquisition.targets_io import write_targets_csv, write_targets_geojson

#: Fewer samples per lane than this on average: the lanes cannot be real.
FEW_PER_LANE = 20


def register_process(sub: argparse._SubParsersAction) -> None:
    """Add the ``process`` sub-command to the ``uxo`` parser."""
    p = sub.add_parser(
        "process", help="locate signals in a lane survey (CSV or HDF5 recording)",
        description="Level, detect and locate signals in a lane survey; write the target list.")
    p.add_argument("file", help="survey CSV (# uxo-survey v1) or HDF5 recording (.h5)")
    p.add_argument("-o", "--output", required=True, help="target list CSV to write")
    p.add_argument("--geojson", metavar="FILE", help="also write targets as GeoJSON")
    p.add_argument("--stream", help="stream id inside an HDF5 recording "
                   "(default: the first with positions)")
    g = p.add_argument_group("sensor (default: from file metadata)")
    g.add_argument("--kind", choices=("gradient", "total", "tf_gradient"))
    g.add_argument("--sensor-height", type=float, metavar="M", help="lower sensor height, m")
    g.add_argument("--separation", type=float, metavar="M", help="gradiometer separation, m")
    g.add_argument("--lane-spacing", type=float, metavar="M", help="nominal lane spacing, m")
    d = p.add_argument_group("detection (default: from the data, or soil-calibration metadata)")
    d.add_argument("--noise", type=float, metavar="NT", help="noise sigma, nT")
    d.add_argument("--threshold", type=float, metavar="NT", help="detection threshold, nT")
    d.add_argument("--detect-k", type=float, default=LaneConfig().detect_k, metavar="K",
                   help="threshold in noise sigmas (default %(default)s)")
    d.add_argument("--max-bad-share", type=float, default=0.1, metavar="F",
                   help="fail if more than this share of CSV rows is bad (default 0.1)")
    d.add_argument("--keep-weak", action="store_true",
                   help="also list the signals set aside at the end of the survey: under its "
                        "final threshold (found on the first lanes while it was being learnt), "
                        "flagged under_threshold, or explained by the fitted targets' fields "
                        "(no fit of their own), flagged explained")
    loc = p.add_argument_group("location uncertainty (added to every reported 1-sigma)")
    loc.add_argument("--position-sigma", type=_non_negative, metavar="M",
                     default=LaneConfig().position_sigma_m,
                     help="horizontal position uncertainty per axis, m: taped lanes "
                          "or plain GNSS ~0.05, RTK GNSS ~0.02 (default %(default)s)")
    add_field_arguments(p)
    p.set_defaults(func=run_process)


def _non_negative(text: str) -> float:
    v = float(text)
    if not v >= 0.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return v


def _geometry(args: argparse.Namespace, md: dict[str, Any],
              base: dict[str, Any] | None = None) -> dict[str, Any]:
    g = dict(base or {})
    g.setdefault("kind", md.get("kind", "gradient") or "gradient")
    g.setdefault("sensor_height_m", float(md.get("sensor_height_m", 0.3)))
    g.setdefault("sensor_separation_m", float(md.get("sensor_separation_m", 0.65)))
    if args.kind:
        g["kind"] = args.kind
    if args.sensor_height is not None:
        g["sensor_height_m"] = args.sensor_height
    if args.separation is not None:
        g["sensor_separation_m"] = args.separation
    return g


def _config(args: argparse.Namespace, md: dict[str, Any]) -> LaneConfig:
    def pick(cli: Any, key: str) -> float | None:
        if cli is not None:
            return float(cli)
        v = md.get(key)
        return None if v in (None, "") else float(v)

    spacing = pick(args.lane_spacing, "lane_spacing_m") or 1.0
    return LaneConfig(lane_spacing_m=spacing, detect_k=args.detect_k,
                      noise_nT=pick(args.noise, "soil_noise_nT"),
                      threshold_nT=pick(args.threshold, "soil_threshold_nT"),
                      position_sigma_m=args.position_sigma)


def _load_hdf5(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], np.ndarray,
                                                  np.ndarray, np.ndarray, np.ndarray]:
    from recorder.reader import open_recording  # lazy: keeps h5py out of the DSP path

    with open_recording(args.file) as rec:
        streams = rec.streams
        sid = args.stream or next((s for s, r in streams.items() if r.has_positions), None)
        if sid is None or sid not in streams:
            raise SystemExit(f"uxo process: no stream with positions in {args.file} "
                             f"(streams: {', '.join(streams) or 'none'})")
        r = streams[sid]
        pos = r.positions
        if pos is None:
            raise SystemExit(f"uxo process: stream {sid!r} has no positions")
        data = np.asarray(r.data, dtype=np.float64)
        t = np.asarray(r.times_ns(), dtype=np.float64) / 1e9
        md = {str(k): v for k, v in (rec.attrs or {}).items() if not isinstance(v, dict)}
        return md, dict(r.descriptor.geometry), pos[:, 0], pos[:, 1], data[:, 0], t


def run_process(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        print(f"uxo process: {path}: no such file", file=sys.stderr)
        return 2
    lane = None
    is_h5 = path.suffix.lower() in (".h5", ".hdf5", ".hdf") or path.read_bytes()[:8] == (
        b"\x89HDF\r\n\x1a\n")
    if is_h5:
        md, geo_base, x, y, v, t = _load_hdf5(args)
        geometry = _geometry(args, md, geo_base)
    else:
        try:
            data = read_survey_csv(path, max_bad_share=args.max_bad_share)
        except SurveyCSVError as exc:
            print(f"uxo process: {path}: {exc}", file=sys.stderr)
            return 2
        for b in data.bad_rows[:20]:
            print(f"{path}:{b.line}: skipped bad row: {b.reason}", file=sys.stderr)
        if len(data.bad_rows) > 20:
            print(f"{path}: ... {len(data.bad_rows) - 20} more bad rows skipped",
                  file=sys.stderr)
        md = data.metadata
        geometry = _geometry(args, md)
        x, y, v, t, lane = data.x, data.y, data.value, data.t, data.lane
    try:
        field = field_from_args(args, md)
        config = _config(args, md)
        res: SurveyResult = process_survey(x, y, v, t=t, lane=lane, geometry=geometry,
                                           field=field, config=config)
    except ValueError as exc:
        print(f"uxo process: {exc}", file=sys.stderr)
        return 2
    comments = {"source": path.name, "kind": geometry["kind"],
                "sensor_height_m": geometry["sensor_height_m"],
                "sensor_separation_m": geometry["sensor_separation_m"],
                **field.to_dict(), "noise_nT": f"{res.noise_nT:.4g}",
                "threshold_nT": f"{res.threshold_nT:.4g}", "area_m2": f"{res.area_m2:.1f}",
                "lanes": res.lanes}
    listed = res.targets
    if args.keep_weak:
        listed = sorted(res.targets + res.under_threshold + res.explained,
                        key=lambda t_: t_.target_id)
    write_targets_csv(args.output, listed, comments)
    if args.geojson:
        write_targets_geojson(args.geojson, listed, comments)
    print(f"{path.name}: {geometry['kind']} survey, field {field.total_nT:.0f} nT "
          f"inc {field.inclination_deg:.1f} dec {field.declination_deg:.1f} ({field.source})")
    print(res.summary())
    if res.lanes and res.n_samples / res.lanes < FEW_PER_LANE:
        # Rows of a multi-sensor cart without time stamps or lanes read in file
        # order jump across the lanes at every row (acquisition.dsp.cart needs `t`).
        print(f"uxo process: warning: {res.lanes} lanes of {res.n_samples / res.lanes:.1f} "
              "samples on average: are rows of several sensors interleaved? Give a `t` "
              "column (rows of one instant share it) or a `lane` column", file=sys.stderr)
    flagged = sum(1 for t_ in listed if t_.flags)
    print(f"targets written: {len(listed)} to {args.output}"
          + (f" and {args.geojson}" if args.geojson else "")
          + (f" ({flagged} flagged: check quality/flags)" if flagged else ""))
    return 0
