"""read_survey: format sniffing, metadata overrides, units, coordinates, errors."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import acquisition
from acquisition.readers import RawSurvey, readers, register_reader
from acquisition.survey import SurveyReadError, read_survey, to_nT

CSV = "t,x,y,lane,value\n0.0,0.5,0.0,0,1.25\n0.1,0.5,0.1,0,-2.5\n0.2,0.5,0.2,0,3.0\n"


def _write(tmp_path: Path, text: str | bytes, name: str = "s.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def test_public_api_names():
    assert acquisition.read_survey is read_survey
    assert {"read_survey", "Survey", "SurveyFrame"} <= set(acquisition.__all__)
    assert {"uxo-csv", "recording"} <= set(readers())


def test_reads_uxo_csv_with_and_without_bom(tmp_path):
    for body in (CSV.encode(), b"\xef\xbb\xbf" + CSV.encode(),
                 b"\xef\xbb\xbf# uxo-survey v1\n# kind: gradient\n" + CSV.encode()):
        s = read_survey(_write(tmp_path, body))
        assert s.format == "uxo-csv"
        np.testing.assert_array_equal(s.value, [1.25, -2.5, 3.0])
        np.testing.assert_array_equal(s.y, [0.0, 0.1, 0.2])
        assert s.value_unit == "nT" and not s.unit_stated
        assert not s.frame.georeferenced


@pytest.mark.parametrize(("unit", "factor"), [("nT", 1.0), ("pT", 1e-3), ("T", 1e9),
                                              ("nT/m", 0.5)])
def test_value_unit_is_converted(tmp_path, unit, factor):
    p = _write(tmp_path, f"# value_unit: {unit}\n# sensor_separation_m: 0.5\n" + CSV)
    s = read_survey(p)
    np.testing.assert_allclose(s.value, np.array([1.25, -2.5, 3.0]) * factor)
    assert s.unit_stated and s.value_unit == unit


def test_unknown_unit_names_file_and_choices(tmp_path):
    p = _write(tmp_path, "# value_unit: gauss\n" + CSV)
    with pytest.raises(SurveyReadError, match=r"s\.csv: value_unit: unknown unit 'gauss'.*nT/m"):
        read_survey(p)


def test_overflow_after_scaling_is_refused(tmp_path):
    p = _write(tmp_path, "# value_unit: T\nx,y,value\n0,0,1e308\n0,1,1e-5\n")
    with pytest.raises(SurveyReadError, match="overflows"):
        read_survey(p)


def test_metadata_overrides_the_file(tmp_path):
    p = _write(tmp_path, "# value_unit: pT\n" + CSV)
    s = read_survey(p, metadata={"value_unit": "nT"})
    np.testing.assert_array_equal(s.value, [1.25, -2.5, 3.0])


def test_taped_grid_is_placed_by_crs_origin_and_rotation(tmp_path):
    p = _write(tmp_path, "# crs: EPSG:32648\n# grid_origin_e: 713000\n"
                         "# grid_origin_n: 1861000\n# grid_rotation_deg: 90\n" + CSV)
    s = read_survey(p)
    assert s.frame.georeferenced
    e, n = s.easting_northing()
    np.testing.assert_allclose(e, 713000 + np.array([0.0, 0.1, 0.2]), atol=1e-9)
    np.testing.assert_allclose(n, 1861000 - 0.5, atol=1e-9)
    lat, lon = s.lat_lon()
    assert 16.5 < lat[0] < 17.2 and 106.9 < lon[0] < 107.3


def test_errors_name_the_file(tmp_path):
    with pytest.raises(SurveyReadError, match="no such file"):
        read_survey(tmp_path / "missing.csv")
    with pytest.raises(SurveyReadError, match="is a directory"):
        read_survey(tmp_path)
    p = _write(tmp_path, b"\x00\x01 binary junk \xff\xfe", "junk.dat")
    with pytest.raises(SurveyReadError, match=r"junk\.dat:1: unknown survey format"):
        read_survey(p)
    with pytest.raises(SurveyReadError, match="unknown format 'stn9'"):
        read_survey(_write(tmp_path, CSV), format="stn9")
    p = _write(tmp_path, "# grid_origin_e: 5\n# grid_origin_n: 5\n" + CSV)
    with pytest.raises(SurveyReadError, match="needs a CRS"):
        read_survey(p)


class _LonLatReader:
    """A test reader giving geographic positions (lon, lat) around Dong Ha."""

    name: ClassVar[str] = "test-lonlat"
    description: ClassVar[str] = "test"
    priority: ClassVar[int] = 99

    @classmethod
    def sniff(cls, head, path):
        return head.startswith(b"LONLAT")

    def read(self, path, *, columns=None, max_bad_share=0.1, stream=None):
        lon = np.array([107.1, 107.1001, 107.1002])
        lat = np.array([16.82, 16.82, 16.8201])
        return RawSurvey(x=lon, y=lat, value=np.ones(3), positions="geographic")


def test_geographic_positions_go_to_the_utm_zone(tmp_path):
    register_reader(_LonLatReader)
    s = read_survey(_write(tmp_path, "LONLAT\n", "ll.txt"))
    assert s.format == "test-lonlat" and s.frame.crs == "EPSG:32648"
    # 0.0001 degree of longitude at 16.82 N is 10.65 m
    assert s.x[1] - s.x[0] == pytest.approx(10.65, abs=0.02)
    lat, lon = s.lat_lon()
    np.testing.assert_allclose(lon, [107.1, 107.1001, 107.1002], atol=1e-9)
    np.testing.assert_allclose(lat, [16.82, 16.82, 16.8201], atol=1e-9)
    s2 = read_survey(_write(tmp_path, "LONLAT\n", "ll.txt"), metadata={"crs": "EPSG:3405"})
    assert s2.frame.crs == "EPSG:3405"


@settings(max_examples=80, deadline=None)
@given(body=st.binary(max_size=400))
def test_random_bytes_give_a_survey_or_a_named_error(tmp_path_factory, body):
    p = tmp_path_factory.mktemp("fz") / "f.csv"
    p.write_bytes(body)
    try:
        s = read_survey(p)
    except SurveyReadError as exc:
        assert str(p) in str(exc)
    else:
        assert s.x.shape == s.y.shape == s.value.shape


@settings(max_examples=50, deadline=None)
@given(v=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20),
       unit=st.sampled_from(["nT", "pT", "T", "nT/m", " nt "]))
def test_to_nT_is_linear(v, unit):
    a = np.array(v)
    out = to_nT(a, unit, separation_m=0.65)
    ref = to_nT(np.ones(1), unit, separation_m=0.65)[0]
    np.testing.assert_allclose(out, a * ref, rtol=1e-12)
