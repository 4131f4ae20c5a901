"""A detector without positions plus an NMEA receiver, each on its own real pty.

The service records and publishes both streams and gives the detector samples
positions interpolated from the fix track by time, tracking the clock offset.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import numpy as np
import pytest

from acquisition.drivers import registry
from acquisition.drivers.gnss_attach import LocalTangentPlane
from acquisition.service import AcquisitionService, ServiceConfig
from acquisition.types import BlockFlags
from recorder.reader import open_recording
from simulator.emulators.protocols import g882_line, nmea_gga, nmea_rmc
from simulator.pty import PtyPair

pytestmark = pytest.mark.slow

LAT0, LON0 = 16.75, 107.0
SPEED = 1.0  # m/s north
M_PER_DEG_LAT = 110_700.0


def _lat(t: float) -> float:
    return LAT0 + SPEED * t / M_PER_DEG_LAT


def _walk(n: int, fix_every: int, *, record: str | None = None, **driver_opts):
    """A G-882 without positions at 10 Hz (reading 43600 + i nT at sample i) and a
    receiver with a fix every ``fix_every`` samples on the walked path, each on
    its own real pty, for ``n`` samples. Returns the service's summary, its
    events, the service and the wall time of the first sample."""
    det, gps = PtyPair(), PtyPair()
    driver = registry.create("g882", det.path, stream_id="mag0", **driver_opts)
    gnss = registry.create("nmea", gps.path, stream_id="gnss")
    events: list = []
    service = AcquisitionService(driver, ServiceConfig(record=record), gnss=gnss,
                                 runner_options={"stall_s": 10.0}, on_event=events.append)
    t_start: list[float] = []

    def device() -> None:
        # Wait until both ports are open (pyserial flushes input on open).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(service.descriptors) < 2:
            time.sleep(0.01)
        t0 = time.time()
        t_start.append(t0)
        today = dt.datetime.fromtimestamp(t0, dt.UTC).date()
        for i in range(n):
            time.sleep(max(0.0, t0 + i * 0.1 - time.time()))
            now = time.time()
            det.write(g882_line([43600.0 + i], [1000]))
            if i % fix_every == 0:
                tod = now % 86400.0
                lat = _lat(now - t0)
                gps.write(nmea_gga(tod, lat, LON0) + nmea_rmc(tod, lat, LON0, today))
        time.sleep(0.5)
        service.stop()

    threading.Thread(target=device, daemon=True).start()
    try:
        summary = service.run()
    finally:
        det.close()
        gps.close()
    return summary, events, service, t_start[0]


def test_detector_positions_come_from_gnss_by_time(tmp_path):
    record = tmp_path / "g.h5"
    # 4 s: detector at 10 Hz, GNSS at 5 Hz
    summary, _, _, t0 = _walk(41, 2, record=str(record), block_size=5, max_block_s=0.05)
    assert summary.samples == 41
    c = summary.counters
    assert c["gnss_fixes"] >= 20
    # The offset (host - GNSS) is the serial latency here: well under a second.
    assert 0 <= c["clock_offset_ns"] < 200_000_000
    plane = LocalTangentPlane(_lat(0.0), LON0)
    with open_recording(record) as rec:
        assert set(rec.streams) == {"mag0", "gnss"}
        mag = rec.streams["mag0"]
        assert mag.data[:, 0].tolist() == [43600.0 + i for i in range(41)]
        flags = [int(b["flags"]) for b in mag.blocks]
        assert all(f & BlockFlags.POSITION_INTERPOLATED for f in flags)
        pos = mag.positions
        t = (mag.times_ns() - c["clock_offset_ns"]) / 1e9 - t0
        inside = np.isfinite(pos[:, 1])
        # Samples inside the fix track all get positions; expected y from the
        # walking model at the sample's GNSS time.
        assert inside.sum() >= 35
        _, y_exp = plane.to_xy(np.array([_lat(tt) for tt in t[inside]]),
                               np.full(inside.sum(), LON0))
        # Sample times come from the host's arrival clock; 0.1 m = 0.1 s at 1 m/s.
        assert np.abs(pos[inside, 1] - y_exp).max() < 0.1
        assert np.abs(pos[inside, 0]).max() < 0.01
        assert rec.streams["gnss"].data.shape[0] == 42  # 21 GGA + 21 RMC sentences


def test_fixes_too_seldom_for_live_feedback_are_reported_once():
    # 1 Hz fixes: a detector block waits up to a second for the fix after it
    _, events, _, _ = _walk(51, 10)
    slow = [e for e in events if getattr(e, "state", "") == "slow_positions"]
    assert len(slow) == 1 and slow[0].stream_id == "mag0"
    assert "GNSS fixes every 1.00 s" in slow[0].reason
    assert "up to 1.35 s" in slow[0].reason and "set the receiver to 7 Hz" in slow[0].reason
    # 10 Hz fixes: 0.3 s + 0.1 s + 0.05 s fits in 0.5 s
    _, fast, service, _ = _walk(16, 1)
    assert service.attacher.fix_interval_s == pytest.approx(0.1, abs=0.01)
    assert service._fix_rate_checked  # judged, and found in time
    assert not [e for e in fast if getattr(e, "state", "") == "slow_positions"]
