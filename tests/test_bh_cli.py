"""``uxo borehole plan|process|coverage`` end to end on real files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from acquisition.borehole.logs import write_borehole_csv
from acquisition.borehole_cli import register_borehole
from acquisition.targets_io import read_targets_csv
from simulator.borehole_sim import make_scenario


def _run(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="uxo")
    register_borehole(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


def test_plan_writes_csv_and_geojson(tmp_path: Path, capsys) -> None:
    out, gj = tmp_path / "plan.csv", tmp_path / "plan.geojson"
    assert _run(["borehole", "plan", "--rect", "0,0,10,8", "-o", str(out),
                 "--geojson", str(gj)]) == 0
    rows = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert rows[0] == "hole,x,y,row,col,inside" and len(rows) > 20
    fc = json.loads(gj.read_text())
    assert sum(f["properties"]["kind"] == "hole" for f in fc["features"]) == len(rows) - 1
    assert "1.15" in capsys.readouterr().out


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> tuple[Path, object]:
    sc = make_scenario(41, area=(0.0, 0.0, 6.0, 4.0), n_targets=1)
    path = tmp_path_factory.mktemp("bh") / "logs.csv"
    write_borehole_csv(path, sc.logs, {"hole_spacing_m": 2.0})
    # A bad row and a backwards depth step: reported, not fatal.
    text = path.read_text().splitlines()
    text.insert(12, "R01C01,0,0,oops,1,2")
    path.write_text("\n".join(text) + "\n")
    return path, sc


def test_process_writes_targets_with_holes(survey, tmp_path: Path, capsys) -> None:
    path, sc = survey
    out, gj = tmp_path / "t.csv", tmp_path / "t.geojson"
    # GeoJSON is WGS84: collars nobody placed are refused before any work
    assert _run(["borehole", "process", str(path), "-o", str(out), "--geojson", str(gj),
                 "--field-inclination", "23.2", "--separation", "0.65"]) == 2
    assert "--grid-origin" in capsys.readouterr().err and not out.exists()
    assert _run(["borehole", "process", str(path), "-o", str(out), "--geojson", str(gj),
                 "--field-inclination", "23.2", "--separation", "0.65",
                 "--crs", "EPSG:32648", "--grid-origin", "713000,1861000",
                 "--grid-rotation", "90"]) == 0
    rows = read_targets_csv(out)
    # a grid turned 90 degrees: local y runs east, local x south
    r0 = rows[0]
    assert float(r0["easting"]) == pytest.approx(713000 + float(r0["y"]), abs=2e-3)
    assert float(r0["northing"]) == pytest.approx(1861000 - float(r0["x"]), abs=2e-3)
    assert 16.5 < float(r0["lat"]) < 17.0 and 106.9 < float(r0["lon"]) < 107.2
    assert len(rows) == 1
    r, b = rows[0], sc.bodies[0]
    assert np.linalg.norm([float(r["x"]) - b.x, float(r["y"]) - b.y,
                           float(r["depth"]) - b.depth]) < 0.35
    assert len(r["holes"].split(";")) >= 2
    assert {"id", "x", "y", "depth", "moment", "quality"} <= set(r)
    fc = json.loads(gj.read_text())
    assert fc["features"][0]["geometry"]["coordinates"][2] == pytest.approx(-float(r["depth"]),
                                                                            abs=1e-3)
    cap = capsys.readouterr()
    assert "line 13" in cap.err and "collar E 7130" in cap.out
    lon, lat = fc["features"][0]["geometry"]["coordinates"][:2]
    assert lat == pytest.approx(float(r0["lat"]), abs=1e-8)
    assert lon == pytest.approx(float(r0["lon"]), abs=1e-8)


def test_coverage_from_logs_and_from_plan(survey, tmp_path: Path, capsys) -> None:
    path, _ = survey
    gj = tmp_path / "cov.geojson"
    code = _run(["borehole", "coverage", str(path), "--rect", "0,0,6,4", "--min-moment", "1",
                 "--geojson", str(gj)])
    out = capsys.readouterr().out
    assert "searched" in out and code in (0, 1)
    assert json.loads(gj.read_text())["properties"]["min_moment_Am2"] == 1.0
    plan = tmp_path / "plan.csv"
    _run(["borehole", "plan", "--rect", "0,0,6,4", "-o", str(plan)])
    assert _run(["borehole", "coverage", str(plan), "--planned", "--rect", "0,0,6,4",
                 "--noise", "1", "--min-moment", "1"]) == 0
    assert "signed off: yes" in capsys.readouterr().out


def test_missing_file_and_bad_area(tmp_path: Path) -> None:
    assert _run(["borehole", "process", str(tmp_path / "nope.csv"), "-o",
                 str(tmp_path / "o.csv")]) == 2
    assert _run(["borehole", "plan", "--rect", "0,0,0,5", "-o", str(tmp_path / "p.csv")]) == 2
