"""``uxo convert`` / ``uxo formats`` and the shared survey options (acquisition.survey_cli)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.cli import main
from acquisition.readers import readers
from acquisition.survey import read_survey
from acquisition.survey_cli import (
    add_survey_input_arguments,
    parse_columns,
    survey_overrides,
    survey_read_kwargs,
)

DATA = Path(__file__).parent / "data"


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.value, b.value)
    assert (a.t is None) == (b.t is None)
    if a.t is not None:
        np.testing.assert_array_equal(a.t, b.t)
    assert (a.lane is None) == (b.lane is None)
    if a.lane is not None:
        np.testing.assert_array_equal(a.lane, b.lane)
    assert a.frame == b.frame


@pytest.mark.parametrize(("name", "opts"), [
    ("pymagra_Block1_excerpt.stn", []),
    ("geophpy_Mag_ex1_excerpt.dat", ["--crs", "EPSG:32648", "--grid-origin", "713000,1861000",
                                     "--grid-rotation", "12.5"]),
    ("sensys_magwalk.csv", []),
    ("geosoft_line.xyz", ["--crs", "EPSG:3405"]),
    ("gsm19_walking_grad.wg", ["--crs", "EPSG:32648"]),
])
def test_convert_then_reread_gives_the_same_survey(tmp_path, capsys, name, opts):
    src = DATA / name
    out = tmp_path / "survey.csv"
    assert main(["convert", str(src), "-o", str(out), *opts]) == 0
    parser = argparse.ArgumentParser()
    add_survey_input_arguments(parser)
    args = parser.parse_args(opts)
    original = read_survey(src, **survey_read_kwargs(args))
    again = read_survey(out)
    assert again.format == "uxo-csv" and again.metadata["value_unit"] == "nT"
    assert again.unit_stated and again.metadata["source_format"] == original.format
    _same(again, original)
    if original.frame.georeferenced:
        np.testing.assert_allclose(np.c_[again.lat_lon()], np.c_[original.lat_lon()],
                                   atol=1e-12)
    for k, v in original.extra.items():
        np.testing.assert_array_equal(again.extra[k.lower()], v)
    text = capsys.readouterr()
    assert f"{again.n} rows written" in text.out
    assert f"{len(original.bad_rows)} of {original.rows_seen} rows rejected" in text.out


def test_convert_says_what_it_assumed_and_lists_rejects(tmp_path, capsys):
    src = tmp_path / "plain.csv"
    rows = ["E,N,Grad"] + [f"{i}.0,0.5,{i}" if i % 7 else f"{i}.0,oops,{i}" for i in range(60)]
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "o.csv"
    assert main(["convert", str(src), "-o", str(out), "--columns", "x=E,y=N,value=Grad",
                 "--max-bad-share", "0.2"]) == 0
    text = capsys.readouterr()
    assert "note: values read as nT: the file does not say" in text.out
    assert "note: positions are a local grid with no CRS" in text.out
    bad = [ln for ln in text.err.splitlines() if "row skipped" in ln]
    # rows 0, 7, ..., 56 are damaged: 9 rows, on file lines 2, 9, ..., 58
    assert [int(ln.split(":")[1]) for ln in bad] == [2 + 7 * k for k in range(9)]
    assert "'oops' is not a number" in bad[0]
    s = read_survey(out)
    assert s.n == 51 and s.metadata["source_file"] == "plain.csv"


def test_convert_lists_at_most_twenty_rejects(tmp_path, capsys):
    src = tmp_path / "many.csv"
    src.write_text("x,y,value\n" + "".join(
        f"{i},0,1\n" if i % 2 else f"{i},0,bad\n" for i in range(100)))
    assert main(["convert", str(src), "-o", str(tmp_path / "o.csv"), "--from", "table",
                 "--max-bad-share", "0.6"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len([ln for ln in err if "row skipped" in ln]) == 20
    assert err[-1].endswith("... and 30 more rows rejected")


@pytest.mark.parametrize(("body", "expect"), [
    (b"\x00\x01\x02 junk", r"junk\.dat:1: unknown survey format"),
    (b"x,y,value\n" + b"1,2,nope\n" * 5, r"junk\.dat.*5 of 5 data rows are bad.*line 2"),
    (b"a,b,c\n1,2,3\n", r"junk\.dat:1: no x and y \(or lat and lon\) and value column"),
])
def test_bad_input_one_line_nonzero_and_no_output(tmp_path, capsys, body, expect):
    src = tmp_path / "junk.dat"
    src.write_bytes(body)
    out = tmp_path / "out.csv"
    assert main(["convert", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    import re

    assert re.search(expect, err[0]), err[0]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]  # no temporary file left behind


def test_failed_conversion_leaves_an_existing_output_alone(tmp_path, capsys):
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    src = tmp_path / "bad.csv"
    src.write_text("x,y,value\n1,2,3\n")
    assert main(["convert", str(src), "-o", str(out), "--grid-origin", "5"]) == 2
    assert "--grid-origin: grid origin must be 'E,N'" in capsys.readouterr().err
    assert main(["convert", str(src), "-o", str(out), "--grid-origin", "5,5"]) == 2
    assert "needs a CRS" in capsys.readouterr().err
    assert out.read_text() == "previous\n"


def test_write_failure_removes_the_temporary_file(tmp_path, monkeypatch, capsys):
    import acquisition.convert_cli as cc

    def boom(out, survey):
        out.write("# uxo-survey v1\nx,y,value\n0,0,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cc, "write_survey_csv", boom)
    out = tmp_path / "o.csv"
    assert main(["convert", str(DATA / "sensys_magwalk.csv"), "-o", str(out)]) == 2
    assert "cannot write: No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_formats_lists_every_reader(capsys):
    assert main(["formats"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()]
    assert set(names) == set(readers()) >= {"stn", "magmap-xyz", "sensys", "geosoft-xyz",
                                             "gsm19", "table", "uxo-csv", "recording"}
    assert names[-1] == "table"  # the catch-all is tried last
    assert main(["convert", "--list"]) == 0
    assert [ln.split()[0] for ln in capsys.readouterr().out.splitlines()] == names


def test_parse_columns_and_overrides():
    assert parse_columns("x=Easting, y=Northing,value=Grad [nT/m]") == {
        "x": "Easting", "y": "Northing", "value": "Grad [nT/m]"}
    assert parse_columns(None) is None and parse_columns(" ") is None
    for bad in ("x", "x=", "=E", "x=E,x=F"):
        with pytest.raises(ValueError, match="--columns"):
            parse_columns(bad)
    parser = argparse.ArgumentParser()
    add_survey_input_arguments(parser)
    args = parser.parse_args(["--crs", "EPSG:32648", "--grid-origin", "713000.5,1861000",
                              "--grid-rotation", "-3", "--value-unit", "pT", "--from", "stn",
                              "--columns", "lat=A,lon=B,value=C"])
    assert survey_overrides(args) == {"crs": "EPSG:32648", "grid_origin_e": "713000.5",
                                      "grid_origin_n": "1861000.0",
                                      "grid_rotation_deg": "-3.0", "value_unit": "pT"}
    kw = survey_read_kwargs(args)
    assert kw["format"] == "stn" and kw["columns"] == {"lat": "A", "lon": "B", "value": "C"}
    # an unknown unit passes argparse and is refused by read_survey, naming it
    bad = survey_overrides(parser.parse_args(["--value-unit", "gauss"]))
    assert bad == {"value_unit": "gauss"}


def test_convert_a_real_recording_keeps_its_geometry(tmp_path, capsys):
    from rec_helpers import descriptor, indexed_block

    from recorder.sink import RecorderSink

    h5 = tmp_path / "rec.h5"
    desc = descriptor(nch=1)
    sink = RecorderSink(h5, session="s1", provenance={"operator": "team 3"})
    sink.add_stream(desc)
    sink.start()
    for seq in range(3):
        sink.write_block(indexed_block(desc, seq, seq * 100, 100))
    sink.close()
    # the recording says its unit (the channel's) and its instrument itself
    direct = read_survey(h5)
    assert direct.unit_stated and direct.value_unit == "nT"
    assert (direct.metadata["instrument"], direct.metadata["serial"]) == ("test cart", "SN-7")
    out = tmp_path / "rec.csv"
    assert main(["convert", str(h5), "-o", str(out)]) == 0
    s = read_survey(out)
    assert s.n == 300 and s.metadata["kind"] == "gradient"
    assert s.metadata["sensor_separation_m"] == "0.65"
    idx = np.arange(300.0)
    np.testing.assert_allclose(s.value, idx * 10)
    np.testing.assert_allclose(s.x, idx * 0.01)
    np.testing.assert_allclose(s.y, idx * 0.02)
    assert "recording, 300 rows written" in capsys.readouterr().out


def test_convert_value_unit_option_and_wide_survey_note(tmp_path, capsys):
    src = tmp_path / "ll.csv"
    src.write_text("lat,lon,TMI\n16.8,107.1,1500\n16.8001,107.1,-2500\n")
    out = tmp_path / "o.csv"
    assert main(["convert", str(src), "-o", str(out), "--value-unit", "pT"]) == 0
    text = capsys.readouterr().out
    assert "note: values converted from pT to nT" in text
    assert "lat/lon projected to EPSG:32648" in text and "span" not in text
    s = read_survey(out)
    assert s.value.tolist() == [1.5, -2.5] and s.metadata["source_value_unit"] == "pT"
    src.write_text("lat,lon,TMI\n16.8,107.1,1\n16.8,-100,2\n")
    assert main(["convert", str(src), "-o", str(out), "--crs", "EPSG:32648"]) == 0
    assert "positions span 16099 km" in capsys.readouterr().out


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=60))
def test_parse_columns_takes_any_text(text):
    try:
        out = parse_columns(text)
    except ValueError as exc:
        assert "--columns" in str(exc)
    else:
        assert out is None or all(k and v and k == k.lower() for k, v in out.items())


_F = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(_F, _F, _F, st.one_of(st.none(), _F), st.integers(-5, 5),
                               st.floats(allow_nan=True, allow_infinity=False)),
                     min_size=1, max_size=30),
       with_t=st.booleans(), with_lane=st.booleans())
def test_written_survey_csv_reads_back_exactly(tmp_path_factory, rows, with_t, with_lane):
    from acquisition.convert_cli import write_survey_csv_atomic
    from acquisition.coords import SurveyFrame
    from acquisition.survey import Survey

    x, y, v, t, lane, extra = (list(c) for c in zip(*rows, strict=True))
    s = Survey(x=np.array(x), y=np.array(y), value=np.array(v),
               t=np.array([np.nan if a is None else a for a in t]) if with_t else None,
               lane=np.array(lane) if with_lane else None,
               metadata={"kind": "total", "bad key: x": "dropped", "note": "two\nlines"},
               frame=SurveyFrame(), source="src.dat", format="test",
               extra={"Probe B [nT]": np.array(extra)})
    out = tmp_path_factory.mktemp("rt") / "o.csv"
    write_survey_csv_atomic(out, s)
    r = read_survey(out)
    np.testing.assert_array_equal(r.x, s.x)
    np.testing.assert_array_equal(r.y, s.y)
    np.testing.assert_array_equal(r.value, s.value)
    if with_t:
        np.testing.assert_array_equal(r.t, s.t)  # NaN where the source had no time
    if with_lane:
        np.testing.assert_array_equal(r.lane, s.lane)
    np.testing.assert_array_equal(r.extra["probe_b_nt"], s.extra["Probe B [nT]"])
    assert r.metadata["kind"] == "total" and r.metadata["note"] == "two lines"
    assert "bad key: x" not in r.metadata and r.metadata["value_unit"] == "nT"
