"""read_survey on a recording whose descriptor states a non-numeric sensor separation:
one SurveyReadError naming the file, never a TypeError traceback (found by mypy)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rec_helpers import descriptor, indexed_block

from acquisition.survey import SurveyReadError, read_survey
from recorder.sink import RecorderSink


def _recording(path, separation: object) -> None:
    desc = descriptor(nch=1)
    desc = dataclasses.replace(desc, geometry={**desc.geometry,
                                               "sensor_separation_m": separation})
    sink = RecorderSink(path, session="s1")
    sink.add_stream(desc)
    sink.start()
    sink.write_block(indexed_block(desc, 0, 0, 50))
    sink.close()


def test_numeric_separation_is_used(tmp_path):
    h5 = tmp_path / "rec.h5"
    _recording(h5, 0.8)
    s = read_survey(h5)
    assert s.n == 50
    assert s.geometry["sensor_separation_m"] == 0.8
    np.testing.assert_allclose(s.value, np.arange(50.0) * 10)


@pytest.mark.parametrize("bad", ["abc", [0.5, 0.5], None, True, {"m": 0.5}])
def test_non_numeric_separation_is_one_line_refusal(tmp_path, bad):
    h5 = tmp_path / "rec.h5"
    _recording(h5, bad)
    with pytest.raises(SurveyReadError) as info:
        read_survey(h5)
    msg = str(info.value)
    assert str(h5) in msg and "sensor_separation_m" in msg and "\n" not in msg


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.one_of(st.text(max_size=12), st.lists(st.floats(), max_size=3),
                     st.booleans(), st.none()))
def test_fuzzed_separation_never_crashes(tmp_path, bad):
    h5 = tmp_path / "rec.h5"
    h5.unlink(missing_ok=True)
    _recording(h5, bad)
    with pytest.raises(SurveyReadError) as info:
        read_survey(h5)
    assert str(h5) in str(info.value)
