"""``uxo map``: a known object at the right pixel of the PNG and the right cell of the GeoTIFF,
blanked lanes left unpainted, derived products, and bad input refused without output."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import tifffile
from maps_helpers import pole_source, write_survey
from PIL import Image

from acquisition.cli import main
from acquisition.geomag import QUANG_TRI

E0, N0 = 700000.0, 1850000.0
CRS = {"crs": "EPSG:32648", "grid_origin_e": E0, "grid_origin_n": N0, "site": "Cam Lo B3",
       "date": "2026-12-07"}
#: On a lane line (lanes at x = 0.5, 1.5, ...): the gridded extreme lies right over it.
OBJ = (5.5, 8.3, 0.8, 1.0)
MISSED_LANE = 9  # x = 9.5


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("map")
    s = write_survey(d / "s.csv", [pole_source(*OBJ)], metadata=CRS, skip_lanes=[MISSED_LANE])
    assert main(["process", str(s), "-o", str(d / "t.csv")]) == 0
    return d


def _magenta_centroid(rgb: np.ndarray) -> tuple[float, float]:
    r, g, b = (rgb[..., k].astype(int) for k in range(3))
    m = (r > 200) & (g < 80) & (b > 200)
    assert m.sum() > 20, "no target ring drawn"
    rows, cols = np.nonzero(m)
    return float(cols.mean()), float(rows.mean())


def _pixel(img: Image.Image, e: float, n: float) -> tuple[float, float]:
    left, top, right, bottom = (float(v) for v in img.text["uxo:axes_px"].split(","))
    x0, x1, y0, y1 = (float(v) for v in img.text["uxo:axes_extent"].split(","))
    return (left + (e - x0) / (x1 - x0) * (right - left),
            top + (y1 - n) / (y1 - y0) * (bottom - top))


def test_png_target_at_its_pixel_and_missed_lane_unpainted(site, capsys):
    out = site / "m.png"
    assert main(["map", str(site / "s.csv"), "--targets", str(site / "t.csv"),
                 "-o", str(out)]) == 0
    img = Image.open(out)
    img.load()
    rgb = np.asarray(img.convert("RGB"))
    left, _, right, _ = (float(v) for v in img.text["uxo:axes_px"].split(","))
    x0, x1, _, _ = (float(v) for v in img.text["uxo:axes_extent"].split(","))
    px_per_m = (right - left) / (x1 - x0)
    # the ring is where the buried object is (true position, not the list's)
    cx, cy = _magenta_centroid(rgb)
    tx, ty = _pixel(img, E0 + OBJ[0], N0 + OBJ[1])
    assert math.hypot(cx - tx, cy - ty) < 0.1 * px_per_m
    # the middle of the lane nobody walked is not painted: figure white there
    wx, wy = _pixel(img, E0 + 9.5, N0 + 15.0)
    assert tuple(rgb[round(wy), round(wx)]) == (255, 255, 255)
    # ... while the anomaly right beside the object is (its centre is strongly coloured)
    ax_, ay_ = _pixel(img, E0 + OBJ[0], N0 + OBJ[1] + 0.35)
    assert np.ptp(rgb[round(ay_), round(ax_)].astype(int)) > 60
    assert "1 targets" in capsys.readouterr().out


def test_geotiff_object_cell_and_geokeys(site):
    out = site / "m.tif"
    assert main(["map", str(site / "s.csv"), "-o", str(out)]) == 0
    with tifffile.TiffFile(out) as tf:
        geo = tf.geotiff_metadata
        v = tf.asarray()
    assert int(geo["ProjectedCSTypeGeoKey"]) == 32648
    assert int(geo["GTRasterTypeGeoKey"]) == 1  # pixel is area
    sx, sy, _ = geo["ModelPixelScale"]
    _, _, _, te, tn, _ = geo["ModelTiepoint"]
    # the strongest cell is the one holding the object
    r, c = np.unravel_index(np.nanargmax(np.abs(v)), v.shape)
    e, n = te + (c + 0.5) * sx, tn - (r + 0.5) * sy
    assert math.hypot(e - (E0 + OBJ[0]), n - (N0 + OBJ[1])) <= 0.2
    # no data is never painted: the missed lane's middle is NaN, the walked lanes are not
    col = int((E0 + 9.5 - te) // sx)
    assert np.isnan(v[:, col]).all()
    col_walked = int((E0 + 8.5 - te) // sx)
    assert np.isfinite(v[:, col_walked]).all()


def test_rotated_grid_geotiff_places_the_object(tmp_path):
    md = {**CRS, "grid_rotation_deg": 30.0}
    s = write_survey(tmp_path / "r.csv", [pole_source(*OBJ)], metadata=md)
    out = tmp_path / "r.tif"
    assert main(["map", str(s), "-o", str(out)]) == 0
    with tifffile.TiffFile(out) as tf:
        m = np.array(tf.pages[0].tags["ModelTransformationTag"].value).reshape(4, 4)
        v = tf.asarray()
    r, c = np.unravel_index(np.nanargmax(np.abs(v)), v.shape)
    e, n = (m @ np.array([c + 0.5, r + 0.5, 0.0, 1.0]))[:2]
    a = math.radians(30.0)
    te = E0 + OBJ[0] * math.cos(a) + OBJ[1] * math.sin(a)
    tn = N0 - OBJ[0] * math.sin(a) + OBJ[1] * math.cos(a)
    assert math.hypot(e - te, n - tn) <= 0.2


def test_analytic_signal_peaks_over_the_object_in_quang_tri(tmp_path):
    # At 23 deg inclination the reading's extreme is off a deep object (here
    # 0.75 m); the analytic signal's peak is nearer, within two cells.
    from dsp_synth import induced

    obj = (6.5, 10.0, 2.0)
    s = write_survey(tmp_path / "q.csv", [induced(*obj, 10.0, QUANG_TRI)], field=QUANG_TRI,
                     n_lanes=14, metadata=CRS)
    off = {}
    for product in ("analytic_signal", "levelled"):
        out = tmp_path / f"{product}.tif"
        assert main(["map", str(s), "-o", str(out), "--product", product]) == 0
        with tifffile.TiffFile(out) as tf:
            geo, v = tf.geotiff_metadata, tf.asarray()
        r, c = np.unravel_index(np.nanargmax(np.abs(v)), v.shape)
        e = geo["ModelTiepoint"][3] + (c + 0.5) * 0.25
        n = geo["ModelTiepoint"][4] - (r + 0.5) * 0.25
        off[product] = math.hypot(e - E0 - obj[0], n - N0 - obj[1])
    assert off["analytic_signal"] <= 0.5
    assert off["analytic_signal"] < off["levelled"]


def test_vertical_derivative_and_rtp_are_finite_where_data_are(site):
    for product in ("vertical_derivative", "rtp"):
        out = site / f"{product}.tif"
        assert main(["map", str(site / "s.csv"), "-o", str(out), "--product", product]) == 0
        v = tifffile.imread(out)
        assert np.isfinite(v).mean() > 0.8
        assert np.nanmax(np.abs(v)) > 1.0


def test_pdf_map(site):
    out = site / "m.pdf"
    assert main(["map", str(site / "s.csv"), "--targets", str(site / "t.csv"),
                 "-o", str(out)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"


def _fails(capsys, argv: list[str], out: Path, *words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for w in words:
        assert w in err
    assert not out.exists()


def test_empty_survey_is_refused(tmp_path, capsys):
    s = tmp_path / "empty.csv"
    s.write_text("# uxo-survey v1\nt,x,y,lane,value\n", encoding="utf-8")
    out = tmp_path / "e.png"
    _fails(capsys, ["map", str(s), "-o", str(out)], out, "empty.csv")


def test_target_list_outside_the_survey_is_refused(site, tmp_path, capsys):
    far = tmp_path / "far.csv"
    far.write_text("id,x,y,depth\n1,5.0,8.0,0.5\n2,250.0,900.0,1.2\n", encoding="utf-8")
    out = tmp_path / "o.png"
    _fails(capsys, ["map", str(site / "s.csv"), "--targets", str(far), "-o", str(out)],
           out, "far.csv:3", "outside the survey")


def test_geotiff_without_crs_is_refused(tmp_path, capsys):
    s = write_survey(tmp_path / "local.csv", [pole_source(*OBJ)])
    out = tmp_path / "l.tif"
    _fails(capsys, ["map", str(s), "-o", str(out)], out, "CRS")


def test_bad_target_row_names_file_and_line(site, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("# uxo-targets v1\nid,x,y,depth\n1,5.0,8.0,0.5\n2,five,8.0,1.2\n",
                   encoding="utf-8")
    out = tmp_path / "b.png"
    _fails(capsys, ["map", str(site / "s.csv"), "--targets", str(bad), "-o", str(out)],
           out, "bad.csv:4")


def test_target_list_in_eastings_northings_is_placed_by_the_survey(site, tmp_path):
    en = tmp_path / "en.csv"
    en.write_text(f"id,easting,northing,depth\nK,{E0 + OBJ[0]},{N0 + OBJ[1]},0.80\n",
                  encoding="utf-8")
    out = tmp_path / "en.png"
    assert main(["map", str(site / "s.csv"), "--targets", str(en), "-o", str(out)]) == 0
    img = Image.open(out)
    img.load()
    cx, cy = _magenta_centroid(np.asarray(img.convert("RGB")))
    tx, ty = _pixel(img, E0 + OBJ[0], N0 + OBJ[1])
    assert math.hypot(cx - tx, cy - ty) < 2.0


def test_crs_options_override_the_file(tmp_path):
    s = write_survey(tmp_path / "local.csv", [pole_source(*OBJ)])
    out = tmp_path / "o.tif"
    assert main(["map", str(s), "-o", str(out), "--crs", "EPSG:32648", "--grid-origin",
                 "600000,1800000"]) == 0
    with tifffile.TiffFile(out) as tf:
        geo = tf.geotiff_metadata
    assert int(geo["ProjectedCSTypeGeoKey"]) == 32648
    assert 600000 - 1 < geo["ModelTiepoint"][3] < 600001
    assert 1800019 < geo["ModelTiepoint"][4] < 1800021
