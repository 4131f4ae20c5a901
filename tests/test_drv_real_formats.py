"""Real instrument output the drivers used to misread, and overflow after unit scaling.

Sample lines and where they come from:

* GSM-19 dumps: the docstring of ``readGSM19`` in MagPy (geomagpy/magpy,
  ``magpy/lib/format_gsm19.py``, BSD-3-Clause): a v6 base-station file, a v7
  base-station header, walking-gradiometer (``.wg``) files with and without
  GPS. The v7 clock-format row (``10:00:00.0  57100.00 99``) is the form the
  issue reports from v7 files.
* G-882: the CM-221 counter's optional fields as the Geometrics manual gives
  them (analog channel ``$ 49895.131,1249,0512``, Julian clock
  ``,D123H14M05S33_25``).
* NMEA: the first lines of gpsd's ``test/daemon/bu353s4.log`` (a GlobalSat
  BU-353-S4, 2014-12-31; the GPSD project, BSD-2-Clause), whose first GGA
  comes before the first RMC.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition import cli
from acquisition.decode import decode_bytes
from acquisition.drivers import fgm3d, g882, gsm19, lineproto
from acquisition.drivers.g882 import G882Driver
from acquisition.drivers.gsm19 import decode_gsm19_dump
from acquisition.drivers.nmea import NmeaDriver

# --- GSM-19 -------------------------------------------------------------------------------------
MAGPY_V6 = """Gem Systems GSM-19W 3101329 v6.0 24 X 2003
ID 1 file 23c-ost .b   09 VII10
datum  48000.00


115014.0  48484.12 99
115015.0  48487.04 99
115016.0  48489.92 99
115017.0  48488.16 99
"""
MAGPY_V7_HEADER = """/Gem Systems GSM-19GWV 7122568 v7.0 15 III 2018 M ewv10fl.v7vbs
/ID 1 file 01survey.b   05 IX 18
/datum  48500.00
/ 047.9278532   015.8618024
/UTC+01
/33T
/no AC filter
/12.3V
/tune initialize Y auto-tune Y 048.6uT
/time nT sq
"""
V7_ROWS = "10:00:00.0  57100.00 99\n10:00:01.0  57100.25 99\n"
MAGPY_WG_GPS = """/Gem Systems GSM-19GWV 7122568 v7.0 4 V 2011 M ewv10fl.v7vbs
/ID 1 file 24survey.wg  02VIII12
/00106 sensor distance cm
/X Y elevation nT nT/m sq cor-nT sat time picket-x picket-y
line  000017
047.9263435  015.8653717  001089  48382.35  0012.61 99  000000.00 07 115950.0  4.00  39.00
047.9263438  015.8653840  001089  48386.04  0017.18 99  000000.00 07 115951.0 * *
"""
MAGPY_WG_GRID = """/Gem Systems GSM-19GWV 7122568 v7.0 4 V 2011 M ewv10fl.v7vbs
/ID 1 file 07survey.wg  30  I 14
/00100 sensor distance cm
/X Y nT nT/m sq cor-nT time picket-x picket-y
0  0  48420.59  0002.90 99 * 110804.0  0  0
0  0  48420.21  0002.58 99 * 110805.0 * *
"""


def test_gsm19_stream_two_digit_quality_is_not_a_gradient():
    out = gsm19.parse_lines([b"115014.0  48484.12 99", b"115015.0  48487.04 99"])
    assert out.values[:, 0].tolist() == [48484.12, 48487.04]
    assert out.values[:, 1].tolist() == [99.0, 99.0]
    assert np.isnan(out.values[:, 2]).all()
    assert out.device_ns.tolist() == [(11 * 3600 + 50 * 60 + 14) * 10**9,
                                      (11 * 3600 + 50 * 60 + 15) * 10**9]
    # A gradient always carries a point or a sign; gradient then quality on a line of four.
    g = gsm19.parse_lines_reference([b"120000.0 48000.00 12.5", b"120001.0 48000.10 -3 99"])
    assert g.values[:, 2].tolist() == [12.5, -3.0] and np.isnan(g.values[0, 1])
    assert g.values[1, 1] == 99.0


@pytest.mark.parametrize("text, n", [(MAGPY_V7_HEADER + V7_ROWS, 2), (MAGPY_WG_GPS, 2),
                                     (MAGPY_WG_GRID, 2), (MAGPY_V6, 4)])
def test_uxo_decode_gsm19_reads_real_dumps(text, n):
    _, rows, summary = decode_bytes("gsm19", text.encode())
    assert summary.frames_ok == n and summary.frames_rejected == 0
    assert all(48000 < r[2] < 58000 and r[3] == 99.0 for r in rows)


def test_dump_v6_base_station():
    d, rejects = decode_gsm19_dump(MAGPY_V6)
    assert rejects == []
    assert d.field_nT.tolist() == [48484.12, 48487.04, 48489.92, 48488.16]
    assert d.quality.tolist() == [99.0] * 4 and not d.has_gradient and not d.has_gps
    assert d.line.tolist() == [6, 7, 8, 9]
    assert d.date == dt.date(2010, 7, 9) and d.info["file_type"] == "b"
    assert d.info["version"] == "6.0" and d.info["datum_nT"] == "48000.00"
    t0 = int(dt.datetime(2010, 7, 9, 11, 50, 14, tzinfo=dt.UTC).timestamp()) * 10**9
    assert d.utc_epoch_ns().tolist() == [t0 + k * 10**9 for k in range(4)]


def test_dump_v7_clock_times_and_utc_offset():
    d, rejects = decode_gsm19_dump(MAGPY_V7_HEADER + V7_ROWS)
    assert rejects == []
    assert d.time_ns.tolist() == [36000 * 10**9, 36001 * 10**9]
    assert d.field_nT.tolist() == [57100.0, 57100.25] and d.quality.tolist() == [99, 99]
    assert d.date == dt.date(2018, 9, 5) and d.utc_offset_h == 1.0
    assert d.info["base_lat_lon"] == "47.9278532 15.8618024"
    # 10:00 at UTC+01 is 09:00 UTC.
    t0 = int(dt.datetime(2018, 9, 5, 9, 0, tzinfo=dt.UTC).timestamp()) * 10**9
    assert d.utc_epoch_ns().tolist() == [t0, t0 + 10**9]


def test_dump_walking_gradiometer_with_gps():
    d, rejects = decode_gsm19_dump(MAGPY_WG_GPS)
    assert rejects == []
    assert d.lat.tolist() == [47.9263435, 47.9263438]
    assert d.lon.tolist() == [15.8653717, 15.865384]
    assert d.alt.tolist() == [1089.0, 1089.0]
    assert d.field_nT.tolist() == [48382.35, 48386.04]
    assert d.gradient.tolist() == [12.61, 17.18] and d.quality.tolist() == [99, 99]
    assert d.time_ns.tolist() == [(11 * 3600 + 59 * 60 + 50) * 10**9,
                                  (11 * 3600 + 59 * 60 + 51) * 10**9]
    assert d.survey_line.tolist() == [17, 17] and d.line.tolist() == [6, 7]
    assert d.info["sensor_distance_m"] == "1.06" and d.date == dt.date(2012, 8, 2)
    assert np.isnan(d.x).all()


def test_dump_walking_gradiometer_without_gps():
    d, rejects = decode_gsm19_dump(MAGPY_WG_GRID)
    assert rejects == []
    assert d.x.tolist() == [0, 0] and d.y.tolist() == [0, 0] and not d.has_gps
    assert d.gradient.tolist() == [2.9, 2.58] and d.field_nT.tolist() == [48420.59, 48420.21]
    assert d.time_ns.tolist() == [40084 * 10**9, 40085 * 10**9]
    assert d.date == dt.date(2014, 1, 30)


def test_dump_counts_bad_lines_with_their_numbers_and_keeps_the_rest():
    text = MAGPY_V6 + ("115018.0  48486.06 9x\n"       # line 10: not a number
                       "115019.0  48487.17\n"          # line 11: a field short
                       "256019.0  48487.17 99\n"       # line 12: hour 25
                       "115020.0  480.44 99\n"         # line 13: out of range
                       "garbled text\n"                # line 14
                       "115021.0  48487.44 99\n")
    d, rejects = decode_gsm19_dump(text)
    assert [(r.line, r.reason) for r in rejects] == [
        (10, "number"), (11, "field_count"), (12, "time"), (13, "range"), (14, "text")]
    assert d.n == 5 and d.line.tolist() == [6, 7, 8, 9, 15]
    # Across midnight the clock goes on into the next day.
    d2, _ = decode_gsm19_dump("235959.0  48000.00 99\n000001.0  48000.00 99\n")
    assert d2.time_ns.tolist() == [86399 * 10**9, 86401 * 10**9]


# --- G-882 --------------------------------------------------------------------------------------
def test_g882_manual_optional_fields():
    lines = [b"$ 49895.131,1249,0512", b"$ 49895.131,1249,D123H14M05S33_25",
             b"$ 49895.131,1249,0512,D123H14M05S33_25"]
    plain = g882.parse_lines(lines)
    assert plain.n == 3 and plain.rejects == []
    assert plain.values.tolist() == [[49895.131, 1249.0]] * 3
    assert "analog" in plain.info  # seen but not a channel without the option
    fmt = g882.G882Format(analog=True, year_ns=g882.year_epoch_ns(2026))
    out = g882.parse_lines(lines[2:] * 2, fmt)
    assert out.values.tolist() == [[49895.131, 1249.0, 512.0]] * 2
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=122, hours=14, minutes=5,
                                                              seconds=33)
    assert out.device_ns.tolist() == [int(t.timestamp()) * 10**9 + 250_000_000] * 2
    assert g882.clock_ns(b"D001H00M00S00") == 0
    assert g882.parse_lines([b"$ 49895.131,1249,D367H00M00S00"]).rejects == [(0, "time")]


def test_g882_driver_describes_the_analog_channel():
    drv = G882Driver("unused", analog=True, year=2026)
    desc = drv.describe()
    assert desc.channel_names == ("tf", "signal", "analog")
    assert desc.geometry["device_clock"] == "UTC epoch"
    drv.feed(b"$ 49895.131,1249,0512,D001H00M00S01_5\n")
    block = drv.flush()
    assert block.data.tolist() == [[49895.131, 1249.0, 512.0]]
    assert block.device_time_ns == g882.year_epoch_ns(2026) + 1_500_000_000


def test_g882_garbage_burst_without_line_end_keeps_the_next_frame():
    drv = G882Driver("unused")
    noise = bytes(range(128, 256)) + b"\x00\x01\x07 12,3"
    drv.feed(b"$ 43600.000,1209\r\n" + noise + b"$ 43603.616,1210\r\n$ 43604.001,1211\r\n")
    block = drv.flush()
    assert block.data[:, 0].tolist() == [43600.0, 43603.616, 43604.001]
    assert drv.counters.rejected_by_reason == {"garbage": 1}
    # Two sensors: the frame is both pairs, found behind the noise.
    two = g882.parse_lines([noise + b"$ 43603.616,1210,$ 43601.000,0999"], 2)
    assert two.values.tolist() == [[43603.616, 1210, 43601.0, 999]]
    assert two.rejects == [(0, "garbage")]


@settings(max_examples=150, deadline=None)
@given(noise=st.binary(max_size=60).map(lambda b: b.replace(b"$", b"").replace(b"\n", b"")),
       f=st.floats(17000, 99999.999), s=st.integers(0, 9999),
       analog=st.none() | st.integers(0, 99999),
       clock=st.none() | st.tuples(st.integers(1, 366), st.integers(0, 23),
                                   st.integers(0, 59), st.integers(0, 59), st.integers(0, 99)))
def test_g882_resync_and_optional_fields_roundtrip(noise, f, s, analog, clock):
    parts = [b"$ %.3f" % f, b"%d" % s]
    if analog is not None:
        parts.append(b"%04d" % analog)
    if clock is not None:
        parts.append(b"D%03dH%02dM%02dS%02d_%02d" % clock)
    frame = b",".join(parts)
    fmt = g882.G882Format(analog=True)
    for fast in (g882.parse_lines, g882.parse_lines_reference):
        out = fast([noise + frame], fmt)
        assert out.n == 1
        assert out.rejects == ([(0, "garbage")] if noise else [])
        row = out.values[0]
        assert row[0] == float(b"%.3f" % f) and row[1] == s
        assert (math.isnan(row[2]) if analog is None else row[2] == analog)
        if clock is None:
            assert out.device_ns is None
        else:
            d, h, m, sec, cs = clock
            assert out.device_ns.tolist() == [
                ((((d - 1) * 24 + h) * 60 + m) * 60 + sec) * 10**9 + cs * 10**7]


# --- NMEA: gpsd's bu353s4.log, GGA before RMC -------------------------------------------------
GPSD_BU353S4 = b"""# Name: GlobalSat BU-353-S4
$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7D
$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33
$GPRMC,030719.000,A,3747.0873,S,17518.8938,E,0.69,181.39,311214,,,A*7D
$GPGGA,030720.000,3747.0875,S,17518.8938,E,1,08,1.1,59.8,M,23.7,M,,0000*70
$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33
$GPRMC,030720.000,A,3747.0875,S,17518.8938,E,1.15,181.39,311214,,,A*7B
$GPGGA,030721.000,3747.0876,S,17518.8934,E,1,08,1.1,60.1,M,23.7,M,,0000*7D
"""


def _nmea_times(driver: NmeaDriver, data: bytes, per_line: bool) -> tuple[list[float], dict]:
    lines = [ln for ln in data.splitlines() if ln.startswith(b"$")]
    out: list[float] = []
    info: dict[str, str] = {}
    for batch in ([[ln] for ln in lines] if per_line else [lines]):
        p = driver.parse_lines(batch)
        out += p.values[:, 0].tolist()
        info.update(p.info)
    return out, info


@pytest.mark.parametrize("per_line", [True, False])
def test_nmea_gga_before_rmc_keeps_one_time_base(per_line):
    t, info = _nmea_times(NmeaDriver("unused"), GPSD_BU353S4, per_line)
    tod = 3 * 3600 + 7 * 60 + 19  # 11239 s
    assert t == [tod, tod, tod + 1, tod + 1, tod + 2]  # no jump to 1.4e9 at the RMC
    assert info == {"utc_day0": "2014-12-31"}
    # Given the date, the same log is on UTC epoch seconds from its first row.
    dated = NmeaDriver("unused", date="2014-12-31")
    day = dt.datetime(2014, 12, 31, tzinfo=dt.UTC).timestamp()
    t2, info2 = _nmea_times(dated, GPSD_BU353S4, per_line)
    assert t2 == [day + x for x in t] and info2 == {}


def test_uxo_decode_gpsd_log_reports_the_day():
    _, rows, summary = decode_bytes("nmea", GPSD_BU353S4)
    assert [r[1] for r in rows] == [11239.0, 11239.0, 11240.0, 11240.0, 11241.0]
    assert summary.info["utc_day0"] == "2014-12-31"
    assert summary.rejected_by_reason == {"no_prefix": 1}  # gpsd's "# Name:" comment


# --- overflow after unit scaling, banners -------------------------------------------------------
def test_fgm3d_tesla_that_overflows_in_nanotesla_is_rejected():
    lines = [b'1648557860787,"1,0E308","5,4772E-5","2,5547E-5","6,5188E-5"',
             b'1648557860788,"2,4429E-5","5,4772E-5","2,5547E-5","6,5188E-5"']
    for parse in (fgm3d.parse_lines, fgm3d.parse_lines_reference):
        out = parse(lines)
        assert out.rejects == [(0, "number")] and out.n == 1
        assert out.values.tolist() == [[24429.0, 54772.0, 25547.0, 65188.0]]
        assert out.device_ns.tolist() == [1648557860788 * 10**6]


def test_lineproto_scale_overflow_is_rejected():
    fmt = lineproto.LineFormat.from_options({"separator": "whitespace",
                                             "columns": ["time:s*1e300", "bz:nT*1e10"]})
    lines = [b"1 1e300", b"2e-300 5", b"1e10 1", b"3e-300 2"]
    for parse in (lineproto.parse_lines, lineproto.parse_lines_reference):
        out = parse(lines, fmt)
        # 1e300 nT*1e10 is inf; 1e10 s*1e300 is past the int64 nanosecond clock.
        assert out.rejects == [(0, "number"), (2, "number")]
        assert out.values[:, 0].tolist() == [5e10, 2e10]
        assert out.device_ns.tolist() == [2_000_000_000, 3_000_000_000]


@settings(max_examples=150, deadline=None)
@given(vals=st.lists(st.floats(-1e308, 1e308, allow_nan=False), min_size=1, max_size=8),
       scale=st.sampled_from([1.0, 1e10, 1e-300, -1e300, 1e308]))
def test_lineproto_scaled_values_are_finite_or_rejected(vals, scale):
    fmt = lineproto.LineFormat.from_options({"separator": "whitespace",
                                             "columns": [f"v:1*{scale!r}"]})
    lines = [repr(v).encode() for v in vals]
    fast = lineproto.parse_lines(lines, fmt)
    ref = lineproto.parse_lines_reference(lines, fmt)
    assert fast.rejects == ref.rejects and np.array_equal(fast.values, ref.values)
    assert np.isfinite(fast.values).all()
    assert fast.n + len(fast.rejects) == len(lines)
    assert [i for i, _ in fast.rejects] == [i for i, v in enumerate(vals)
                                            if math.isinf(v * scale)]


def test_uxo_decode_bad_banner_is_one_line_and_exit_2(tmp_path, capsys):
    cap = tmp_path / "cap.txt"
    cap.write_bytes(b"$UXG,0,0.0,0.0,0.0,1.0*00\n# model=X height=abc\n")
    rc = cli.main(["decode", "--driver", "gradline", str(cap)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"uxo decode: {cap}: line 2: device banner height='abc' is not a number "
                   "(expected metres)"]


# --- hypothesis: the dump decoder ---------------------------------------------------------------
_DUMP_ALPHABET = "0123456789 .:-*/\nabcDIlinetTX\t\xff"


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(alphabet=_DUMP_ALPHABET, max_size=400), st.binary(max_size=300),
                 st.sampled_from([MAGPY_V6, MAGPY_WG_GPS, MAGPY_WG_GRID]).flatmap(
                     lambda t: st.tuples(st.just(t), st.integers(0, len(t)),
                                         st.text(alphabet=_DUMP_ALPHABET, max_size=20)).map(
                         lambda x: x[0][: x[1]] + x[2] + x[0][x[1]:]))))
def test_dump_never_raises_and_accounts_for_every_line(text):
    d, rejects = decode_gsm19_dump(text)
    lines = (text.encode("latin-1", "replace") if isinstance(text, str) else text).splitlines()
    assert d.n + len(rejects) <= len(lines)
    assert len({*d.line.tolist(), *(r.line for r in rejects)}) == d.n + len(rejects)
    assert all(1 <= r.line <= len(lines) for r in rejects)
    for a in (d.field_nT, d.quality, d.gradient, d.lat, d.lon, d.alt, d.x, d.y):
        assert a.shape == (d.n,) and not np.isinf(a).any()
    assert np.all((d.field_nT >= 10_000) & (d.field_nT <= 120_000))
    assert np.all(np.diff(d.time_ns) > -86_400 * 10**9 // 2)  # midnight continues the clock


_REC = st.tuples(st.integers(0, 86399), st.integers(0, 9), st.floats(20_000, 99_999),
                 st.floats(-9999, 9999), st.integers(10, 99))


@settings(max_examples=150, deadline=None)
@given(recs=st.lists(_REC, min_size=1, max_size=20), variant=st.sampled_from(["v6", "v7", "wg"]),
       bad=st.sets(st.integers(0, 19), max_size=5), clock=st.booleans())
def test_dump_roundtrip_with_bad_lines(recs, variant, bad, clock):
    head = {"v6": MAGPY_V6.split("\n\n")[0] + "\n\n",
            "v7": MAGPY_V7_HEADER, "wg": MAGPY_WG_GPS.split("line")[0]}[variant]
    rows, want, bad_lines = [], [], []
    n_head = head.count("\n")
    for k, (s, tenth, f, g, q) in enumerate(recs):
        hms = (f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" if clock
               else f"{s // 3600:02d}{s % 3600 // 60:02d}{s % 60:02d}") + f".{tenth}"
        if variant == "wg":
            row = (f"{16.75 + k * 1e-6:011.7f}  107.1000000  000012  {f:.2f}  {g:07.2f} {q}"
                   f"  000000.00 07 {hms} * *")
        else:
            row = f"{hms}  {f:.2f} {q}"
        if k in bad:
            row = row.replace(".", "x", 1)  # a letter in a number: rejected
            bad_lines.append(n_head + len(rows) + 1)
        else:
            want.append((s * 10**9 + tenth * 10**8, round(f, 2), q))
        rows.append(row)
    d, rejects = decode_gsm19_dump(head + "\n".join(rows) + "\n")
    assert [r.line for r in rejects] == bad_lines
    assert d.n == len(want)
    assert d.field_nT.tolist() == [w[1] for w in want]
    assert d.quality.tolist() == [w[2] for w in want]
    tod = np.array([w[0] for w in want], dtype=np.int64)
    rolled = np.concatenate(([0], np.cumsum(np.diff(tod) < -86_400 * 10**9 // 2)))
    assert d.time_ns.tolist() == (tod + rolled * 86_400 * 10**9).tolist()
    if variant == "wg":
        assert np.isfinite(d.gradient).all() and np.isfinite(d.lat).all()
