"""``uxo borehole plan|process|coverage``: the borehole mode's command line.

* ``plan``: the quincunx hole layout for a rectangle or polygon (CSV + GeoJSON);
* ``process FILE``: a borehole CSV (docs/formats.md) or an HDF5 recording to a
  target list (docs/formats.md columns plus ``holes``), with the same field and
  sensor options as ``uxo process``; options override the file's metadata;
* ``coverage FILE``: which part of a layer the logged holes searched for a
  chosen smallest moment, and where the gaps are.

Bad rows, gaps, depths going backwards and lonely holes are reported on
stderr and flagged in the outputs; the run goes on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.cli_common import add_field_arguments, field_from_args, parse_options
from acquisition.errors import UxoError
from acquisition.forward import DEFAULT_SEPARATION_M
from acquisition.outfile import write_output
from acquisition.survey_cli import add_frame_arguments, frame_metadata


def _area(args: argparse.Namespace) -> Any:
    if args.rect:
        vals = [float(v) for v in args.rect.split(",")]
        if len(vals) != 4:
            raise SystemExit("--rect takes x0,y0,x1,y1")
        return vals
    if args.polygon:
        try:
            return [[float(c) for c in p.split(",")] for p in args.polygon.split(";") if p.strip()]
        except ValueError:
            raise SystemExit("--polygon takes 'x,y;x,y;x,y...'") from None
    return None


def _add_area(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--rect", metavar="X0,Y0,X1,Y1", help="rectangular area, local metres")
    g.add_argument("--polygon", metavar="X,Y;X,Y;...", help="polygon area, local metres")


def register_borehole(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``borehole`` with sub-commands ``plan``, ``process``, ``coverage``."""
    p = subparsers.add_parser("borehole", help="borehole mode: hole plans, logs, 3-D targets",
                              description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="borehole_cmd", required=True)

    pp = sub.add_parser("plan", help="quincunx hole layout for an area")
    _add_area(pp, True)
    pp.add_argument("--spacing", type=float, default=2.0, help="hole spacing, m (default 2)")
    pp.add_argument("--layer", type=int, default=2, help="5 m layer number (1 = 0-5 m)")
    pp.add_argument("--layer-depth", type=float, default=5.0, help="layer thickness, m")
    pp.add_argument("--azimuth", type=float, default=0.0, help="row direction, deg from east")
    pp.add_argument("--edge", choices=("cover", "inside"), default="cover",
                    help="keep holes just outside the area when coverage needs them")
    pp.add_argument("--prefix", default="", help="hole id prefix")
    pp.add_argument("-o", "--output", required=True, help="hole plan CSV")
    pp.add_argument("--geojson", help="also write GeoJSON")
    pp.set_defaults(func=run_plan)

    pr = sub.add_parser("process", help="borehole CSV or HDF5 recording -> target list")
    pr.add_argument("file", help="borehole CSV (# uxo-borehole v1) or HDF5 recording")
    pr.add_argument("-o", "--output", required=True, help="target list CSV")
    pr.add_argument("--geojson", help="also write GeoJSON (WGS84: needs placed collars)")
    pr.add_argument("--kml", metavar="FILE", help="also write KML (WGS84: needs placed collars)")
    add_frame_arguments(pr)
    add_field_arguments(pr)
    g = pr.add_argument_group("sensor and depth registration")
    g.add_argument("--separation", type=float, metavar="M", help="probe sensor separation, m")
    g.add_argument("--depth-scale", type=float, default=None, help="winch encoder scale")
    g.add_argument("--depth-offset", type=float, default=None, help="depth zero offset, m")
    g.add_argument("--stream", action="append", help="HDF5: stream(s) to use (default: all probes)")
    pr.add_argument("--opt", action="append", metavar="KEY=VALUE",
                    help="processing option (e.g. reach_m=3.5, k=5, tilt_max_deg=1.5)")
    pr.set_defaults(func=run_process)

    pc = sub.add_parser("coverage", help="which part of a layer the holes searched")
    pc.add_argument("file", help="borehole CSV (logged holes) or hole plan CSV (with --planned)")
    pc.add_argument("--planned", action="store_true",
                    help="FILE is a hole plan: state what the plan would give")
    _add_area(pc, False)
    pc.add_argument("--top", type=float, default=5.0, help="layer top, m (default 5)")
    pc.add_argument("--bottom", type=float, default=10.0, help="layer bottom, m (default 10)")
    pc.add_argument("--min-moment", type=float, default=1.0, help="smallest moment, A m2")
    pc.add_argument("--noise", type=float, help="noise, nT (default: measured per hole)")
    pc.add_argument("--snr", type=float, default=8.0, help="required peak/noise (default 8)")
    pc.add_argument("--separation", type=float, metavar="M", help="probe sensor separation, m")
    pc.add_argument("--step", type=float, default=0.2, help="grid step, m")
    pc.add_argument("--geojson", help="write the unsearched cells as GeoJSON")
    pc.set_defaults(func=run_coverage)
    return p


def run_plan(args: argparse.Namespace) -> int:
    from acquisition.borehole.plan import quincunx
    from acquisition.borehole.report import write_plan_csv, write_plan_geojson

    try:
        plan = quincunx(_area(args), spacing=args.spacing, layer_depth=args.layer_depth,
                        layer=args.layer, azimuth_deg=args.azimuth, edge=args.edge,
                        hole_prefix=args.prefix)
        write_plan_csv(args.output, plan)
        if args.geojson:
            write_plan_geojson(args.geojson, plan)
    except (ValueError, OSError) as e:
        print(f"uxo borehole plan: {e}", file=sys.stderr)
        return 2
    print(f"{len(plan.holes)} holes, spacing {plan.spacing_m:g} m, layer {plan.layer} "
          f"({plan.layer_top_m:g}-{plan.layer_bottom_m:g} m); farthest point from a hole "
          f"{plan.max_distance_m:.3f} m")
    for n in plan.notes:
        print(f"note: {n}")
    return 0


def _load_hdf5(path: str, streams: list[str] | None) -> tuple[list[Any], dict[str, Any]]:
    from acquisition.borehole.logs import HoleLog
    from recorder.reader import open_recording  # lazy: keeps h5py out of the borehole package

    logs: list[HoleLog] = []
    with open_recording(path) as rec:
        md = {str(k): v for k, v in (rec.attrs or {}).items() if not isinstance(v, dict)}
        for sid, r in rec.streams.items():
            names = r.descriptor.channel_names
            if "depth" not in names or (streams and sid not in streams):
                continue
            geo = r.descriptor.geometry
            data = np.asarray(r.data, dtype=float)
            vector = all(c in names for c in ("bx", "by", "bz"))
            if vector:
                vals = data[:, [names.index(c) for c in ("bx", "by", "bz")]]
            else:
                name = next((c for c in ("grad", "gradient", "value") if c in names), None)
                if name is None:
                    continue
                vals = data[:, names.index(name)]
            lg = HoleLog(str(geo.get("hole") or sid), float(geo.get("collar_x", 0.0)),
                         float(geo.get("collar_y", 0.0)), data[:, names.index("depth")], vals,
                         kind="vector" if vector else "gradient",
                         t=np.asarray(r.times_ns(), dtype=float) / 1e9,
                         separation=float(geo.get("sensor_separation_m", DEFAULT_SEPARATION_M)))
            if "collar_x" not in geo:
                lg.flags.add("no_collar")
                lg.issues.append(f"hole {lg.hole}: no collar position in the recording; "
                                 "placed at (0, 0)")
            if len(r.gaps):
                lg.flags.add("gap")
                lg.issues.append(f"hole {lg.hole}: {len(r.gaps)} recorded gap(s)")
            logs.append(lg)
    return logs, md


def _read_logs(args: argparse.Namespace) -> tuple[list[Any], dict[str, Any], list[str]]:
    from acquisition.borehole.logs import BoreholeFormatError, read_borehole_csv

    path = Path(args.file)
    if not path.exists():
        raise SystemExit(f"uxo borehole: {path}: no such file")
    if not path.is_file():
        raise SystemExit(f"uxo borehole: {path}: not a file (expected a borehole CSV or an "
                         "HDF5 recording)")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head == b"\x89HDF\r\n\x1a\n":
        logs, md = _load_hdf5(str(path), getattr(args, "stream", None))
        if getattr(args, "separation", None):
            for lg in logs:
                lg.separation = args.separation
        return logs, md, []
    try:
        bf = read_borehole_csv(path, separation=getattr(args, "separation", None))
    except BoreholeFormatError as e:
        raise SystemExit(f"uxo borehole: {path}: {e}") from None
    notes = [f"line {n}: {why} (row skipped)" for n, why in bf.rejects]
    return bf.logs, bf.metadata, notes


def run_process(args: argparse.Namespace) -> int:
    # a refused option or an unreadable file: one line and exit 2, no traceback
    try:
        return _run_process(args)
    except (UxoError, OSError) as exc:
        print(f"uxo borehole process: {args.file}: {exc}", file=sys.stderr)
        return 2


def _run_process(args: argparse.Namespace) -> int:
    from acquisition.borehole.batch import BoreholeConfig, process_logs
    from acquisition.borehole.report import write_targets_csv, write_targets_geojson

    try:
        logs, md, notes = _read_logs(args)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    for n in notes:
        print(f"warning: {n}", file=sys.stderr)
    if not logs:
        print("uxo borehole process: no probe logs in the file", file=sys.stderr)
        return 2
    from acquisition.coords import CoordinateError, SurveyFrame

    try:
        # collars are local metres placed like a lane survey's taped grid
        frame = SurveyFrame.from_metadata({**{str(k): v for k, v in md.items()},
                                           **frame_metadata(args)})
        if (args.geojson or args.kml) and not frame.georeferenced:
            raise CoordinateError("--geojson/--kml are WGS84 latitude/longitude and the "
                                  "collars are local metres nobody placed: give --crs "
                                  "EPSG:NNNN and --grid-origin E,N (with --grid-rotation DEG "
                                  "if the grid is turned)")
        field = field_from_args(args, md)
    except ValueError as exc:
        print(f"uxo borehole process: {exc}", file=sys.stderr)
        return 2
    opts = parse_options(args.opt)
    if args.depth_scale is not None:
        opts["depth_scale"] = args.depth_scale
    if args.depth_offset is not None:
        opts["depth_offset_m"] = args.depth_offset
    cfg = BoreholeConfig.from_options(opts)  # checks every value against its range
    cfg.stream_id = Path(args.file).stem
    from acquisition.progress import Progress

    with Progress(len(logs) + 1, "locate", unit="hole") as bar:
        res = process_logs(logs, field, cfg,
                           on_progress=lambda done, _total: bar.step(done - bar.count))
    for msg in res.issues:
        print(f"warning: {msg}", file=sys.stderr)
    comments = {"source": args.file, "holes": len(res.logs), **field.to_dict(),
                "crs": frame.crs or "none (local grid)"}
    write_targets_csv(args.output, res.targets, res.details, comments, frame)
    if args.geojson:
        write_targets_geojson(args.geojson, res.targets, res.details,
                              {"source": str(args.file)}, frame)
    if args.kml:
        from acquisition.targets_io import write_targets_kml

        write_targets_kml(args.kml, res.targets, frame, name=Path(args.file).name)
    if frame.georeferenced:
        for lg in res.logs:
            (ce,), (cn,) = (np.atleast_1d(a) for a in frame.local_to_crs(lg.x, lg.y))
            (la,), (lo,) = (np.atleast_1d(a) for a in frame.to_wgs84(lg.x, lg.y))
            print(f"hole {lg.hole}: collar E {ce:.3f} N {cn:.3f} ({frame.crs}), "
                  f"lat {la:.8f} lon {lo:.8f}")
    print(f"{len(res.targets)} targets from {len(res.logs)} holes "
          f"({len(res.anomalies)} per-hole anomalies) -> {args.output}")
    if res.unlocated:
        print(f"{len(res.unlocated)} anomalies not located (log ends, unplaceable fits): "
              "see the warnings", file=sys.stderr)
    return 0


def run_coverage(args: argparse.Namespace) -> int:
    from acquisition.borehole.coverage import layer_coverage
    from acquisition.borehole.report import coverage_geojson, coverage_summary

    sep = args.separation or DEFAULT_SEPARATION_M
    if args.planned:
        import csv

        with open(args.file, encoding="utf-8") as fh:
            rows = list(csv.DictReader(ln for ln in fh if not ln.startswith("#")))
        holes: list[Any] = [(r["hole"], float(r["x"]), float(r["y"])) for r in rows]
    else:
        try:
            holes, md, notes = _read_logs(args)
        except SystemExit as e:
            print(e, file=sys.stderr)
            return 2
        for n in notes:
            print(f"warning: {n}", file=sys.stderr)
        if args.separation is None:
            sep = float(md.get("sensor_separation_m", DEFAULT_SEPARATION_M))
    area = _area(args)
    if area is None:
        xy = np.array([[h[1], h[2]] if isinstance(h, tuple) else [h.x, h.y] for h in holes])
        if len(xy) < 3:
            print("uxo borehole coverage: give --rect or --polygon", file=sys.stderr)
            return 2
        area = [*xy.min(axis=0), *xy.max(axis=0)]
    try:
        cov = layer_coverage(holes, area, args.top, args.bottom, min_moment=args.min_moment,
                             noise_nT=args.noise, snr_required=args.snr, separation=sep,
                             step_m=args.step)
    except ValueError as e:
        print(f"uxo borehole coverage: {e}", file=sys.stderr)
        return 2
    print(coverage_summary(cov))
    if args.geojson:
        import json

        write_output(args.geojson, json.dumps(coverage_geojson(cov), indent=1))
    return 0 if cov.signed_off else 1
