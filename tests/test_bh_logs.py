"""Borehole CSV reader and log conditioning: bad rows, gaps, reversals, speed, drift."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.borehole.logs import (
    BoreholeFormatError,
    HoleLog,
    LogConfig,
    condition,
    read_borehole_csv,
    write_borehole_csv,
)

GOOD = """# uxo-borehole v1
# kind: gradient
# sensor_separation_m: 0.5
# field_total_nT: 44000
hole,x,y,depth,t,value
A,1.0,2.0,6.00,0.0,0.5
A,1.0,2.0,5.99,0.1,0.7
B,3.0,2.0,6.00,0.0,-0.2
A,1.0,2.0,5.98,0.2,0.6
"""


def test_reads_metadata_holes_and_columns() -> None:
    bf = read_borehole_csv(io.StringIO(GOOD))
    assert bf.metadata["field_total_nT"] == "44000"
    assert bf.kind == "gradient"
    assert [lg.hole for lg in bf.logs] == ["A", "B"]
    a = bf.logs[0]
    assert (a.x, a.y, a.separation) == (1.0, 2.0, 0.5)
    assert np.allclose(a.depth, [6.0, 5.99, 5.98])
    assert np.allclose(a.values, [0.5, 0.7, 0.6])
    assert np.allclose(a.t, [0.0, 0.1, 0.2])
    assert read_borehole_csv(io.StringIO(GOOD), separation=0.65).logs[0].separation == 0.65


@pytest.mark.parametrize("body", [GOOD, GOOD.split("\n", 4)[4]])  # with and without metadata
def test_a_byte_order_mark_is_not_part_of_the_file(tmp_path: Path, body: str) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + body.encode())
    bf = read_borehole_csv(p)
    assert [lg.hole for lg in bf.logs] == ["A", "B"]
    assert np.allclose(bf.logs[0].values, [0.5, 0.7, 0.6])
    assert not bf.rejects


def test_bad_rows_reported_with_line_numbers_and_good_rows_kept() -> None:
    text = GOOD + "A,1.0,2.0,5.97,0.3\nA,1.0,2.0,abc,0.4,1.0\n,1,2,5.9,0.5,1.0\n" + \
        "A,1.0,2.0,5.96,0.5,0.9\n" * 10
    bf = read_borehole_csv(io.StringIO(text))
    lines = [n for n, _ in bf.rejects]
    assert lines == [10, 11, 12]
    assert "fields" in bf.rejects[0][1] and "number" in bf.rejects[1][1]
    assert len(bf.logs[0].depth) == 3 + 10


def test_too_many_bad_rows_and_missing_columns_raise() -> None:
    with pytest.raises(BoreholeFormatError, match="bad"):
        read_borehole_csv(io.StringIO("hole,x,y,depth,value\n" + "A,1,2,x,1\n" * 5 + "A,1,2,3,4\n"))
    with pytest.raises(BoreholeFormatError, match="depth"):
        read_borehole_csv(io.StringIO("hole,x,y,value\nA,1,2,3\n"))
    with pytest.raises(BoreholeFormatError):
        read_borehole_csv(io.StringIO("# only comments\n"))


def test_vector_roundtrip(tmp_path: Path) -> None:
    d = np.linspace(10, 5, 50)
    v = np.column_stack([d, -d, 2 * d])
    write_borehole_csv(tmp_path / "v.csv", [HoleLog("H1", 1, 2, d, v, kind="vector")])
    bf = read_borehole_csv(tmp_path / "v.csv")
    assert bf.kind == "vector"
    assert np.allclose(bf.logs[0].values, v, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="AB,0123456789.-e\n x#:nan", max_size=40), max_size=30))
def test_fuzz_never_crashes_otherwise(lines: list[str]) -> None:
    text = "# uxo-borehole v1\nhole,x,y,depth,value\n" + "\n".join(lines)
    try:
        bf = read_borehole_csv(io.StringIO(text), max_bad_fraction=1.0)
    except BoreholeFormatError:
        return
    n_good = sum(len(lg.depth) for lg in bf.logs)
    assert n_good + len(bf.rejects) == bf.n_rows
    for lg in bf.logs:
        assert np.all(np.isfinite(lg.depth)) and np.all(np.isfinite(lg.values))
        condition(lg)  # conditioning any decoded log never raises


def _log(depth: np.ndarray, values: np.ndarray, t: np.ndarray | None = None) -> HoleLog:
    return HoleLog("H", 0.0, 0.0, depth, values, t=t)


def test_gap_is_flagged_not_interpolated() -> None:
    d = np.concatenate([np.arange(10, 8, -0.01), np.arange(7.5, 5, -0.01)])
    pl = condition(_log(d, np.zeros_like(d)))
    assert "gap" in pl.flags
    assert pl.gaps and pl.gaps[0][0] == pytest.approx(7.5, abs=0.02)
    assert pl.gaps[0][1] == pytest.approx(8.01, abs=0.02)
    inside = (pl.depth > 7.6) & (pl.depth < 7.9)
    assert np.all(np.isnan(pl.values[inside]))
    assert not pl.covered(7.0, 8.5) and pl.covered(5.5, 7.0)


def test_backwards_depths_flagged_and_kept() -> None:
    # The winch let the probe slip 0.3 m back down, then the pull went on.
    d = np.concatenate([np.arange(10, 8, -0.01), np.arange(8, 8.3, 0.01),
                        np.arange(8.3, 5, -0.01)])
    pl = condition(_log(d, np.ones_like(d)))
    assert "depth_reversal" in pl.flags
    assert pl.direction == "up"
    assert np.sum(pl.counts) == len(d)  # every sample kept
    assert any("backwards" in i and "8.0" in i for i in pl.issues)
    assert "gap" not in pl.flags


def test_logged_down_and_too_fast_flagged() -> None:
    d = np.arange(5, 10, 0.2)  # down, 20 cm per sample
    pl = condition(_log(d, np.zeros_like(d), t=np.arange(len(d)) * 0.1))
    assert {"logged_down", "too_fast"} <= pl.flags
    assert any("m/s" in i for i in pl.issues)


def test_offset_and_drift_removed_and_noise_measured() -> None:
    rng = np.random.default_rng(3)
    d = np.arange(10, 4, -0.01)
    t = np.arange(len(d)) * 0.1
    v = 37.0 + 0.05 * t + rng.normal(0, 0.5, len(d))
    pl = condition(_log(d, v, t), LogConfig(drift_degree=1))
    assert abs(float(np.nanmean(pl.values))) < 0.05
    assert abs(float(np.nanmean(pl.values[:20])) - float(np.nanmean(pl.values[-20:]))) < 0.3
    assert pl.sigma_sample == pytest.approx(0.5, rel=0.15)
    assert pl.sigma == pytest.approx(0.5 / math.sqrt(5), rel=0.2)


def test_depth_registration_applied() -> None:
    d = np.arange(10, 5, -0.01)
    pl = condition(_log(d, np.zeros_like(d)), LogConfig(depth_scale=1.02, depth_offset_m=-0.1))
    assert pl.bottom == pytest.approx(10 * 1.02 - 0.1, abs=1e-9)
    cfg = LogConfig(depth_registration={"H": (1.0, 0.5)})
    assert condition(_log(d, np.zeros_like(d)), cfg).top == pytest.approx(5.51, abs=1e-9)


def test_short_and_nonfinite_logs_flagged() -> None:
    pl = condition(_log(np.array([5.0, 5.1, np.nan]), np.array([1.0, np.inf, 2.0])))
    assert {"short_log", "bad_samples"} <= pl.flags
    assert len(pl.depth) == 0
