"""Command-line option parsing: key=value options and Earth-field precedence."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acquisition.cli import build_parser
from acquisition.cli_common import field_from_args, parse_options
from acquisition.geomag import QUANG_TRI


def test_options_are_typed():
    assert parse_options(["rate_hz=10", "scale=0.5", "kind=total", "raw=yes", "sep=a=b"]) == {
        "rate_hz": 10, "scale": 0.5, "kind": "total", "raw": True, "sep": "a=b"}
    with pytest.raises(argparse.ArgumentTypeError):
        parse_options(["novalue"])


@given(st.lists(st.text(max_size=20), max_size=8))
def test_options_never_fail_but_with_a_clear_error(pairs):
    try:
        out = parse_options(pairs)
    except argparse.ArgumentTypeError as exc:
        assert "key=value" in str(exc)
        assert any("=" not in p for p in pairs)
    else:
        assert set(out) == {p.split("=", 1)[0].strip() for p in pairs}


def test_cli_overrides_metadata_overrides_default():
    p = build_parser()
    args = p.parse_args(["acquire", "--driver", "gradline", "--port", "x",
                         "--field-inclination", "30"])
    md = {"field_inclination_deg": "10", "field_total_nT": "40000"}
    f = field_from_args(args, md)
    assert (f.total_nT, f.inclination_deg, f.declination_deg) == (40000.0, 30.0,
                                                                  QUANG_TRI.declination_deg)
    args = p.parse_args(["acquire", "--driver", "gradline", "--port", "x"])
    assert field_from_args(args, {}) == QUANG_TRI
    igrf = field_from_args(p.parse_args(["acquire", "--driver", "g", "--port", "x", "--lat",
                                         "16.75", "--lon", "107", "--date", "2026-06-01"]))
    assert abs(igrf.inclination_deg - 23.2) < 0.3 and igrf.source.startswith("IGRF")


def _acquire(*opts: str) -> argparse.Namespace:
    return build_parser().parse_args(["acquire", "--driver", "g", "--port", "x", *opts])


def test_a_site_on_the_command_line_overrides_the_files_field():
    md = {"field_total_nT": "43600", "field_inclination_deg": "23.2",
          "field_declination_deg": "-1.4", "latitude": "16.75", "longitude": "107"}
    germany = field_from_args(_acquire("--lat", "50", "--lon", "10", "--date", "2026-06-01"),
                              md)
    assert germany.source == "IGRF lat=50.0 lon=10.0 date=2026-06-01"
    assert 64 < germany.inclination_deg < 67 and 48000 < germany.total_nT < 50000
    # a date alone recomputes the file's own place at that date
    then = field_from_args(_acquire("--date", "1990-01-01"), md)
    assert then.source == "IGRF lat=16.75 lon=107.0 date=1990-01-01"
    assert then.inclination_deg != pytest.approx(23.2, abs=1e-6)
    # an explicit component still wins over the command line's IGRF field
    mixed = field_from_args(_acquire("--lat", "50", "--lon", "10", "--date", "2026-06-01",
                                     "--field-inclination", "30"), md)
    assert (mixed.total_nT, mixed.inclination_deg, mixed.declination_deg) == (
        germany.total_nT, 30.0, germany.declination_deg)
    # without a site on the command line the file's components win over its place
    assert field_from_args(_acquire(), md).inclination_deg == 23.2


@pytest.mark.parametrize("opts, md, words", [
    (("--lat", "50"), {}, "longitude"),
    (("--lon", "10"), {}, "latitude"),
    (("--date", "2026-06-01"), {}, "needs a place"),
    ((), {"latitude": "50"}, "longitude"),
    ((), {"field_total_nT": "strong"}, "field_total_nT: 'strong' is not a number"),
    (("--lat", "95", "--lon", "10"), {}, "bad latitude"),
])
def test_half_a_site_is_an_error_not_the_default_field(opts, md, words):
    with pytest.raises(ValueError, match=words):
        field_from_args(_acquire(*opts), md)


_MD_KEYS = ["field_total_nT", "field_inclination_deg", "field_declination_deg",
            "latitude", "longitude", "date"]


@given(st.dictionaries(st.sampled_from(_MD_KEYS),
                       st.one_of(st.text(max_size=12), st.floats(-400, 60000).map(str)),
                       max_size=6))
def test_any_metadata_gives_a_field_or_a_clear_error(md):
    try:
        f = field_from_args(_acquire(), md)
    except ValueError as exc:
        assert str(exc)
    else:
        assert f.total_nT > 0 and -90 <= f.inclination_deg <= 90


def test_every_plugin_command_loads():
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    assert {"acquire", "drivers", "tail", "decode", "process", "borehole", "simulate", "demo",
            "record", "inspect", "verify", "export"} <= set(sub.choices)


def test_a_reader_that_goes_away_ends_the_command_quietly():
    # `uxo simulate ... | head -1`: the pipe's read end is closed before the
    # command writes, so its first print meets EPIPE
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "acquisition.cli", "simulate",
                               "--scenario", "tiny"], stdout=w, stderr=subprocess.PIPE,
                              timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 141
    assert proc.stderr == b""
