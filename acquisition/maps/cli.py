"""``uxo map``, ``uxo report``, ``uxo qa``, ``uxo daily``, ``uxo export-gis``.

Registered through the ``uxo.commands`` entry points. Each command takes the
coordinate options of ``uxo process`` (`inputs.add_survey_input_arguments`).
Bad input (an empty survey, a target list outside the survey, a QA box outside
it, a GeoTIFF without a CRS) is one line on stderr and exit status 2; nothing
is written then. ``uxo qa`` exits 0 for pass and 1 for fail. The map/report
libraries come with the ``maps`` extra; without them the commands say so.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.cli_common import add_field_arguments, field_from_args
from acquisition.maps.inputs import InputError, add_survey_input_arguments

MAP_SUFFIXES = (".png", ".pdf", ".tif", ".tiff")
EXTRA_HINT = "pip install 'uxo-acquisition[maps]'"


def _guard(cmd: str, fn: Callable[[argparse.Namespace], int]) -> Callable[
        [argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except InputError as exc:
            print(f"uxo {cmd}: {exc}", file=sys.stderr)
            return 2
        except ModuleNotFoundError as exc:
            print(f"uxo {cmd}: needs {exc.name}, which comes with the maps extra: "
                  f"{EXTRA_HINT}", file=sys.stderr)
            return 2
    return run


def _grid_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("grid")
    g.add_argument("--spacing", type=float, default=None, metavar="M",
                   help="grid cell size, m (default 0.25)")
    g.add_argument("--blank", type=float, default=None, metavar="M",
                   help="blank cells farther than this from a reading, m "
                        "(default 0.6 x the lane spacing)")


# ---------------------------------------------------------------------- shared steps
def _map_products(s: Any, args: argparse.Namespace, product: str, step: Any,
                  noise_nT: float | None = None) -> tuple[Any, Any]:
    """(levelled samples, grid of the product) for a survey."""
    from acquisition.maps.grid import BLANK_LANES, DEFAULT_SPACING_M, derived, grid_levelled
    from acquisition.maps.inputs import lane_spacing
    from acquisition.maps.levelled import level_survey

    spacing = lane_spacing(s)
    lev = level_survey(s, spacing, noise_nT)
    step("levelled")
    blank = args.blank if args.blank is not None else BLANK_LANES * spacing
    grid = grid_levelled(lev, spacing=args.spacing or DEFAULT_SPACING_M, blank_m=blank)
    step("gridded")
    if product != "levelled":
        try:
            f = field_from_args(args, s.metadata)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        dec = f.declination_deg + s.frame.grid_convergence_deg()
        grid = derived(grid, product, inclination_deg=f.inclination_deg, declination_deg=dec)
    step(product)
    return lev, grid


def _targets_for(path: str | None, s: Any, lev: Any) -> list[Any]:
    from acquisition.maps.targets import check_within, place, read_target_list

    if not path:
        return []
    targets = read_target_list(path, s.frame)
    check_within(targets, lev.x, lev.y, path)
    return place(targets, s.frame)


def _tracks(lev: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    # one line per lane: the turns between lanes are not drawn as walked ground
    return [(lev.x[lev.lane == k], lev.y[lev.lane == k]) for k in np.unique(lev.lane)]


# ---------------------------------------------------------------------- uxo map
def register_map(sub: argparse._SubParsersAction) -> None:
    from acquisition.maps.grid import PRODUCTS

    p = sub.add_parser("map", help="colour map (PNG, PDF) or GeoTIFF of a levelled survey",
                       description="Grid the levelled survey and draw it with the walked "
                                   "track and the targets, or write it as a GeoTIFF.")
    p.add_argument("survey", help="survey file (CSV or recording)")
    p.add_argument("--targets", metavar="CSV", help="target list to draw (uxo process output)")
    p.add_argument("-o", "--output", required=True, help="map to write: .png, .pdf or .tif")
    p.add_argument("--product", choices=PRODUCTS, default="levelled",
                   help="what to map (default: the levelled reading)")
    _grid_options(p)
    add_survey_input_arguments(p)
    add_field_arguments(p)
    p.set_defaults(func=_guard("map", run_map))


def run_map(args: argparse.Namespace) -> int:
    from acquisition.maps.inputs import load_survey
    from acquisition.progress import Progress

    out = Path(args.output)
    if out.suffix.lower() not in MAP_SUFFIXES:
        raise InputError(f"{out}: a map is written as .png, .pdf or .tif")
    with Progress(6, "map") as bar:
        s = load_survey(args.survey, args)
        bar.step(what="read")
        lev, grid = _map_products(s, args, args.product, lambda w: bar.step(what=w))
        targets = _targets_for(args.targets, s, lev)
        if not np.isfinite(grid.values).any():
            raise InputError(f"{args.survey}: the grid holds no value (all cells blanked)")
        if out.suffix.lower() in (".tif", ".tiff"):
            from acquisition.maps.geotiff import write_geotiff

            write_geotiff(out, grid, s.frame)
        else:
            from acquisition.maps import render

            fig = render.figure(grid, s.frame, tracks=_tracks(lev), targets=targets,
                                info=render.info_from_metadata(s.metadata, s.source))
            render.save(fig, out)
        bar.step(what="written")
    ny, nx = grid.values.shape
    print(f"{out}: {args.product} map, {nx} x {ny} cells of {grid.spacing:g} m, "
          f"{np.isfinite(grid.values).mean() * 100:.0f} % painted, {len(targets)} targets, "
          f"CRS {s.frame.crs or 'none (local grid)'}")
    return 0


# ---------------------------------------------------------------------- uxo report
def register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="the record of a cleared area (self-contained HTML or PDF)",
                       description="Write the survey report: site and team, soil "
                                   "calibration, coverage and gaps, map, dig list, density "
                                   "class, detector separation, recording integrity.")
    p.add_argument("survey", help="survey file (CSV or recording)")
    p.add_argument("--targets", metavar="CSV",
                   help="the dig list (uxo process output; default: process the survey now)")
    p.add_argument("-o", "--output", required=True, help="report.html or report.pdf")
    p.add_argument("--plan", metavar="X0,Y0,X1,Y1",
                   help="the planned area in local metres (default: metadata plan_area, "
                        "else the area the walked lanes span)")
    _grid_options(p)
    add_survey_input_arguments(p)
    add_field_arguments(p)
    p.set_defaults(func=_guard("report", run_report))


def build_report(args: argparse.Namespace, step: Callable[[str], None]) -> tuple[Any, Any]:
    """(ReportData, map figure) for the report's survey and options."""
    from acquisition.maps import render
    from acquisition.maps.coverage import PLAN_KEY, coverage, parse_box
    from acquisition.maps.inputs import lane_spacing, load_survey, process
    from acquisition.maps.proximity import close_approaches, tracks_of_column, tracks_of_recording
    from acquisition.maps.report import ReportData, density_of, integrity_of, survey_dates
    from acquisition.maps.targets import dig_list, from_results, place

    s = load_survey(args.survey, args)
    step("read")
    res = process(s, args)
    step("processed")
    lev, grid = _map_products(s, args, "levelled", step, res.noise_nT)
    if args.targets:
        targets = _targets_for(args.targets, s, lev)
    else:
        targets = place(from_results(res.targets), s.frame)
    plan_text = args.plan or s.metadata.get(PLAN_KEY)
    plan = parse_box(plan_text, "--plan" if args.plan else PLAN_KEY) if plan_text else None
    cov = coverage(lev, lane_spacing(s), s.frame, plan)
    step("coverage")
    if s.format == "recording":
        tracks = tracks_of_recording(s.source)
    else:
        tracks = tracks_of_column(s.t, s.x, s.y, s.extra.get("detector"))
    approaches = close_approaches(tracks)
    integrity = integrity_of(s.source, s.format)
    step("checks")
    info = render.info_from_metadata(s.metadata, s.source)
    fig = render.figure(grid, s.frame, tracks=_tracks(lev), targets=targets, info=info)
    data = ReportData(source=s.source, metadata=dict(s.metadata), crs=s.frame.crs,
                      kind=str(s.metadata.get("kind", "gradient")), noise_nT=res.noise_nT,
                      threshold_nT=res.threshold_nT, area_m2=res.area_m2, lanes=res.lanes,
                      targets=dig_list(targets), density=density_of(res, targets),
                      coverage=cov, approaches=approaches, detectors=len(tracks),
                      integrity=integrity, map_png=render.png_bytes(fig),
                      dates=survey_dates(s.metadata, s.t))
    step("map")
    return data, fig


def run_report(args: argparse.Namespace) -> int:
    from acquisition.maps.report import render_html, write_pdf
    from acquisition.progress import Progress

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise InputError(f"{out}: a report is written as .html or .pdf")
    with Progress(9, "report") as bar:
        data, fig = build_report(args, lambda w: bar.step(what=w))
        if suffix == ".pdf":
            write_pdf(out, data, fig)
        else:
            out.write_text(render_html(data), encoding="utf-8")
        bar.step(what="written")
    print(f"{out}: report of {Path(args.survey).name}: {len(data.targets)} signals, coverage "
          f"{data.coverage.percent:.1f} %, {len(data.coverage.gaps)} gaps, density class "
          + "/".join(str(d["class"]) for d in data.density)
          + f", integrity {data.integrity.status}")
    return 0


# ---------------------------------------------------------------------- uxo qa
def register_qa(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("qa", help="the procedure's QA verdict, or random QA boxes",
                       description="Compare the QA team's signals inside the boxes with the "
                                   "team's target list. Exit 0: pass, 1: fail. With "
                                   "--pick-boxes: draw the random 20 x 20 m boxes.")
    p.add_argument("original", nargs="?", help="the team's target list (CSV)")
    p.add_argument("qa", nargs="?", help="the QA team's target list, or their resurvey file")
    p.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1",
                   help="a QA box (repeat); same coordinates as the target lists")
    p.add_argument("--survey", metavar="FILE",
                   help="the team's survey file: QA boxes must lie inside it")
    p.add_argument("--pick-boxes", metavar="AREA",
                   help="draw boxes in AREA (X0,Y0,X1,Y1, or a survey file: its extent)")
    p.add_argument("--share", type=float, default=0.01, help="share of the area (default 0.01)")
    p.add_argument("--seed", type=int, default=None, help="random seed (record it)")
    p.add_argument("--box-size", type=float, default=20.0, metavar="M", help=argparse.SUPPRESS)
    add_survey_input_arguments(p)
    add_field_arguments(p)
    p.set_defaults(func=_guard("qa", run_qa))


def _extent_of_survey(path: str, args: argparse.Namespace) -> tuple[float, float, float, float]:
    from acquisition.maps.inputs import load_survey

    s = load_survey(path, args)
    ok = np.isfinite(s.x) & np.isfinite(s.y)
    return (float(s.x[ok].min()), float(s.y[ok].min()), float(s.x[ok].max()),
            float(s.y[ok].max()))


def _qa_list(path: str, args: argparse.Namespace) -> tuple[list[Any], Any]:
    """A QA target list, or a resurvey processed now; with the resurvey's extent if any."""
    from acquisition.maps.daily import TARGETS_MAGIC
    from acquisition.maps.inputs import load_survey, process
    from acquisition.maps.targets import from_results, read_target_list

    p = Path(path)
    head = p.read_text(encoding="utf-8-sig", errors="replace")[:4096] if p.is_file() else ""
    first = head.splitlines()[0] if head else ""
    rows = [ln for ln in head.splitlines() if ln and not ln.startswith("#")]
    cols = {c.strip() for c in rows[0].split(",")} if rows else set()
    if first.startswith(TARGETS_MAGIC) or ("depth" in cols and "value" not in cols):
        return read_target_list(p), None
    s = load_survey(path, args)
    ok = np.isfinite(s.x) & np.isfinite(s.y)
    ext = (float(s.x[ok].min()), float(s.y[ok].min()), float(s.x[ok].max()),
           float(s.y[ok].max()))
    return from_results(process(s, args).targets), ext


def run_qa(args: argparse.Namespace) -> int:
    from acquisition.maps.coverage import parse_box
    from acquisition.maps.qa import (
        SHALLOW_FAIL_PERCENT,
        SHALLOW_M,
        check_boxes_inside,
        match_radius,
        pick_boxes,
        qa_verdict,
    )
    from acquisition.maps.targets import read_target_list

    if args.pick_boxes:
        if args.seed is None:
            raise InputError("--pick-boxes needs --seed N (record it so the draw can be "
                             "repeated)")
        try:
            area = parse_box(args.pick_boxes, "--pick-boxes")
        except InputError:
            if not Path(args.pick_boxes).is_file():
                raise
            area = _extent_of_survey(args.pick_boxes, args)
        boxes = pick_boxes(area, args.share, args.seed, args.box_size)
        a = (area[2] - area[0]) * (area[3] - area[1])
        print(f"# {len(boxes)} boxes of {args.box_size:g} x {args.box_size:g} m, "
              f"{len(boxes) * args.box_size ** 2 / a * 100:.2f} % of {a:.0f} m², seed "
              f"{args.seed}")
        for b in boxes:
            print(f"--box {b[0]:g},{b[1]:g},{b[2]:g},{b[3]:g}")
        return 0
    if not args.original or not args.qa:
        raise InputError("give ORIGINAL and QA target lists (or a QA resurvey) with --box, "
                         "or --pick-boxes AREA --seed N")
    boxes = [parse_box(b, "--box") for b in args.box]
    original = read_target_list(args.original)
    qa, qa_extent = _qa_list(args.qa, args)
    planes = {t.plane for t in original + qa}
    if len(planes) > 1:
        raise InputError(f"{args.original} and {args.qa} are in different coordinates (one "
                         "local x, y, the other easting, northing): give both the same")
    if args.survey:
        check_boxes_inside(boxes, _extent_of_survey(args.survey, args),
                           f"the survey {args.survey}")
    if qa_extent is not None:
        check_boxes_inside(boxes, qa_extent, f"the QA resurvey {args.qa}")
    if args.survey is None and qa_extent is None:
        pts = [(t.x, t.y) for t in original + qa]
        if pts:
            xs, ys = zip(*pts, strict=True)
            check_boxes_inside(boxes, (min(xs), min(ys), max(xs), max(ys)),
                               "the area of the two target lists", tol=20.0)
    res = qa_verdict(original, qa, boxes)
    verdict = "PASS" if res.passed else "FAIL"
    print(f"QA {verdict}: {len(res.qa_signals)} QA signals in {len(boxes)} boxes, "
          f"{len(res.missed)} missed ({len(res.missed_shallow)} of {len(res.shallow)} to "
          f"{SHALLOW_M} m = {res.shallow_missed_percent:.2f} %, limit < "
          f"{SHALLOW_FAIL_PERCENT} %; {len(res.missed_deep)} deeper, limit 0)")
    for r in res.reasons():
        print(f"  fails: {r}")
    for t in sorted(res.missed, key=lambda t: -t.depth):
        print(f"  missed: {t.id} at x {t.x:.2f}, y {t.y:.2f}, depth {t.depth:.2f} m "
              f"(no team signal within {match_radius(t.depth):.2f} m)")
    if not res.qa_signals:
        print("  note: the QA team listed no signal inside the boxes")
    return 0 if res.passed else 1


# ---------------------------------------------------------------------- uxo daily
def register_daily(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("daily", help="the daily log from a day's recordings and target lists",
                       description="Area surveyed, signals and targets by class, per team "
                                   "and day.")
    p.add_argument("folder", help="folder of the day's survey files and target lists")
    p.add_argument("-o", "--output", required=True, help="log CSV to write")
    add_survey_input_arguments(p)
    add_field_arguments(p)
    p.set_defaults(func=_guard("daily", run_daily))


def run_daily(args: argparse.Namespace) -> int:
    from acquisition.maps.daily import CLASSES, collect, daily_rows, write_log

    rows = daily_rows(collect(Path(args.folder), args))
    write_log(args.output, rows)
    for r in rows:
        cls = ", ".join(f"{c} {r.by_class.get(c, 0)}" for c in CLASSES)
        print(f"{r.date} {r.team}: {len(r.surveys)} surveys, {r.area_m2:.0f} m², "
              f"{r.signals} signals ({cls})")
    print(f"log written: {args.output}")
    return 0


# ---------------------------------------------------------------------- uxo export-gis
def register_export_gis(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-gis", help="GeoPackage of targets, walked lanes and coverage",
                       description="Write targets, walked lanes and coverage polygons as one "
                                   "GeoPackage in the survey's CRS, and the targets as a "
                                   "WGS84 CSV.")
    p.add_argument("survey", help="survey file (CSV or recording)")
    p.add_argument("--targets", metavar="CSV", required=True, help="target list")
    p.add_argument("-o", "--output", required=True, help="GeoPackage to write (.gpkg)")
    p.add_argument("--csv", metavar="FILE",
                   help="WGS84 target CSV to write (default: OUTPUT with -targets-wgs84.csv)")
    add_survey_input_arguments(p)
    p.set_defaults(func=_guard("export-gis", run_export_gis))


def run_export_gis(args: argparse.Namespace) -> int:
    from acquisition.maps.coverage import coverage
    from acquisition.maps.gis import write_geopackage, write_wgs84_csv
    from acquisition.maps.inputs import lane_spacing, load_survey
    from acquisition.maps.levelled import level_survey

    out = Path(args.output)
    if out.suffix.lower() != ".gpkg":
        raise InputError(f"{out}: the GIS export is a GeoPackage (.gpkg)")
    s = load_survey(args.survey, args)
    if not s.frame.georeferenced:
        raise InputError(f"{args.survey}: GIS layers need a CRS: give --crs (and "
                         "--grid-origin/--grid-rotation for a taped grid)")
    lev = level_survey(s, lane_spacing(s))
    targets = _targets_for(args.targets, s, lev)
    cov = coverage(lev, lane_spacing(s), s.frame)
    write_geopackage(out, targets, cov, s.frame)
    csv_path = Path(args.csv) if args.csv else out.with_name(out.stem + "-targets-wgs84.csv")
    write_wgs84_csv(csv_path, targets)
    unplaced = sum(1 for t in targets if not math.isfinite(t.lat))
    print(f"{out}: {len(targets)} targets, {len(cov.runs)} lane runs, coverage "
          f"{cov.percent:.1f} % (CRS {s.frame.crs}); {csv_path}: WGS84 targets"
          + (f" ({unplaced} without lat/lon)" if unplaced else ""))
    return 0
