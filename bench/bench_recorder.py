"""Recorder throughput: sustained append rate and flush latency (pytest-benchmark).

An 8-channel float64 stream with positions (x, y) in 1000-sample blocks goes
through `RecorderSink` with the default flush policy (1 s timer, SHA-256 chain,
no compression) into a real HDF5 file. Reported: samples/s and MB/s of raw
data (8 channels x 8 bytes + 2 x 8 bytes of positions per sample), and the
duration of each flush (append + file flush + chain + file flush).

    .venv/bin/pytest bench/bench_recorder.py --benchmark-only
    .venv/bin/python bench/bench_recorder.py          # same numbers, printed
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acquisition.types import ChannelSpec, SampleBlock, StreamDescriptor
from recorder.sink import RecorderSink

RATE = 1_000_000.0
BLOCK = 1000
NCH = 8


def _descriptor() -> StreamDescriptor:
    return StreamDescriptor("cart8", "bench cart", "B-1", RATE,
                            tuple(ChannelSpec(f"s{i}", "nT") for i in range(NCH)),
                            {"kind": "gradient"}, position_dims=2)


def _blocks(n_blocks: int) -> list[SampleBlock]:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(BLOCK, NCH))
    pos = rng.uniform(size=(BLOCK, 2))
    return [SampleBlock("cart8", i, i * BLOCK, i * BLOCK * 1000, RATE, data, pos)
            for i in range(n_blocks)]


def run(directory: Path, n_blocks: int = 4000) -> dict[str, float]:
    """Append ``n_blocks`` as fast as possible; return rates and flush latencies."""
    blocks = _blocks(n_blocks)
    path = directory / f"bench-{time.monotonic_ns()}.h5"
    latencies: list[int] = []
    t0 = time.perf_counter()
    with RecorderSink(path, session="bench") as sink:
        sink.add_stream(_descriptor())
        sink.start()
        flushes = 0
        for b in blocks:
            sink.write_block(b)
            if sink.n_flushes != flushes:
                flushes = sink.n_flushes
                latencies.append(sink.last_flush_duration_ns)
        sink.flush()
        latencies.append(sink.last_flush_duration_ns)
    elapsed = time.perf_counter() - t0
    samples = n_blocks * BLOCK
    nbytes = samples * (NCH + 2) * 8
    lat = np.array(latencies) / 1e6
    path.unlink()
    return {
        "samples_per_s": samples / elapsed,
        "MB_per_s": nbytes / elapsed / 1e6,
        "seconds": elapsed,
        "flushes": len(latencies),
        "flush_ms_median": float(np.median(lat)),
        "flush_ms_max": float(lat.max()),
    }


def test_bench_append_rate_8ch(benchmark, tmp_path):
    results: list[dict[str, float]] = []
    benchmark.pedantic(lambda: results.append(run(tmp_path)), rounds=3, iterations=1)
    best = max(results, key=lambda r: r["samples_per_s"])
    benchmark.extra_info.update({k: round(v, 3) for k, v in best.items()})
    print(f"\nrecorder: {best['samples_per_s'] / 1e6:.2f} M samples/s, "
          f"{best['MB_per_s']:.0f} MB/s, flush median {best['flush_ms_median']:.1f} ms, "
          f"max {best['flush_ms_max']:.1f} ms over {best['flushes']} flushes")


def test_bench_flush_latency_one_second_at_10khz(benchmark, tmp_path):
    """Flush of one interval of a realistic fast cart (10 kHz x 8 channels)."""
    desc = StreamDescriptor("cart8", "c", "1", 10_000.0,
                            tuple(ChannelSpec(f"s{i}", "nT") for i in range(NCH)),
                            position_dims=2)
    data = np.random.default_rng(2).normal(size=(BLOCK, NCH))
    pos = np.zeros((BLOCK, 2))
    sink = RecorderSink(tmp_path / "lat.h5", session="lat", flush_interval_s=3600)
    sink.add_stream(desc)
    sink.start()
    seq = [0]

    def fill() -> tuple[tuple, dict]:
        for _ in range(10):  # one second of data
            sink.write_block(SampleBlock("cart8", seq[0], seq[0] * BLOCK, seq[0], 10_000.0,
                                         data, pos))
            seq[0] += 1
        return (), {}

    benchmark.pedantic(sink.flush, setup=fill, rounds=30, iterations=1)
    sink.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        for _ in range(3):
            r = run(Path(d))
            print(", ".join(f"{k} {v:.3g}" for k, v in r.items()))
