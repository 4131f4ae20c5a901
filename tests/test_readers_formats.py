"""Survey readers on real public excerpts and on files written from the formats' documentation.

Each test reads through `read_survey` (format sniffed from content unless
said) and checks values, positions, lanes and rejects against numbers worked
out from the file's own lines.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from acquisition.survey import SurveyReadError, read_survey

DATA = Path(__file__).parent / "data"
BLOCK1 = DATA / "pymagra_Block1_excerpt.stn"
DATA1 = DATA / "pymagra_data_1_excerpt.stn"
MAGMAP = DATA / "geophpy_Mag_ex1_excerpt.dat"
SENSYS = DATA / "sensys_magwalk.csv"
GEOSOFT = DATA / "geosoft_line.xyz"


def _write(tmp_path: Path, text: str, name: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _lineno(path: Path, needle: str) -> int:
    """1-based number of the line of ``path`` holding ``needle``."""
    for i, line in enumerate(path.read_text().splitlines()):
        if needle in line:
            return i + 1
    raise AssertionError(f"{needle!r} not in {path}")


def _sec(hms: str) -> float:
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


# -- MagMap STN ------------------------------------------------------------------
def test_stn_marks_interpolated_in_time_both_sensors_kept():
    s = read_survey(BLOCK1)
    assert s.format == "stn" and s.n == 259 and not s.bad_rows
    assert set(np.unique(s.lane)) == {162, 163, 164, 165}
    assert s.metadata["kind"] == "tf_gradient" and s.value_unit == "nT" and s.unit_stated
    # line 163: start (81.5, 30) at 12:22:27.70, mark (81.5, 15) at 12:22:39.80,
    # end (81.5, 12) at 12:22:42.70
    row = s.line_numbers == _lineno(BLOCK1, "52280.898  52253.625 12:22:28.00")
    assert row.sum() == 1
    y_exp = 30 + (_sec("12:22:28.00") - _sec("12:22:27.70")) / (
        _sec("12:22:39.80") - _sec("12:22:27.70")) * (15 - 30)
    assert s.x[row][0] == pytest.approx(81.5) and s.y[row][0] == pytest.approx(y_exp, abs=1e-6)
    assert s.value[row][0] == pytest.approx(52253.625 - 52280.898, abs=1e-9)
    assert s.extra["sensor1"][row][0] == 52280.898 and s.extra["sensor2"][row][0] == 52253.625
    row = s.line_numbers == _lineno(BLOCK1, "52277.243  52253.595 12:22:42.60")
    y_exp = 15 + (_sec("12:22:42.60") - _sec("12:22:39.80")) / (
        _sec("12:22:42.70") - _sec("12:22:39.80")) * (12 - 15)
    assert s.y[row][0] == pytest.approx(y_exp, abs=1e-6)
    # line direction: 163 and 165 walk south, 162 and 164 north
    head = {int(ln): float(s.extra["line_heading_deg"][s.lane == ln][0]) for ln in (162, 163)}
    assert head == {162: 0.0, 163: 180.0}
    # times: the file's clock, 2023-05-14
    assert s.t.min() == pytest.approx(1684066907.2)
    assert np.all(np.diff(s.t) > 0)  # newest-first file read back in time order


def test_stn_single_sensor_streams_and_oldest_first_order(tmp_path):
    s1 = read_survey(BLOCK1, stream="sensor1")
    s2 = read_survey(BLOCK1, stream="sensor2")
    g = read_survey(BLOCK1)
    assert s1.metadata["kind"] == s2.metadata["kind"] == "total"
    np.testing.assert_allclose(s2.value - s1.value, g.value, atol=1e-6)
    lines = BLOCK1.read_text().splitlines()
    flipped = _write(tmp_path, "\n".join([lines[0], *reversed(lines[1:])]) + "\n", "old.stn")
    f = read_survey(flipped)
    np.testing.assert_array_equal(f.value, g.value)
    np.testing.assert_allclose(f.y, g.y, atol=1e-9)
    with pytest.raises(SurveyReadError, match="unknown STN stream 'top'"):
        read_survey(BLOCK1, stream="top")


def test_stn_full_line_of_twenty_marks_hits_each_mark():
    s = read_survey(DATA1)
    assert s.format == "stn" and s.n == 921 and set(s.lane) == {20}
    assert s.y.min() >= 0 and s.y.max() == pytest.approx(100.0)
    # the reading stamped with a mark's time sits on the mark
    for hms, y in (("13:37:40.20", 50.0), ("13:38:03.30", 75.0)):
        row = s.line_numbers == _lineno(DATA1, f"{hms} 09/30/18   0")
        assert s.y[row][0] == pytest.approx(y, abs=1e-9)


STN_DAMAGED = """99 0 0
0   48001.000  48000.000 10:00:00.00 01/02/24   0
3        0.000       10.000 10:00:01.00 01/02/24          0           1           1   5
0   48003.000  48002.000 10:00:00.80 01/02/24   0
0   48002.500  garbage 10:00:00.60 01/02/24   0
0   48002.000  48001.000 10:00:00.20 01/02/24   0
3        0.000        0.000 10:00:00.00 01/02/24          3           1           0  36
0   47999.000  47998.000 09:59:59.00 01/02/24   0
"""


def test_stn_damaged_and_unplaced_rows_are_counted(tmp_path):
    p = _write(tmp_path, STN_DAMAGED, "d.stn")
    s = read_survey(p, max_bad_share=0.9)
    # start 10:00:00.00 at y=0, end 10:00:01.00 at y=10: a reading at .20 is at y=2
    np.testing.assert_allclose(s.y, [2.0, 8.0])
    np.testing.assert_allclose(s.value, [-1.0, -1.0])
    reasons = {b.line: b.reason for b in s.bad_rows}
    assert set(reasons) == {2, 5, 8}
    assert "outside a line" in reasons[8] and "expected a reading" in reasons[5]
    assert "outside a line" in reasons[2]  # after the end mark
    with pytest.raises(SurveyReadError, match=r"d\.stn:2: .*3 of 5 data rows are bad"):
        read_survey(p)


# -- MagMap X,Y,TOP_RDG,BOTTOM_RDG,VRT_GRAD ----------------------------------------
def test_magmap_export_gradient_is_bottom_minus_top_and_separation_measured():
    s = read_survey(MAGMAP)
    assert s.format == "magmap-xyz" and s.n == 120
    rows = np.genfromtxt(MAGMAP, delimiter=",", names=True, encoding="utf-8-sig")
    np.testing.assert_allclose(s.value, rows["BOTTOM_RDG"] - rows["TOP_RDG"], atol=1e-9)
    assert s.metadata["kind"] == "tf_gradient"
    assert s.metadata["sensor_separation_m"] == "0.65"
    # VRT_GRAD is nT/m: times the separation it is the same difference in nT
    np.testing.assert_allclose(rows["VRT_GRAD"] * 0.65, s.value, atol=0.65e-3 + 1e-9)
    np.testing.assert_array_equal(s.x[:3], [58, 58, 58])
    assert not s.frame.georeferenced


def test_vrt_grad_alone_is_nT_per_m_not_nT(tmp_path):
    """The x1.54 bug: VRT_GRAD taken as nT made every moment 1/0.65 too large."""
    rows = np.genfromtxt(MAGMAP, delimiter=",", names=True, encoding="utf-8-sig")
    text = "X,Y,VRT_GRAD\n" + "".join(f"{r['X']},{r['Y']},{r['VRT_GRAD']}\n" for r in rows)
    p = _write(tmp_path, text, "grad.dat")
    s = read_survey(p)
    assert s.format == "magmap-xyz" and s.value_unit == "nT/m" and s.unit_stated
    np.testing.assert_allclose(s.value, rows["VRT_GRAD"] * 0.65)
    s = read_survey(p, metadata={"sensor_separation_m": "1.0"})
    np.testing.assert_allclose(s.value, rows["VRT_GRAD"])
    with pytest.raises(SurveyReadError, match="format's values are in nT/m"):
        read_survey(p, metadata={"value_unit": "nT"})


# -- Sensys ------------------------------------------------------------------------
def test_sensys_no_fix_rows_are_counted_never_placed_at_zero():
    s = read_survey(SENSYS)
    assert s.format == "sensys" and s.positions == "geographic"
    assert s.n == 22 and s.rows_seen == 25
    no_fix = [b for b in s.bad_rows if b.no_data]
    assert [b.line for b in no_fix] == [13, 14]
    assert all("no GNSS fix" in b.reason for b in no_fix)
    damaged = [b for b in s.bad_rows if not b.no_data]
    assert [b.line for b in damaged] == [6] and "'garbage' is not a number" in damaged[0].reason
    assert s.frame.crs == "EPSG:32648"
    lat, lon = s.lat_lon()
    assert lat.min() > 16.8 and lon.min() > 107.1  # nothing near 0 N, 0 E
    # decimal commas read; unit from the header
    assert s.value[0] == -1.25 and s.value_unit == "nT" and s.unit_stated
    # positions go back to the file's degrees
    first = SENSYS.read_text().splitlines()[1].split(";")
    assert lat[0] == pytest.approx(float(first[2]), abs=1e-9)
    assert lon[0] == pytest.approx(float(first[3]), abs=1e-9)
    # 14.03.2026 08:15:00.000 UTC
    assert s.t[0] == 1773476100.0


def test_sensys_many_no_fix_rows_do_not_fail_the_read(tmp_path):
    rows = ["Datum;Zeit;Breite;Laenge;Fix;TFA [pT]"]
    for i in range(20):
        lat, lon = ("0", "0") if i < 12 else (f"16,82{i:02d}", f"107,10{i:02d}")
        rows.append(f"2026-03-14;10:00:{i:02d},5;{lat};{lon};4;{1000 * i}")
    p = _write(tmp_path, "\n".join(rows) + "\n", "drone.csv")
    s = read_survey(p)
    assert s.n == 8 and len(s.bad_rows) == 12
    np.testing.assert_allclose(s.value, np.arange(12, 20) * 1.0)  # pT -> nT
    assert s.t[0] == pytest.approx(1773482400.0 + 12.5)


def test_sensys_value_column_named_or_refused(tmp_path):
    text = "Date;Time;Lat;Lon;Probe A;Probe B\n2026-03-14;10:00:00.0;16.82;107.1;1,5;2,5\n"
    p = _write(tmp_path, text, "two.csv")
    with pytest.raises(SurveyReadError, match=r"two\.csv:1: no value column in header"):
        read_survey(p)
    s = read_survey(p, columns={"value": "Probe B"})
    assert s.value.tolist() == [2.5]


# -- Geosoft XYZ --------------------------------------------------------------------
def test_geosoft_lines_dummies_and_crs():
    with pytest.raises(SurveyReadError, match="no CRS is given"):
        read_survey(GEOSOFT)
    s = read_survey(GEOSOFT, metadata={"crs": "EPSG:32648"})
    assert s.format == "geosoft-xyz" and s.n == 9
    assert s.lane.tolist() == [10] * 5 + [900] * 4
    assert [(b.line, b.no_data) for b in s.bad_rows] == [(14, True)]
    e, n = s.easting_northing()
    assert e[6] == 713000.5 and n[6] == 1861001.0
    assert s.value[6] == 43600.75 and not s.unit_stated


def test_geosoft_without_names_uses_first_three_columns(tmp_path):
    p = _write(tmp_path, "/ no names here\nLine L1\n 1.0 2.0 3.5 9\n 1.0 2.5 4.5 9\n"
               "tie T7\n 2 2 * 9\n 2 3 1e999 9\n", "bare.xyz")
    s = read_survey(p, max_bad_share=0.5)
    assert s.x.tolist() == [1.0, 1.0] and s.value.tolist() == [3.5, 4.5]
    assert s.lane.tolist() == [1, 1]
    assert any("column 3" in n for n in s.notes)
    assert [b.line for b in s.bad_rows] == [6, 7]
    with pytest.raises(SurveyReadError, match="no column 'MAG'"):
        read_survey(p, columns={"value": "MAG"})


# -- generic table -------------------------------------------------------------------
@pytest.mark.parametrize("delim", [",", ";", "\t", "   "])
def test_table_delimiters_and_column_mapping(tmp_path, delim):
    # names hold no blank in a whitespace table
    head = delim.join(["Easting", "Northing", "Grad[nT/m]" if delim == "   " else "Grad [nT/m]",
                       "Note"])
    body = [delim.join(["713000.5", "1861000.25", "2.0", "a"]),
            delim.join(["713001.5", "1861000.25", "-4.0", "b"])]
    p = _write(tmp_path, "\n".join([head, *body]) + "\n", "t.txt")
    s = read_survey(p, columns={"x": "Easting", "y": "Northing", "value": "Grad"},
                    metadata={"crs": "EPSG:32648", "sensor_separation_m": "0.5"})
    assert s.format == "table" and s.value_unit == "nT/m"
    np.testing.assert_allclose(s.value, [1.0, -2.0])
    e, n = s.easting_northing()
    np.testing.assert_allclose(e, [713000.5, 713001.5])
    np.testing.assert_allclose(n, [1861000.25, 1861000.25])


def test_table_lat_lon_mapping_and_bad_rows(tmp_path):
    text = ("# kind: total\nid,LAT_WGS84,LON_WGS84,TMI\n1,16.82,107.10,43600.5\n"
            "2,16.82001,107.10,43601.0\n3,95.0,107.1,1\n4,16.8,107.1,oops\n"
            "5,16.82002,107.10,43601.5\n")
    p = _write(tmp_path, text, "ll.csv")
    s = read_survey(p, columns={"lat": "LAT_WGS84", "lon": "LON_WGS84", "value": "TMI"},
                    max_bad_share=0.5)
    assert s.positions == "geographic" and s.frame.crs == "EPSG:32648"
    assert s.value.tolist() == [43600.5, 43601.0, 43601.5]
    assert [b.line for b in s.bad_rows] == [5, 6]
    assert s.metadata["kind"] == "total"
    # 0.00001 degree of latitude is 1.107 m
    assert s.y[1] - s.y[0] == pytest.approx(1.107, abs=0.002)


def test_table_errors_name_file_line_and_expectation(tmp_path):
    p = _write(tmp_path, "a,b,c\n1,2,3\n", "abc.csv")
    with pytest.raises(SurveyReadError, match=r"abc\.csv:1: no x and y \(or lat and lon\) "
                                              r"and value column in header \[a, b, c\].*--columns"):
        read_survey(p)
    with pytest.raises(SurveyReadError, match=r"no 'Grad' \(value\) column"):
        read_survey(p, columns={"x": "a", "y": "b", "value": "Grad"})
    with pytest.raises(SurveyReadError, match="unknown key 'z'"):
        read_survey(p, columns={"z": "a"})
    s = read_survey(p, columns={"x": "a", "y": "b", "value": "c"})
    assert (s.x[0], s.y[0], s.value[0]) == (1.0, 2.0, 3.0)


def test_sniffing_picks_each_format():
    assert {read_survey(p).format for p in (BLOCK1, MAGMAP, SENSYS)} == {
        "stn", "magmap-xyz", "sensys"}
    assert read_survey(GEOSOFT, metadata={"crs": "EPSG:32648"}).format == "geosoft-xyz"


def test_utf8_bom_and_crlf_everywhere(tmp_path):
    for src in (MAGMAP, SENSYS, GEOSOFT, BLOCK1):
        raw = src.read_bytes().removeprefix(b"\xef\xbb\xbf")
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        p = tmp_path / src.name
        p.write_bytes(b"\xef\xbb\xbf" + raw)
        a = read_survey(p, metadata={"crs": "EPSG:32648"})
        b = read_survey(src, metadata={"crs": "EPSG:32648"})
        assert a.format == b.format and a.n == b.n
        np.testing.assert_array_equal(a.value, b.value)
        assert math.isclose(float(a.x.sum()), float(b.x.sum()))


# -- GEM GSM-19 (decoded by acquisition.drivers.gsm19_dump) ---------------------------
WG = DATA / "gsm19_walking_grad.wg"
WG_MAGPY = DATA / "gsm19_magpy_wg_gps.wg"


def test_gsm19_walking_gradiometer_with_gps():
    s = read_survey(WG)
    assert s.format == "gsm19" and s.positions == "geographic"
    assert s.metadata["kind"] == "tf_gradient" and s.metadata["sensor_separation_m"] == "0.65"
    assert s.value_unit == "nT/m" and s.n == 11 and s.rows_seen == 13
    # nT/m times the 0.65 m sensor distance: -2.00 nT/m is -1.3 nT
    assert s.value[0] == pytest.approx(-1.3) and s.value[-1] == pytest.approx(3.5 * 0.65)
    assert [(b.line, b.no_data) for b in s.bad_rows] == [(10, False), (17, True)]
    assert s.lane.tolist() == [1] * 6 + [2] * 5
    # 09:00:00 at UTC+07 on 14 III 26 is 02:00 UTC
    assert s.t[0] == 1773453600.0
    lat, lon = s.lat_lon()
    assert lat[0] == pytest.approx(16.82, abs=1e-9) and lon[6] == pytest.approx(
        107.1000094, abs=1e-9)  # as written, 7 decimals
    tot = read_survey(WG, stream="total")
    assert tot.metadata["kind"] == "total" and tot.value[0] == 43612.0


def test_gsm19_magpy_docstring_dump():
    s = read_survey(WG_MAGPY)
    assert s.format == "gsm19" and s.n == 2
    np.testing.assert_allclose(s.value, [12.61 * 1.06, 17.18 * 1.06])
    lat, lon = s.lat_lon()
    np.testing.assert_allclose(lat, [47.9263435, 47.9263438], atol=1e-9)
    np.testing.assert_allclose(lon, [15.8653717, 15.865384], atol=1e-9)
    assert s.frame.crs == "EPSG:32633"  # UTM 33N, Austria


def test_gsm19_base_station_is_refused_with_the_reason(tmp_path):
    p = _write(tmp_path, "Gem Systems GSM-19W 3101329 v6.0 24 X 2003\n"
               "ID 1 file 23c-ost .b   09 VII10\ndatum  48000.00\n\n"
               "115014.0  48484.12 99\n115015.0  48487.04 99\n", "base.b")
    with pytest.raises(SurveyReadError, match=r"base\.b: a GSM-19 base-station dump has no "
                                              "positions: it is a diurnal record"):
        read_survey(p)
    p = _write(tmp_path, "115014.0  48484.12 99\n115015.0  48487.04 99\n", "rows.txt")
    with pytest.raises(SurveyReadError, match="base-station dump"):
        read_survey(p)  # sniffed from the rows alone


def test_comma_separated_drone_export_and_zero_positions_in_any_table(tmp_path):
    text = ("Date,Time,Latitude,Longitude,Heading,Altitude AGL,TMI,Bx,By,Bz\n"
            "2026-03-14,10:00:00.0,16.82,107.1,90,30,43600.5,1,2,3\n"
            "2026-03-14,10:00:00.1,0.0,0.0,90,30,43600.7,1,2,3\n"
            "2026-03-14,10:00:00.2,16.82001,107.1,90,30,43600.9,1,2,3\n")
    p = _write(tmp_path, text, "drone.csv")
    s = read_survey(p)
    assert s.format == "sensys" and s.value.tolist() == [43600.5, 43600.9]
    assert [(b.line, b.no_data) for b in s.bad_rows] == [(3, True)]
    s = read_survey(p, format="table", columns={"lat": "Latitude", "lon": "Longitude",
                                                "value": "TMI"})
    assert s.value.tolist() == [43600.5, 43600.9]
    assert [(b.line, b.no_data) for b in s.bad_rows] == [(3, True)]
