"""Decode throughput per driver: pure parser (fast and reference) and end to end over a pty.

Run the pytest-benchmark suite::

    .venv/bin/pytest bench/bench_drivers.py --benchmark-only

or print a table of lines/s and MB/s (what docs/drivers.md quotes)::

    .venv/bin/python bench/bench_drivers.py [name ...] [--no-pty]

or compare the parsers with those of a git revision (``textnum`` and the
parser module loaded from ``git show REV:...`` side by side, interleaved, cpu
time, best of 9)::

    .venv/bin/python bench/bench_drivers.py --baseline=HEAD fga nmea nmea_mix

Rates are best of 7, fast and reference interleaved in one process. "wall" is
elapsed time; "cpu" the thread's CPU time, which on a shared machine is the
fairer figure for "lines/s per core" (it leaves out time spent waiting for a
core, not cache or memory-bandwidth contention).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from acquisition.drivers import borehole, fga, fgm3d, g882, gsm19, lineproto, nmea
from acquisition.drivers.base import LineDriver
from acquisition.drivers.borehole import BoreholeDriver
from acquisition.drivers.fga import FGADriver
from acquisition.drivers.fgm3d import FGM3DDriver
from acquisition.drivers.g882 import G882Driver
from acquisition.drivers.gsm19 import GSM19Driver
from acquisition.drivers.lineproto import LineProtoDriver
from acquisition.drivers.nmea import NmeaDriver
from simulator.emulators import protocols as em
from simulator.pty import PtyPair

N = 20_000
LP_OPTS = {"separator": ",", "columns": ["t:s", "a:nT", "b:nT"]}
LP = lineproto.LineFormat.from_options(LP_OPTS)
#: Driver class and options for the end-to-end runs through a pty.
DRIVERS: dict[str, tuple[type[LineDriver], dict]] = {
    "g882": (G882Driver, {}), "gsm19": (GSM19Driver, {}), "fga": (FGADriver, {}),
    "fgm3d": (FGM3DDriver, {}), "nmea": (NmeaDriver, {}), "nmea_mix": (NmeaDriver, {}),
    "lineproto": (LineProtoDriver, LP_OPTS),
    "borehole": (BoreholeDriver, {}),
}


def _lines(name: str, n: int = N) -> list[bytes]:
    rng = np.random.default_rng(0)
    if name == "g882":
        out = [em.g882_line([v], [s]) for v, s in zip(rng.uniform(40000, 50000, n),
                                                      rng.integers(0, 9999, n), strict=True)]
    elif name == "gsm19":
        out = [em.gsm19_line(i * 0.1, 48000 + v, quality=99)
               for i, v in enumerate(rng.normal(0, 5, n))]
    elif name == "fga":
        out = [em.fga_line(i, rng.normal(0, 99, 3), rng.normal(0, 99, 3), 16.75, 107.1, 9, 14,
                           4, 0.5) for i in range(n)]
    elif name == "fgm3d":
        out = [em.fgm3d_line(1648557860787 + i, *rng.normal(0, 3e4, 3)) for i in range(n)]
    elif name == "nmea":
        out = [em.nmea_gga(i % 86400, 16.75 + 1e-6 * i, 107.1, fix=4) for i in range(n)]
    elif name == "nmea_mix":  # a receiver's usual 1 Hz set: GGA, RMC, GSV
        day = dt.date(2026, 3, 14)
        out = [em.nmea_gga(i // 3, 16.75 + 1e-6 * i, 107.1, fix=4) if i % 3 == 0 else
               em.nmea_rmc(i // 3, 16.75 + 1e-6 * i, 107.1, day, speed_mps=1.2, mode="R")
               if i % 3 == 1 else em.nmea_gsv_dummy() for i in range(n)]
    elif name == "lineproto":
        out = [em.lineproto_line([i * 0.01, *rng.normal(0, 9, 2)]) for i in range(n)]
    else:
        out = [em.borehole_line(i, 0.1 * i, i, [v]) for i, v in enumerate(rng.normal(0, 5, n))]
    return [ln[:-2] for ln in out]


PARSERS: dict[str, tuple[Callable, Callable]] = {
    "g882": (g882.parse_lines, g882.parse_lines_reference),
    "gsm19": (gsm19.parse_lines, gsm19.parse_lines_reference),
    "fga": (fga.parse_lines, fga.parse_lines_reference),
    "fgm3d": (fgm3d.parse_lines, fgm3d.parse_lines_reference),
    "nmea": (nmea.parse_lines, nmea.parse_lines_reference),
    "nmea_mix": (nmea.parse_lines, nmea.parse_lines_reference),
    "lineproto": (lambda ls: lineproto.parse_lines(ls, LP),
                  lambda ls: lineproto.parse_lines_reference(ls, LP)),
    "borehole": (borehole.parse_lines, borehole.parse_lines_reference),
}


@pytest.mark.parametrize("kind", ["fast", "reference"])
@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parser_throughput(benchmark, name, kind):
    lines = _lines(name)
    fn = PARSERS[name][0 if kind == "fast" else 1]
    out = benchmark(fn, lines)
    assert out.n == _rows(name, lines)
    benchmark.extra_info["lines"] = len(lines)
    benchmark.extra_info["bytes"] = sum(len(ln) + 2 for ln in lines)


def _rows(name: str, lines: list[bytes]) -> int:
    """Samples the lines give: every line, but the GSV third of the NMEA mix is skipped."""
    return len(lines) - (len(lines) // 3 if name == "nmea_mix" else 0)


def pty_end_to_end(cls: type[LineDriver], lines: list[bytes], expect: int | None = None,
                   **opts) -> tuple[float, int]:
    """Seconds to push ``lines`` through a pty and the driver; returns (s, samples).

    A writer thread plays the device (back-pressured by the tty buffer); this
    thread reads blocks as the service would.
    """
    data = b"".join(ln + b"\r\n" for ln in lines)
    with PtyPair() as pty:
        drv = cls(pty.path, block_size=1000, **opts)
        drv.open()
        writer = threading.Thread(target=pty.write, args=(data,), kwargs={"timeout": 30.0})
        try:
            t0 = time.perf_counter()
            writer.start()
            got = 0
            deadline = t0 + 30
            want = len(lines) if expect is None else expect
            while got < want and time.perf_counter() < deadline:
                blk = drv.read_block(0.01)
                if blk is None and not writer.is_alive() and pty.unread() == 0:
                    blk = drv.flush()
                got += blk.n if blk is not None else 0
            return time.perf_counter() - t0, got
        finally:
            writer.join()
            drv.close()


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_pty_end_to_end(benchmark, name):
    cls, opts = DRIVERS[name]
    lines = _lines(name, 5000)
    _secs, got = benchmark.pedantic(pty_end_to_end, args=(cls, lines, _rows(name, lines)),
                                    kwargs=opts, rounds=3, iterations=1)
    assert got == _rows(name, lines)


def main(names: list[str], pty: bool = True) -> None:
    """One table row per driver: fast and reference parser (best of 7, same process,
    interleaved so machine noise hits both), ratio, and a pty run (median of 3)."""
    print(f"{'parser':10s} {'fast wall':>11s} {'fast cpu':>11s} {'fast MB/s':>9s} "
          f"{'ref cpu':>10s} {'fast/ref':>8s} {'pty lines/s':>12s}")
    for name in names or PARSERS:
        fast, ref = PARSERS[name]
        lines = _lines(name)
        nbytes = sum(len(ln) + 2 for ln in lines)
        tf, tr = [], []
        for _ in range(7):
            tf.append(_timeit(fast, lines))
            tr.append(_timeit(ref, lines))
        wall_f, cpu_f = min(w for w, _ in tf), min(c for _, c in tf)
        cpu_r = min(c for _, c in tr)
        pty_rate = ""
        if pty:
            cls, opts = DRIVERS[name]
            runs = sorted(pty_end_to_end(cls, lines, _rows(name, lines), **opts)
                          for _ in range(3))
            secs, got = runs[1]  # median of three: the 2 cores are shared
            assert got == _rows(name, lines), (name, got)
            pty_rate = f"{len(lines) / secs:12,.0f}"
        print(f"{name:10s} {len(lines) / wall_f:11,.0f} {len(lines) / cpu_f:11,.0f} "
              f"{nbytes / cpu_f / 1e6:9.1f} {len(lines) / cpu_r:10,.0f} {cpu_r / cpu_f:8.2f} "
              f"{pty_rate}")


def _timeit(fn: Callable, lines: list[bytes]) -> tuple[float, float]:
    """(wall, thread CPU) seconds of one call."""
    t0, c0 = time.perf_counter(), time.thread_time()
    fn(lines)
    return time.perf_counter() - t0, time.thread_time() - c0


#: Parser module per table row, for `--baseline`.
MODULES = {"g882": "g882", "gsm19": "gsm19", "fga": "fga", "fgm3d": "fgm3d", "nmea": "nmea",
           "nmea_mix": "nmea", "borehole": "borehole"}


def load_revision(rev: str, module: str) -> types.ModuleType:
    """``acquisition.drivers.<module>`` as of git revision ``rev`` (read-only ``git show``),
    bound to that revision's ``textnum``; the current modules stay as they are."""
    root = Path(__file__).resolve().parent.parent

    def source(name: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:acquisition/drivers/{name}.py"], cwd=root,
                              check=True, capture_output=True, text=True).stdout

    def build(name: str, src: str) -> types.ModuleType:
        mod = types.ModuleType(f"_baseline_{name}")
        mod.__file__ = f"{rev}:acquisition/drivers/{name}.py"
        sys.modules[mod.__name__] = mod  # dataclasses look their module up
        exec(compile(src, mod.__file__, "exec"), mod.__dict__)
        return mod

    old_textnum = build("textnum", source("textnum"))
    current = sys.modules["acquisition.drivers.textnum"]
    sys.modules["acquisition.drivers.textnum"] = old_textnum  # for the module's imports
    try:
        return build(module, source(module))
    finally:
        sys.modules["acquisition.drivers.textnum"] = current


def compare(rev: str, names: list[str]) -> None:
    """Before (``rev``) / after / reference, cpu lines/s, best of 9, interleaved."""
    print(f"{'parser':10s} {'before':>11s} {'after':>11s} {'after/before':>12s} "
          f"{'reference':>11s} {'after/ref':>9s}")
    for name in names or [n for n in PARSERS if n in MODULES]:
        old = load_revision(rev, MODULES[name])
        fast, ref = PARSERS[name]
        lines = _lines(name)
        best = {"before": 1e9, "after": 1e9, "ref": 1e9}
        for _ in range(9):
            for key, fn in (("before", old.parse_lines), ("after", fast), ("ref", ref)):
                best[key] = min(best[key], _timeit(fn, lines)[1])
        n = len(lines)
        print(f"{name:10s} {n / best['before']:11,.0f} {n / best['after']:11,.0f} "
              f"{best['before'] / best['after']:12.2f} {n / best['ref']:11,.0f} "
              f"{best['ref'] / best['after']:9.2f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    base = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--baseline=")]
    if base:
        compare(base[0], args)
    else:
        main(args, pty="--no-pty" not in sys.argv)
