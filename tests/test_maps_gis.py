"""``uxo export-gis``: the GeoPackage reopened with its CRS (targets, lanes, coverage) and the
WGS84 target CSV checked against pyproj."""

from __future__ import annotations

import csv

import numpy as np
import pyogrio
import pytest
from maps_helpers import pole_source, write_survey
from pyproj import Transformer

from acquisition.cli import main

CRS = {"crs": "EPSG:32648", "grid_origin_e": 700000.0, "grid_origin_n": 1850000.0}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("gis")
    s = write_survey(d / "s.csv", [pole_source(5.5, 8.3, 0.8, 1.0),
                                   pole_source(2.5, 14.0, 1.5, 4.0)],
                     metadata=CRS, skip_lanes=[9])
    assert main(["process", str(s), "-o", str(d / "t.csv")]) == 0
    assert main(["export-gis", str(s), "--targets", str(d / "t.csv"), "-o",
                 str(d / "site.gpkg")]) == 0
    return d


def test_geopackage_layers_with_crs(site):
    path = site / "site.gpkg"
    layers = {name: kind for name, kind in pyogrio.list_layers(path)}
    assert layers == {"targets": "Point", "lanes": "LineString", "coverage": "Polygon"}
    for name in layers:
        info = pyogrio.read_info(path, layer=name)
        assert info["crs"] == "EPSG:32648"
    meta, _, geom, fields = pyogrio.raw.read(path, layer="targets")
    got = dict(zip(meta["fields"], fields, strict=True))
    rows = [r for r in csv.DictReader(ln for ln in (site / "t.csv").read_text().splitlines()
                                      if not ln.startswith("#"))]
    assert sorted(got["id"]) == sorted(r["id"] for r in rows)
    for g, tid, depth in zip(geom, got["id"], got["depth"], strict=True):
        row = next(r for r in rows if r["id"] == tid)
        x, y = np.frombuffer(g[5:21], "<f8")
        assert x == pytest.approx(700000.0 + float(row["x"]), abs=1e-3)
        assert y == pytest.approx(1850000.0 + float(row["y"]), abs=1e-3)
        assert depth == pytest.approx(float(row["depth"]))


def test_lanes_and_coverage_polygons(site):
    path = site / "site.gpkg"
    _, _, _, lane_fields = pyogrio.raw.read(path, layer="lanes")
    lanes = set(lane_fields[0].tolist())
    assert len(lanes) == 11  # 12 lanes planned, lane 9 never walked
    meta, _, geom, fields = pyogrio.raw.read(path, layer="coverage")
    areas = dict(zip(meta["fields"], fields, strict=True))["area_m2"]
    assert areas.sum() == pytest.approx(11 * 20.0 * 1.0, rel=1e-6)
    # each strip is 1 m wide in easting around its lane line
    ring = np.frombuffer(geom[0][13:], "<f8").reshape(-1, 2)
    assert np.ptp(ring[:, 0]) == pytest.approx(1.0)
    assert np.ptp(ring[:, 1]) == pytest.approx(20.0)


def test_wgs84_csv_lat_lon(site):
    lines = (site / "site-targets-wgs84.csv").read_text().splitlines()
    assert lines[0] == "# uxo-targets-wgs84 v1"
    rows = list(csv.DictReader(lines[1:]))
    to_wgs = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)
    for r in rows:
        lon, lat = to_wgs.transform(float(r["easting"]), float(r["northing"]))
        assert float(r["lat"]) == pytest.approx(lat, abs=1e-7)
        assert float(r["lon"]) == pytest.approx(lon, abs=1e-7)
        assert 16 < lat < 17.5 and 106 < lon < 107.5  # Quang Tri


def test_export_without_crs_is_refused(tmp_path, capsys):
    s = write_survey(tmp_path / "local.csv", [pole_source(5.5, 8.3, 0.8, 1.0)])
    t = tmp_path / "t.csv"
    t.write_text("id,x,y,depth\n1,5.5,8.3,0.8\n", encoding="utf-8")
    out = tmp_path / "o.gpkg"
    assert main(["export-gis", str(s), "--targets", str(t), "-o", str(out)]) == 2
    assert "need a CRS" in capsys.readouterr().err
    assert not out.exists()
    # ... and given on the command line it is placed
    assert main(["export-gis", str(s), "--targets", str(t), "-o", str(out), "--crs",
                 "EPSG:32648", "--grid-origin", "700000,1850000"]) == 0
    assert pyogrio.read_info(out, layer="targets")["crs"] == "EPSG:32648"
