"""Survey CSV reader/writer (fuzzed), target CSV/GeoJSON writer and `uxo process`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from dsp_synth import induced, survey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.cli import main as process_main
from acquisition.coords import CoordinateError, SurveyFrame
from acquisition.events import Target
from acquisition.survey_csv import (
    SurveyCSVError,
    format_survey_csv,
    parse_survey_csv,
    read_survey_csv,
    write_survey_csv,
)
from acquisition.targets_io import read_targets_csv, targets_geojson, write_targets_csv

GOOD = """# uxo-survey v1
# kind: total
# sensor_height_m: 0.4
# operator: Nguyen: team 3
t,x,y,lane,value
0.00,0.502,0.000,0,0.412
0.10,0.499,0.100,0,0.388
"""


def test_parses_metadata_and_columns():
    d = parse_survey_csv(GOOD)
    assert d.format_line == "uxo-survey v1"
    assert d.metadata["kind"] == "total"
    assert d.metadata["operator"] == "Nguyen: team 3"
    assert d.geometry() == {"kind": "total", "sensor_height_m": 0.4, "sensor_separation_m": 0.65}
    np.testing.assert_array_equal(d.x, [0.502, 0.499])
    np.testing.assert_array_equal(d.value, [0.412, 0.388])
    np.testing.assert_array_equal(d.lane, [0, 0])
    assert d.t is not None and d.bad_rows == []
    assert list(d.line_numbers) == [6, 7]


def test_columns_in_any_order_and_extra_kept():
    d = parse_survey_csv("value,y,quality,x\n1.5,2,9,3\n2.5,4,8,5\n")
    np.testing.assert_array_equal(d.x, [3, 5])
    np.testing.assert_array_equal(d.value, [1.5, 2.5])
    np.testing.assert_array_equal(d.extra["quality"], [9, 8])
    assert d.t is None and d.lane is None


def test_bad_rows_reported_with_line_numbers_and_skipped():
    text = "x,y,value\n1,2,3\n1,2\nfoo,2,3\n4,5,6\n1,2,nan\n7,8,9\n" + "1,1,1\n" * 20
    d = parse_survey_csv(text, max_bad_share=0.2)
    assert [b.line for b in d.bad_rows] == [3, 4, 6]
    assert "2 fields" in d.bad_rows[0].reason
    assert d.n == 23
    assert list(d.x[:3]) == [1, 4, 7]


def test_too_many_bad_rows_fail_clearly():
    with pytest.raises(SurveyCSVError, match="3 of 4 data rows are bad"):
        parse_survey_csv("x,y,value\n1,2,3\na,b,c\n1\n,,\n")


def test_missing_header_or_columns():
    with pytest.raises(SurveyCSVError, match="no header"):
        parse_survey_csv("# kind: gradient\n\n")
    with pytest.raises(SurveyCSVError, match="value"):
        parse_survey_csv("x,y,reading\n1,2,3\n")


def test_roundtrip_file(tmp_path):
    rng = np.random.default_rng(1)
    x, y, v = rng.normal(size=(3, 50))
    t = np.arange(50) * 0.1
    lane = np.repeat([0, 1], 25)
    p = write_survey_csv(tmp_path / "s.csv", x, y, v, t=t, lane=lane,
                         metadata={"kind": "gradient", "lane_spacing_m": 1.0})
    d = read_survey_csv(p)
    np.testing.assert_array_equal(d.x, x)
    np.testing.assert_array_equal(d.value, v)
    np.testing.assert_array_equal(d.t, t)
    np.testing.assert_array_equal(d.lane, lane)
    assert d.metadata == {"kind": "gradient", "lane_spacing_m": "1.0"}


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
junk = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
    lambda s: "\n" not in s and "\r" not in s)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=30),
       junk_lines=st.lists(st.tuples(st.integers(0, 40), junk), max_size=10))
def test_fuzz_never_crashes_never_loses_good_rows(rows, junk_lines):
    lines = ["x,y,value"] + [f"{a!r},{b!r},{c!r}" for a, b, c in rows]
    good_at = list(range(1, len(lines)))
    for pos, text in sorted(junk_lines, reverse=True):
        k = min(max(1, pos), len(lines))
        lines.insert(k, text)
        good_at = [g + 1 if g >= k else g for g in good_at]
    src = "\n".join(lines) + "\n"
    try:
        d = parse_survey_csv(src, max_bad_share=1.0)
    except SurveyCSVError:
        pytest.fail("max_bad_share=1.0 must never fail on a file with a header")
    got = list(zip(d.x, d.y, d.value, strict=True))
    # every good row is there, in order, at its line number (junk may add rows
    # only if it happens to be a valid x,y,value row itself)
    it = iter(zip(got, d.line_numbers, strict=True))
    for (a, b, c), ln in zip(rows, good_at, strict=True):
        for row, line in it:
            if line == ln + 1:
                assert row == (a, b, c)
                break
        else:
            pytest.fail(f"good row at line {ln + 1} lost")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text):
    try:
        d = parse_survey_csv(text, max_bad_share=1.0)
    except SurveyCSVError:
        return
    assert d.x.size == d.y.size == d.value.size == d.line_numbers.size
    assert np.isfinite(d.x).all() and np.isfinite(d.value).all()


def _target(**kw):
    base = dict(stream_id="s", target_id=3, x=1.2345, y=-2.5, depth=1.5, moment=(0.1, 1.9, -0.8),
                quality=0.93, sigma_x=0.02, sigma_y=0.03, sigma_depth=0.05, amplitude_nT=-12.3,
                lanes=(2, 3, 4), flags=("edge",))
    base.update(kw)
    return Target(**base)


def test_targets_csv_and_geojson(tmp_path):
    t = _target()
    p = write_targets_csv(tmp_path / "t.csv", [t, _target(target_id=4, sigma_x=math.nan,
                                                          flags=())], {"noise_nT": 0.5})
    text = p.read_text()
    assert text.startswith("# uxo-targets v1\n")
    rows = read_targets_csv(p)
    assert len(rows) == 2
    r = rows[0]
    assert (r["id"], r["x"], r["y"], r["depth"]) == ("3", "1.234", "-2.500", "1.500")
    assert float(r["moment"]) == pytest.approx(t.moment_abs, rel=1e-4)
    assert r["size_class"] == "projectile" and r["lanes"] == "2;3;4" and r["flags"] == "edge"
    assert rows[1]["sigma_x"] == ""
    # GeoJSON is WGS84 (RFC 7946): a grid nobody placed cannot be written
    with pytest.raises(CoordinateError, match="--crs"):
        targets_geojson([t], SurveyFrame())
    frame = SurveyFrame("EPSG:32648", 713000.0, 1861000.0, 0.0)
    gj = json.loads(json.dumps(targets_geojson([t], frame)))
    f = gj["features"][0]
    assert gj["type"] == "FeatureCollection"
    lon, lat, z = f["geometry"]["coordinates"]
    # the same point back through pyproj, independently of targets_io
    from pyproj import Transformer
    e, n = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True).transform(lon, lat)
    assert e == pytest.approx(713001.234, abs=1e-3) and n == pytest.approx(1860997.5, abs=1e-3)
    assert z == -1.5 and 16.5 < lat < 17.0 and 106.9 < lon < 107.2
    assert f["properties"]["depth"] == 1.5 and f["properties"]["flags"] == ["edge"]
    assert f["properties"]["easting"] == pytest.approx(713001.234, abs=1.1e-3)


@given(st.dictionaries(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8),
                       st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20),
                       max_size=4))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_targets_csv_comments_never_break_the_rows(tmp_path, comments):
    # a comment value with a newline (an operator's note) stays one comment line
    p = write_targets_csv(tmp_path / "t.csv", [_target(), _target(target_id=4)], comments)
    rows = read_targets_csv(p)
    assert [r["id"] for r in rows] == ["3", "4"]
    assert rows[0]["depth"] == "1.500"


def test_uxo_process_csv(tmp_path, capsys):
    x, y, v, lane, _geo = survey([induced(3.3, 10.2, 1.2, 1.0)], noise=0.3, offsets=1.0,
                                seed=2)
    src = tmp_path / "survey.csv"
    write_survey_csv(src, x, y, v, t=np.arange(x.size) * 0.1, lane=lane,
                     metadata={"kind": "gradient", "sensor_height_m": 0.3})
    with src.open("a") as f:
        f.write("garbage,line\n")
    out, gj = tmp_path / "targets.csv", tmp_path / "targets.geojson"
    # GeoJSON is WGS84: an unplaced taped grid is refused before any work, with the way out
    assert process_main(["process", str(src), "-o", str(out), "--geojson", str(gj)]) == 2
    assert "--grid-origin" in capsys.readouterr().err and not out.exists()
    rc = process_main(["process", str(src), "-o", str(out), "--geojson", str(gj),
                       "--crs", "EPSG:32648", "--grid-origin", "713000,1861000"])
    assert rc == 0
    cap = capsys.readouterr()
    assert "skipped bad row" in cap.err and f"{src}:{len(src.read_text().splitlines())}" in cap.err
    assert "lanes: 8" in cap.out and "signals found: 1" in cap.out and "class" in cap.out
    rows = read_targets_csv(out)
    assert len(rows) == 1
    assert abs(float(rows[0]["x"]) - 3.3) < 0.15 and abs(float(rows[0]["depth"]) - 1.2) < 0.15
    assert len(json.loads(gj.read_text())["features"]) == 1


def test_uxo_process_option_overrides_metadata(tmp_path, capsys):
    # data made as a total-field survey, file metadata wrongly says gradient
    x, y, v, lane, _ = survey([induced(3.3, 10.2, 1.2, 1.0)], kind="total", noise=0.3, seed=2)
    src = tmp_path / "s.csv"
    write_survey_csv(src, x, y, v, lane=lane, metadata={"kind": "gradient"})
    out = tmp_path / "t.csv"
    assert process_main(["process", str(src), "-o", str(out), "--kind", "total",
                         "--field-inclination", "23.2"]) == 0
    rows = read_targets_csv(out)
    assert len(rows) == 1 and abs(float(rows[0]["depth"]) - 1.2) < 0.15
    assert "total survey" in capsys.readouterr().out


def test_uxo_process_site_on_the_command_line_overrides_the_files_field(tmp_path, capsys):
    # a survey in Germany (inclination ~65 deg) whose file still carries the
    # Quang Tri field a template left there: --lat/--lon/--date must win
    from acquisition.geomag import QUANG_TRI, from_igrf
    site = from_igrf(50.0, 10.0, "2026-06-01")
    x, y, v, lane, _ = survey([induced(3.3, 10.2, 1.2, 1.0, field=site)], noise=0.3, seed=2,
                              field=site)
    src = tmp_path / "s.csv"
    write_survey_csv(src, x, y, v, lane=lane, metadata={"kind": "gradient",
                                                         **QUANG_TRI.to_dict()})
    out = tmp_path / "t.csv"
    assert process_main(["process", str(src), "-o", str(out), "--lat", "50", "--lon", "10",
                         "--date", "2026-06-01"]) == 0
    cap = capsys.readouterr().out
    assert f"inc {site.inclination_deg:.1f}" in cap and "IGRF lat=50.0 lon=10.0" in cap
    rows = read_targets_csv(out)
    assert len(rows) == 1 and abs(float(rows[0]["depth"]) - 1.2) < 0.15
    assert abs(float(rows[0]["x"]) - 3.3) < 0.15 and abs(float(rows[0]["y"]) - 10.2) < 0.15
    assert f"# field_inclination_deg: {site.inclination_deg}" in out.read_text()
    # half a place is refused, not replaced by the default field
    assert process_main(["process", str(src), "-o", str(out), "--lat", "50"]) == 2
    assert "longitude" in capsys.readouterr().err


def test_uxo_process_rejects_missing_and_broken(tmp_path, capsys):
    assert process_main(["process", str(tmp_path / "nope.csv"), "-o", "x.csv"]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,value\n" + "a,b,c\n" * 10)
    assert process_main(["process", str(bad), "-o", str(tmp_path / "o.csv")]) == 2
    assert "bad" in capsys.readouterr().err


def test_uxo_process_hdf5_recording(tmp_path, capsys):
    from acquisition.dsp.batch import make_descriptor
    from acquisition.types import SampleBlock
    from recorder.sink import RecorderSink

    x, y, v, _, geo = survey([induced(4.4, 8.0, 1.0, 1.0)], noise=0.2, seed=9)
    desc = make_descriptor(geo, 10.0, "grad0")
    path = tmp_path / "rec.h5"
    sink = RecorderSink(path, session="dsp-test")
    sink.add_stream(desc)
    sink.start()
    for seq, i in enumerate(range(0, x.size, 100)):
        sl = slice(i, i + 100)
        sink.write_block(SampleBlock("grad0", seq, i, int(i * 1e8), 10.0, v[sl, None].copy(),
                                     np.column_stack((x[sl], y[sl]))))
    sink.close()
    out = tmp_path / "t.csv"
    assert process_main(["process", str(path), "-o", str(out)]) == 0
    rows = read_targets_csv(out)
    assert len(rows) == 1
    assert abs(float(rows[0]["x"]) - 4.4) < 0.15 and abs(float(rows[0]["y"]) - 8.0) < 0.15
    assert "lanes: 8" in capsys.readouterr().out


def test_format_survey_csv_minimal():
    text = format_survey_csv(np.array([1.0]), np.array([2.0]), np.array([3.0]))
    assert text == "# uxo-survey v1\nx,y,value\n1.0,2.0,3.0\n"


def test_uxo_process_position_sigma_sets_the_reported_horizontal_sigma(tmp_path, capsys):
    x, y, v, lane, _geo = survey([induced(3.3, 10.2, 1.2, 1.0)], noise=0.3, seed=2)
    src = tmp_path / "survey.csv"
    write_survey_csv(src, x, y, v, lane=lane, metadata={"kind": "gradient"})
    sig = {}
    for ps in ("0.02", "0.2"):
        out = tmp_path / f"t{ps}.csv"
        assert process_main(["process", str(src), "-o", str(out), "--position-sigma", ps]) == 0
        (row,) = read_targets_csv(out)
        sig[ps] = (float(row["sigma_x"]), float(row["sigma_y"]), float(row["sigma_depth"]))
    # the floor is added in quadrature to the fit's own sigma, per axis
    assert 0.02 <= sig["0.02"][0] < 0.05 and 0.02 <= sig["0.02"][1] < 0.05
    assert 0.2 <= sig["0.2"][0] < 0.21 and 0.2 <= sig["0.2"][1] < 0.21
    assert sig["0.02"][2] == sig["0.2"][2]  # depth is not a horizontal matter
    for bad in ("-0.1", "nan", "x"):
        with pytest.raises(SystemExit):
            process_main(["process", str(src), "-o", str(tmp_path / "b.csv"),
                          "--position-sigma", bad])
    assert "position-sigma" in capsys.readouterr().err
