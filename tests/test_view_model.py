"""The live view's page state (acquisition.view.model), fed real wire messages."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from view_helpers import grad_descriptor, walk_block, wire

from acquisition.events import Anomaly, StateChange, Target
from acquisition.messages import (
    anomaly_message,
    block_message,
    descriptor_message,
    heartbeat_message,
    session_message,
    state_message,
    target_message,
)
from acquisition.view.model import ViewModel, planned_lanes, target_row

S = 1_000_000_000


def _start(m: ViewModel, session: str = "s1", **info) -> list[dict]:
    out = m.ingest(wire(session_message("session_start", session, 0, **info)), 0)
    out += m.ingest(wire(descriptor_message(grad_descriptor(), session, 0)), 0)
    return out


def _walk(m: ViewModel, seconds: float, rate: float = 10.0, block: int = 10,
          session: str = "s1", **kw) -> list[dict]:
    out = []
    n_total = int(seconds * rate)
    for k, first in enumerate(range(0, n_total, block)):
        b = walk_block(first, min(block, n_total - first), rate, **kw)
        out += m.ingest(wire(block_message(b, session, 0), seq=k), first * S // 10)
    return out


def test_trace_keeps_the_last_30_s_at_the_trace_rate():
    m = ViewModel(trace_s=30.0, trace_hz=5.0)
    _start(m)
    _walk(m, 120.0, rate=10.0)  # 1200 samples at 10 Hz
    tr = m.traces["grad0"]
    # 5 points/s (every 2nd sample) over the last 30 s, both ends included.
    assert tr.t.size == 151
    assert tr.t[-1] == 119.8 and tr.t[0] == 89.8
    assert np.allclose(np.diff(tr.t), 0.2)


def test_trace_updates_are_levelled_by_the_running_median():
    m = ViewModel(trace_hz=10.0)
    _start(m)
    out = _walk(m, 5.0, value=lambda x, y: np.full_like(y, 43_000.0) + (y > 4.0) * 10.0)
    traces = [u for u in out if u["type"] == "trace"]
    last = traces[-1]
    # 5 s walked at 1 m/s: y 0..4.9; the median of the window is 43,000 + 10
    # (more than half of the points are past y = 4) ... so at most 10 nT from 0.
    vals = [v for v in last["v"][0] if v is not None]
    assert max(abs(v) for v in vals) <= 10.0
    assert len(last["t"]) == 10 and last["t"][0] == 4.0


def test_cells_hold_the_strongest_levelled_value_and_stay_bounded():
    m = ViewModel(cell_m=0.25, max_cells=300)
    _start(m)
    out = _walk(m, 200.0)  # 200 m of lanes: 800 cells at 0.25 m, more than allowed
    assert len(m.cells) <= 300
    assert m.cell_m == 1.0  # coarsened twice: 800 -> 200 cells at 1 m... via 0.5 m (400)
    resets = [u for u in out if u["type"] == "cells" and u["reset"]]
    assert len(resets) == 2
    # The bump at (2, 5) is in lane 1 (x = 1.5) and lane 2 (x = 2.5); its cell holds
    # the largest value of the map.
    key = max(m.cells, key=lambda k: m.cells[k])
    assert key in ((1, 5), (2, 5), (1, 4), (2, 4))
    assert m.cells[key] > 10.0


def test_an_hour_of_walking_keeps_the_state_bounded():
    m = ViewModel(max_cells=2000)
    _start(m)
    _walk(m, 3600.0, block=100)
    snap = json.dumps(m.snapshot(0))
    assert len(m.cells) <= 2000
    assert m.traces["grad0"].t.size <= 30 * 25 + 1
    assert len(snap) < 200_000


def test_targets_keep_their_latest_revision_and_format_depth_with_sigma():
    m = ViewModel()
    _start(m)
    t0 = Target("grad0", 7, 4.5, 10.25, 1.204, (0.5, 0.2, -0.8), 0.93, sigma_depth=0.061)
    t1 = Target("grad0", 7, 4.6, 10.3, 1.5, (0.5, 0.2, -0.8), 0.95, revision=1)
    m.ingest(wire(target_message(t1, "s1", 5)), 0)
    out = m.ingest(wire(target_message(t0, "s1", 6)), 0)  # an older revision, late
    assert out == []
    row = m.targets[7]
    assert row["cells"][:5] == ["7", "4.60", "10.30", "1.50", "projectile"]
    assert target_row(t0.to_dict())["cells"][3] == "1.20 ± 0.06"


def test_target_row_survives_odd_values():
    row = target_row({"target_id": 1, "x": float("nan"), "depth": None,
                      "moment": [0.2, 0.4, 0.4], "flags": ["edge", "merged"]})
    assert row["cells"] == ["1", "?", "?", "?", "projectile", "0.6", "?", "edge,merged"]


def test_health_reports_state_counters_recording_and_silence():
    m = ViewModel()
    _start(m)
    m.ingest(wire(state_message(StateChange("grad0", "reconnecting", "port vanished", 1),
                                "s1", 1)), 0)
    rec = {"file": "/x/run.h5", "bytes": 1234, "last_flush_age_s": 0.4,
           "integrity": "SHA-256 chained, 3 flushes"}
    hb = heartbeat_message("grad0", "s1", 2, {"frames_rejected": 4, "gaps": 2, "state": "x",
                                               "recording": rec, "threshold_nT": 3.5,
                                               "clock_offset_ns": 1_500_000})
    m.ingest(wire(hb), 10 * S)
    h = m.health(12 * S, 0, {"gaps": 3})
    s = h["streams"]["grad0"]
    assert s["state"] == "reconnecting" and s["reason"] == "port vanished"
    assert s["counters"] == {"frames_rejected": 4, "gaps": 2}
    assert s["recording"] == rec and s["threshold_nT"] == 3.5 and s["clock_offset_ms"] == 1.5
    assert h["frames_rejected"] == 4 and h["bus"] == {"gaps": 3}
    assert h["bus_silent"] is False and h["heartbeat_age_s"] == 2.0
    assert m.health(int(13.1 * S), 0)["bus_silent"] is True


def test_silence_counts_from_start_when_no_heartbeat_ever_came():
    m = ViewModel()
    _start(m)
    assert m.health(2 * S, 0)["bus_silent"] is False
    assert m.health(int(3.5 * S), 0)["bus_silent"] is True


def test_gnss_fix_quality_and_age_from_the_receiver_stream():
    from acquisition.drivers.nmea import CHANNELS
    from acquisition.types import ChannelSpec, SampleBlock, StreamDescriptor

    m = ViewModel()
    _start(m)
    desc = StreamDescriptor("gnss", "NMEA", "", 5.0, tuple(ChannelSpec(n, u) for n, u in CHANNELS))
    m.ingest(wire(descriptor_message(desc, "s1", 0)), 0)
    row = [0.0] * len(CHANNELS)
    names = [n for n, _ in CHANNELS]
    row[names.index("fix")], row[names.index("sats")], row[names.index("hdop")] = 4.0, 11.0, 0.8
    b = SampleBlock("gnss", 0, 0, 0, 5.0, np.array([row]), host_wall_ns=100 * S)
    assert m.ingest(wire(block_message(b, "s1", 0)), 0) == []
    g = m.health(0, 102 * S)["gnss"]
    assert (g["fix"], g["sats"], g["hdop"], g["age_s"]) == (4.0, 11.0, 0.8, 2.0)


def test_a_new_session_resets_the_page():
    m = ViewModel()
    _start(m, "run-a")
    _walk(m, 10.0, session="run-a")
    m.ingest(wire(anomaly_message(Anomaly("grad0", 0, 0, 5, 0, 1.0, 2.0, 30.0, 1), "run-a", 0)),
             0)
    out = m.ingest(wire(session_message("session_start", "run-b", 0)), 0)
    assert [u["type"] for u in out] == ["reset"]
    snap = out[0]["snapshot"]
    assert snap["session"] == "run-b" and snap["cells"] == [] and snap["anomalies"] == []
    # The same session re-sent to a late joiner is not a reset.
    assert m.ingest(wire(session_message("session_start", "run-b", 0)), 0) == []


def test_coverage_gaps_are_unwalked_stretches_of_passed_lanes():
    lanes = [[0.5, 0.0, 0.5, 20.0], [1.5, 20.0, 1.5, 0.0], [2.5, 0.0, 2.5, 20.0]]
    m = ViewModel()
    _start(m, planned_lanes=lanes)
    # Walk lanes 0 and 1 but skip y in 8..12 on lane 0 (no positions there), and
    # only the first 5 m of lane 2.
    def value(x, y):
        return np.where((x < 1) & (y > 8) & (y < 12), np.nan, 1.0)
    _walk(m, 45.0, value=value)
    cov = m.coverage()
    assert cov["known"] and len(cov["segments"]) == 1
    x0, y0, x1, y1 = cov["segments"][0]
    assert x0 == x1 == 0.5
    # 4 m unwalked, less the 0.5 m cover radius at each end (cells 0.25 m).
    assert 2.5 <= abs(y1 - y0) <= 3.5 and 2.5 <= cov["gap_m"] <= 3.5
    assert min(y0, y1) >= 8.0 and max(y0, y1) <= 12.0


def test_planned_lanes_from_a_json_string_and_garbage():
    assert planned_lanes({"planned_lanes": "[[0, 0, 0, 5]]"}) == [(0.0, 0.0, 0.0, 5.0)]
    assert planned_lanes({"planned_lanes": "[[0, 0"}) == []
    assert planned_lanes({"planned_lanes": [[0, 0, "a", 1], [1, 2, 3]]}) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=5),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(info=st.dictionaries(st.sampled_from(["planned_lanes", "x"]), json_values),
       target=st.dictionaries(st.sampled_from(["target_id", "x", "y", "depth", "sigma_depth",
                                               "moment", "moment_abs", "size_class",
                                               "quality", "flags"]), json_values))
def test_odd_session_info_and_target_bodies_never_break_the_model(info, target):
    m = ViewModel()
    _start(m, **info)
    json.dumps(m.snapshot(0), allow_nan=False)
    row = target_row(target)
    assert len(row["cells"]) == 8 and all(isinstance(c, str) for c in row["cells"])
    json.dumps(m.health(0, 0), allow_nan=False)


def test_snapshot_is_plain_json_without_nan():
    m = ViewModel()
    _start(m)
    _walk(m, 10.0, value=lambda x, y: np.where(y > 3, np.nan, y))
    m.ingest(wire(anomaly_message(Anomaly("grad0", 1, 0, 5, 0, 1.0, 2.0, 30.0, 1), "s1", 0)), 0)
    text = json.dumps(m.snapshot(0), allow_nan=False)
    assert "NaN" not in text
    snap = json.loads(text)
    assert snap["anomalies"][0]["depth"] is None and snap["anomalies"][0]["x"] == 1.0
    assert math.isclose(snap["traces"]["grad0"]["t"][-1], 9.9)


def test_coverage_of_a_huge_plan_is_checked_on_a_bounded_grid():
    # 200 lanes of 2 km: 400 x 8000 cells at 0.25 m; checked coarser, still right.
    lanes = [[0.5 + k, 0.0, 0.5 + k, 2000.0] for k in range(200)]
    m = ViewModel()
    _start(m, planned_lanes=lanes)
    m.cells = {(2, j): 1.0 for j in range(0, 8000)} | {(6, j): 1.0 for j in range(0, 400)}
    m._cells_dirty = True
    cov = m.coverage()
    # Lane 0 fully walked, lane 1 (x = 1.5) walked for its first 100 m: no gap yet.
    assert cov["segments"] == [] and cov["gap_m"] == 0.0
    assert m._near_walked(np.array([[0.5, 1000.0], [5.5, 1000.0]])).tolist() == [True, False]


def test_service_news_are_notices_and_leave_the_connection_state_alone():
    m = ViewModel()
    _start(m)
    m.ingest(wire(state_message(StateChange("grad0", "connected", "opened", 1), "s1", 1)), 0)
    out = m.ingest(wire(state_message(StateChange("grad0", "recorder_error", "disk full", 2),
                                      "s1", 2)), 0)
    assert [u["type"] for u in out] == ["notice"]
    assert out[0]["notice"]["reason"] == "disk full"
    assert m.health(0, 0)["streams"]["grad0"]["state"] == "connected"
    assert [n["state"] for n in m.snapshot(0)["notices"]] == ["recorder_error"]
