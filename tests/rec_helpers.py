"""Shared helpers for the recorder tests (test_rec_*.py), and a writer process.

Run as a script, this module is the writer the SWMR, kill and disk-full tests
start in a subprocess::

    python tests/rec_helpers.py PATH MODE [FLUSH_S]

It prints ``READY`` once the file exists, ``W <rows>`` after every block it
hands to the sink and ``F <rows>`` after every flush (rows committed), so the
test knows what the file must hold. Data are a function of the sample index
(``value[i, c] = i * 10 + c``), so any row read back can be checked.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acquisition.types import BlockFlags, ChannelSpec, SampleBlock, StreamDescriptor

RATE = 1000.0
T0 = 1_780_000_000_000_000_000


def descriptor(stream_id: str = "grad0", nch: int = 2, pos_dims: int = 2,
               rate: float = RATE) -> StreamDescriptor:
    return StreamDescriptor(
        stream_id=stream_id, instrument="test cart", serial="SN-7", rate_hz=rate,
        channels=tuple(ChannelSpec(f"ch{i}", "nT", calibration={"scale": 1.0 + i})
                       for i in range(nch)),
        geometry={"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65},
        position_dims=pos_dims, driver="test")


def indexed_block(desc: StreamDescriptor, seq: int, first_index: int, n: int,
                  flags: BlockFlags = BlockFlags.NONE) -> SampleBlock:
    """A block whose values encode their sample index (see module docstring)."""
    idx = np.arange(first_index, first_index + n, dtype=np.float64)
    nch = len(desc.channels)
    data = idx[:, None] * 10 + np.arange(nch)[None, :]
    pos = (np.column_stack([idx * 0.01, idx * 0.02][: desc.position_dims])
           if desc.position_dims else None)
    return SampleBlock(desc.stream_id, seq, first_index,
                       T0 + round(first_index * 1e9 / desc.rate_hz), desc.rate_hz, data, pos,
                       host_mono_ns=first_index, host_wall_ns=T0 + first_index,
                       device_time_ns=None if seq % 3 == 0 else first_index * 1000,
                       flags=flags)


def check_indexed(data: np.ndarray, first_index: int = 0) -> bool:
    idx = np.arange(first_index, first_index + len(data), dtype=np.float64)
    return bool(np.array_equal(data, idx[:, None] * 10 + np.arange(data.shape[1])[None, :]))


def _writer(path: str, mode: str, flush_s: float) -> int:
    import resource
    import signal

    from recorder.sink import RecorderSink

    desc = descriptor()
    block_n = 50
    rows = 0
    # The sink's clock follows the data (1 ms per sample): flushes happen every
    # flush_s of data, whatever the machine's load, so loss bounds are exact.
    clock = (lambda: rows * 1_000_000) if mode != "swmr" else time.monotonic_ns
    sink = RecorderSink(path, session="proc", provenance={"operator": "test"},
                        flush_interval_s=flush_s, clock=clock, retry_s=3600)
    sink.add_stream(desc)
    if mode == "diskfull":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
    sink.start()
    print("READY", flush=True)
    flushes = sink.n_flushes
    seq = 0
    reported_error = False
    limit = {"kill": 10**9, "swmr": 10**9, "diskfull": 4000}[mode]
    while rows < limit:
        b = indexed_block(desc, seq, rows, block_n)
        rows += block_n
        sink.write_block(b)
        if seq % 10 == 0:
            sink.write_event("state", desc.stream_id, {"state": "connected", "seq": seq}, T0 + seq)
        seq += 1
        print(f"W {rows}", flush=True)
        if sink.n_flushes != flushes:
            flushes = sink.n_flushes
            print(f"F {sink.stats()['streams']['grad0']['rows']}", flush=True)
        if not sink.healthy and not reported_error:
            reported_error = True
            print(f"ERR {sink.error}", flush=True)
        if mode == "swmr":
            time.sleep(0.002)
        elif mode == "kill":
            time.sleep(0.0005)
    sink.close()
    print(f"CLOSED healthy={sink.healthy} dropped={sink.dropped_samples}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_writer(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.1))
