"""Command-line option parsing: key=value options and Earth-field precedence."""

from __future__ import annotations

import argparse

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


def test_every_plugin_command_loads():
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    assert {"acquire", "drivers", "tail", "decode", "process", "borehole", "simulate", "demo",
            "record", "inspect", "verify", "export"} <= set(sub.choices)
