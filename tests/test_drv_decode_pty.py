"""`uxo decode` on emulated captures, and every new driver end to end through a real pty."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys

import numpy as np
import pytest

from acquisition.cli import main as uxo_main
from acquisition.decode import decode_bytes, parse_option, resolve_driver
from acquisition.drivers import registry
from acquisition.drivers.borehole import BoreholeDriver
from acquisition.drivers.fga import FGADriver
from acquisition.drivers.fgm3d import FGM3DDriver
from acquisition.drivers.g882 import G882Driver
from acquisition.drivers.gsm19 import GSM19Driver
from acquisition.drivers.lineproto import LineProtoDriver
from acquisition.drivers.nmea import NmeaDriver
from simulator.emulators import protocols as em
from simulator.emulators.gradline import FaultPlan
from simulator.pty import PtyPair

DRIVERS = {"g882": G882Driver, "gsm19": GSM19Driver, "fga": FGADriver, "fgm3d": FGM3DDriver,
           "nmea": NmeaDriver, "lineproto": LineProtoDriver, "borehole": BoreholeDriver}
LP_OPTS = {"separator": ";", "columns": ["time:s", "bz:nT", "depth:m*0.01"]}
NMEA_DAY_S = 1_773_446_400  # 2026-03-14 00:00 UTC


def g882_capture(n: int) -> bytes:
    return b"".join(em.g882_line([45000.0 + i], [1000 + i]) for i in range(n))


def test_decode_g882_with_garbage_and_partial_start():
    clean = [em.g882_line([45000.0 + i], [1000 + i]) for i in range(200)]
    f = em.faulted(clean, FaultPlan(garbage=0.1, truncate=0.05, seed=5))
    data = b"895.131,12\r\n" + f.data + b"$ 4500"  # cut at both ends, as a capture is
    desc, rows, summary = decode_bytes("g882", data, {})
    assert desc.channel_names == ("tf", "signal")
    intact = [i for i, ok in enumerate(f.intact) if ok]
    got = {(r[2], r[3]) for r in rows}
    assert all((45000.0 + i, 1000.0 + i) in got for i in intact)
    assert summary.frames_ok == len(rows) >= len(intact)
    assert summary.frames_rejected >= f.garbage_bursts + 1
    assert sum(summary.rejected_by_reason.values()) == summary.frames_rejected
    assert [r[0] for r in rows] == list(range(len(rows)))
    assert rows[1][1] == pytest.approx(0.1)  # no device clock: index / 10 Hz


@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_decode_chunking_does_not_change_result(chunk):
    lines = [em.gsm19_line(86399.0 + 0.5 * i, 48000 + i, quality=99) for i in range(10)]
    data = b"".join(lines) + b"\xff\xfe garbage\r\n" + em.gsm19_line(5.0, 48000, quality=1)
    desc, rows, summary = decode_bytes("gsm19", data, {}, chunk=chunk)
    assert len(rows) == 11 and summary.frames_rejected == 1
    t = [r[1] for r in rows]
    assert t[:3] == [86399.0, 86399.5, 86400.0] and t[-1] == 86405.0  # day roll-over
    assert desc.channel_names == ("tf", "quality", "grad")


def test_decode_every_driver_on_emulated_capture():
    caps = {
        "g882": (g882_capture(20), {}),
        "gsm19": (b"".join(em.gsm19_line(100 + i, 48000, gradient=0.5 * i) for i in range(20)),
                  {}),
        "fga": (em.fga_header() + b"".join(em.fga_line(i, [1, 2, 3], [4, 5, 6], 16.75, 107.1,
                                                         10, 12, 4, 0.7) for i in range(20)), {}),
        "fgm3d": (b"".join(em.fgm3d_line(1000 + i, 100.0, -200.0, 40000.0) for i in range(20)),
                  {}),
        "nmea": (b"".join(em.nmea_gga(100 + i, 16.75, 107.1, fix=5) for i in range(20)), {}),
        "lineproto": (b"".join(em.lineproto_line([i, 2.5, 150], separator=";")
                               for i in range(20)), LP_OPTS),
        "borehole": (b"".join(em.borehole_line(i, i * 0.1, -i, [3, 4, 5]) for i in range(20)),
                     {"kind": "vector"}),
    }
    for name, (data, opts) in caps.items():
        desc, rows, summary = decode_bytes(name, data, opts)
        assert summary.frames_ok == 20 and summary.frames_rejected == 0, name
        assert all(len(r) == 2 + len(desc.channels) + (2 if desc.position_dims else 0)
                   for r in rows)
        assert all(c.units for c in desc.channels)
    _, rows, _ = decode_bytes("fgm3d", caps["fgm3d"][0], {})
    # The published format keeps 5 significant digits: 40000.6 nT is sent as 4,0001E-5 T.
    assert rows[0][2:6] == [100.0, -200.0, 40000.0, 40001.0]
    _, rows, _ = decode_bytes("borehole", caps["borehole"][0], {"kind": "vector"})
    assert rows[5][2:] == pytest.approx([3, 4, 5, -0.005, -1])


def test_decode_cli_writes_csv_and_summary(tmp_path, capsys):
    cap = tmp_path / "cap.bin"
    cap.write_bytes(g882_capture(5) + b"junk\r\n" + b"x" * 600 + b"\r\n")
    assert uxo_main(["decode", "--driver", "g882", str(cap)]) == 0
    out, err = capsys.readouterr()
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["index", "t_s", "tf", "signal"]
    assert [float(v) for v in table[3][2:]] == [45002.0, 1002.0] and len(table) == 6
    assert "frames ok: 5" in err and "frames rejected: 2" in err
    assert "no_prefix: 1" in err and "overlong: 1" in err
    assert uxo_main(["decode", "--driver", "nonesuch", str(cap)]) == 2
    assert uxo_main(["decode", "--driver", "lineproto", str(cap)]) == 2  # no columns configured
    assert parse_option("columns=['a:nT']") == ("columns", ["a:nT"])
    assert parse_option("separator=;") == ("separator", ";")


def test_decode_stdin_subprocess():
    proc = subprocess.run([sys.executable, "-m", "acquisition.cli", "decode",
                           "--driver", "nmea", "-"],
                          input=em.nmea_gga(10, 16.75, 107.1, fix=4), capture_output=True,
                          check=True, timeout=60)
    lines = proc.stdout.decode().splitlines()
    assert lines[0].startswith("index,t_s,utc_s,lat,lon") and lines[0].endswith(",x,y")
    assert len(lines) == 2 and b"frames ok: 1" in proc.stderr


def test_registry_lookup_by_name():
    for name, cls in DRIVERS.items():
        registry.register(name, cls)
    try:
        assert resolve_driver("fgm3d") is FGM3DDriver
        assert registry.create("g882", "x", sensors=2).describe().channel_names == (
            "tf1", "signal1", "tf2", "signal2")
    finally:
        for name in DRIVERS:
            registry.unregister(name)


# --- through a real pty -----------------------------------------------------------------------
def _read_all(drv, pty: PtyPair, data: bytes, expect: int) -> np.ndarray:
    em.stream_to_pty(pty, data, seed=2, max_chunk=500)
    got = []
    n = 0
    for _ in range(200):
        blk = drv.read_block(0.05)
        if blk is not None:
            got.append(blk.data)
            n += blk.n
        if n >= expect:
            break
    blk = drv.flush()
    if blk is not None:
        got.append(blk.data)
    return np.concatenate(got) if got else np.empty((0, 0))


PTY_CASES = {
    "g882": ({"sensors": 2}, lambda i: em.g882_line([45000.0 + i, 46000.0 + i], [i, 2 * i]),
             lambda i: [45000.0 + i, i, 46000.0 + i, 2 * i]),
    "gsm19": ({}, lambda i: em.gsm19_line(3600 + i, 48000.5 + i, quality=99),
              lambda i: [48000.5 + i, 99, math.nan]),
    "fgm3d": ({}, lambda i: em.fgm3d_line(1000 + i, 1000.0 + i, 0.0, 0.0),
              lambda i: [1000.0 + i, 0, 0, 1000.0 + i]),
    "fga": ({"origin": [16.75, 107.1]},
            lambda i: em.fga_line(i, [i, 0, 0], [0, i, 0], 16.75, 107.1, 9, 14, 4, 0.5),
            lambda i: [i, 0, 0, i, 0, i, 0, i, 16.75, 107.1, 9, 14, 4, 0.5]),
    # GGA only: the date option dates the rows (live, the host clock would; see nmea).
    "nmea": ({"block_size": 10, "date": "2026-03-14"},
             lambda i: em.nmea_gga(100 + i, 16.75, 107.1, fix=4, sats=9, hdop=1.1, alt_m=5.0),
             lambda i: [NMEA_DAY_S + 100 + i, 16.75, 107.1, 5.0, 4, 9, 1.1, math.nan, math.nan,
                        1]),
    "lineproto": (LP_OPTS, lambda i: em.lineproto_line([i, 2.5, 100 * i], separator=";"),
                  lambda i: [2.5, i]),
    "borehole": ({}, lambda i: em.borehole_line(i, 0.1 * i, 10 * i, [0.25 * i]),
                 lambda i: [0.25 * i, 0.01 * i, 1 if i else 0]),
}


@pytest.mark.parametrize("name", sorted(PTY_CASES))
def test_driver_reads_through_real_pty(name):
    opts, write, expect = PTY_CASES[name]
    n = 60
    with PtyPair() as pty:
        drv = DRIVERS[name](pty.path, **opts)
        desc = drv.open()
        try:
            # The port was opened mid-line: the first line is a cut one.
            data = b'29E-5","1' + b"\r\n" + b"".join(write(i) for i in range(n))
            data += b"\x00\xff garbage \xfe\r\n" + write(n)
            got = _read_all(drv, pty, data, n + 1)
        finally:
            drv.close()
    want = np.array([expect(i) for i in range(n + 1)], dtype=float)
    assert got.shape == want.shape, (name, got.shape)
    assert np.allclose(got, want, equal_nan=True, rtol=0, atol=1e-6)
    assert drv.counters.frames_ok == n + 1
    # The cut first line and the garbage line: each rejected and counted once.
    assert drv.counters.frames_rejected == 2
    assert sum(drv.counters.rejected_by_reason.values()) == 2
    assert len(desc.channels) == want.shape[1]
