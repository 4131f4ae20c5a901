"""`validate.finite_float`: the one place a user's value becomes a float."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acquisition.coords import CoordinateError, parse_origin
from acquisition.errors import SettingError
from acquisition.validate import finite_float


@given(st.one_of(st.text(max_size=12), st.floats(), st.integers(), st.none()))
def test_finite_float_gives_the_number_or_names_the_label(value):
    try:
        expected = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        expected = None
    if expected is not None and math.isfinite(expected):
        assert finite_float("lane_spacing_m", value) == expected
        return
    with pytest.raises(SettingError) as info:
        finite_float("lane_spacing_m", value)
    msg = str(info.value)
    assert msg.startswith("lane_spacing_m: ")
    assert ("is not a number" in msg) if expected is None else ("must be finite" in msg)
    assert repr(value) in msg


def test_each_caller_keeps_its_own_error_class():
    with pytest.raises(CoordinateError, match=r"grid origin northing: 'north' is not a number"):
        parse_origin("713000,north")
    with pytest.raises(CoordinateError, match=r"grid origin easting: must be finite, got 'inf'"):
        parse_origin("inf,1861000")
