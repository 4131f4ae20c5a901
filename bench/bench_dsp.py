"""Lane DSP speed: levelling + detection throughput, dipole fit per target, 1 ha batch.

    .venv/bin/pytest bench/bench_dsp.py --benchmark-only
    .venv/bin/python bench/bench_dsp.py          # prints a small table
    .venv/bin/python bench/bench_dsp.py --steps  # + where the streaming time goes
    .venv/bin/python bench/bench_dsp.py --no-fit # levelling/detection figures only

Throughput is cpu time of this thread (`time.thread_time`, median of repeats),
and also a ratio to a plain numpy baseline timed in the same process (one
`np.median(axis=1)` and one threshold over 200 x 1000 samples), which drifts
much less than absolute figures with the load of a shared machine.

Targets (issue): levelling + detection >= 10 M samples/s per core in blocks
of 1000; dipole fit <= 30 ms median per target; a 1 ha survey (~100,000
samples) in batch under 5 s.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dsp_synth import induced, lanes_xy

import acquisition.dsp.pipeline as pipeline_mod
from acquisition.dsp.batch import make_descriptor, process_survey
from acquisition.dsp.detect import LiveDetector, find_segments
from acquisition.dsp.fit import fit_sources
from acquisition.dsp.lanes2d import level_detect_lanes
from acquisition.dsp.levelling import despike, diff_noise, level_lane
from acquisition.dsp.pipeline import LanePipeline
from acquisition.forward import SensorGeometry, forward
from acquisition.geomag import QUANG_TRI
from acquisition.types import SampleBlock

GEO = {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}
G = SensorGeometry.from_geometry(GEO, QUANG_TRI)


def _lane_blocks(n_blocks: int = 200, n: int = 1000, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    y = np.arange(n) * 0.1
    for k in range(n_blocks):
        v = rng.normal(0, 0.5, n) + rng.normal(0, 2)
        # a few signals per lane, as in a busy survey
        for c in rng.uniform(5, 95, 3):
            v += 20 * np.exp(-0.5 * ((y - c) / 0.4) ** 2) * (-1) ** k
        out.append(v)
    return out


def level_and_detect(blocks: list[np.ndarray]) -> int:
    """Finished-lane stage on 1000-sample lanes: noise, despike, level, segments."""
    y = np.arange(1000) * 0.1
    x = np.zeros(1000)
    found = 0
    for v in blocks:
        s = diff_noise(v)
        c, _ = despike(v, s)
        lev, _ = level_lane(c, s)
        found += len(find_segments(lev, 5 * s, x, y, 0, merge_gap=10))
    return found


def level_and_detect_2d(arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
    """The same stage on all lanes at once (`acquisition.dsp.lanes2d`)."""
    v, x, y = arrays
    return len(level_detect_lanes(v, x, y, merge_gap=10)[2])


def _as_2d(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = np.vstack(blocks)
    return v, np.zeros(v.shape), np.broadcast_to(np.arange(v.shape[1]) * 0.1, v.shape)


def numpy_baseline(v: np.ndarray) -> int:
    """Plain numpy reference in the same process: one median and one threshold per lane."""
    med = np.median(v, axis=1)
    return int(np.count_nonzero(np.abs(v - med[:, None]) > 3.0))


def live_detect(blocks: list[np.ndarray]) -> int:
    """Live stage: the causal detector over blocks of 1000 (one long lane)."""
    det = LiveDetector(k=6.0, max_delay=4)
    det.noise = 0.5
    det.start_lane(None)
    y = np.arange(1000) * 0.1
    hits = 0
    for i, v in enumerate(blocks):
        if i % 20 == 0:  # a new lane every 20 blocks (2 km at 10 cm)
            det.start_lane(det.level)
        hits += len(det.feed(v, y))
    return hits


def _quiet_survey_blocks(n_lanes: int = 10, length: float = 1000.0) -> list[SampleBlock]:
    """A quiet survey (0.5 nT white noise, no objects) in blocks of 1000 samples."""
    x, y, _ = lanes_xy(n_lanes, length)
    v = np.random.default_rng(1).normal(0, 0.5, x.size)
    out = []
    for seq, i in enumerate(range(0, x.size, 1000)):
        sl = slice(i, i + 1000)
        out.append(SampleBlock("s", seq, i, i * 100_000_000, 10.0, v[sl, None].copy(),
                               np.column_stack((x[sl], y[sl]))))
    return out


def pipeline_stream(blocks: list[SampleBlock]) -> int:
    pipe = LanePipeline(make_descriptor(GEO, 10.0, "s"), QUANG_TRI)
    n = 0
    for b in blocks:
        n += len(pipe.process(b))
    return n + len(pipe.finish())


def _fit_cases(n: int = 30, seed: int = 3) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    xx, yy, _ = lanes_xy(7, 8.0)
    cases = []
    for _ in range(n):
        d = rng.uniform(0.2, 3.0)
        m = 10 ** rng.uniform(-1.5, 1.2) * (d / 1.0) ** 2
        src = induced(3.5 + rng.uniform(-0.5, 0.5), 4.0 + rng.uniform(-0.5, 0.5), d, m)
        v = forward(xx, yy, src.x, src.y, src.depth, src.moment, G)
        v = v + rng.normal(0, 0.5, v.size)
        cases.append((xx, yy, v))
    return cases


def fit_all(cases: list[tuple[np.ndarray, ...]]) -> int:
    return sum(len(fit_sources(x, y, v, G, 0.5, thr=2.5)) for x, y, v in cases)


def hectare_survey(seed: int = 5) -> tuple[np.ndarray, ...]:
    """100 lanes x 100 m (1 ha, ~100,000 samples) with 40 objects and scrap."""
    rng = np.random.default_rng(seed)
    x, y, lane = lanes_xy(100, 100.0)
    v = rng.normal(0, 0.5, x.size) + rng.normal(0, 1.0, 101)[lane]
    for _ in range(40):
        d = rng.uniform(0.1, 3.0)
        m = 10 ** rng.uniform(-2, 1.3)
        src = induced(rng.uniform(2, 98), rng.uniform(3, 97), d, m)
        v += forward(x, y, src.x, src.y, src.depth, src.moment, G)
    return x, y, v


def batch_hectare(data: tuple[np.ndarray, ...]) -> int:
    x, y, v = data
    return len(process_survey(x, y, v, geometry=GEO, field=QUANG_TRI).targets)


# ------------------------------------------------------------ pytest-benchmark
def test_bench_level_detect(benchmark):
    blocks = _lane_blocks()
    benchmark(level_and_detect, blocks)


def test_bench_level_detect_2d(benchmark):
    arrays = _as_2d(_lane_blocks())
    benchmark(level_and_detect_2d, arrays)


def test_bench_live_detect(benchmark):
    blocks = _lane_blocks()
    benchmark(live_detect, blocks)


def test_bench_pipeline_stream_quiet(benchmark):
    blocks = _quiet_survey_blocks()
    benchmark(pipeline_stream, blocks)


def test_bench_pipeline_stream_quiet_hectare(benchmark):
    blocks = _quiet_survey_blocks(100, 100.0)
    benchmark(pipeline_stream, blocks)


def test_bench_dipole_fit(benchmark):
    cases = _fit_cases(10)
    benchmark(fit_all, cases)


def test_bench_hectare_batch(benchmark):
    data = hectare_survey()
    benchmark.pedantic(batch_hectare, args=(data,), rounds=3, iterations=1)


def _time(fn, *args, repeat: int = 5) -> float:
    """Median cpu time of this thread over ``repeat`` runs (s)."""
    runs = []
    for _ in range(repeat):
        t0 = time.thread_time()
        fn(*args)
        runs.append(time.thread_time() - t0)
    return float(np.median(runs))


#: Functions the streaming pipeline calls, timed one by one by `--steps`.
STEPS = {
    "segmentation (LaneSegmenter)": ("segmenter", "runs", "assign"),
    "live detector (LiveDetector.feed)": ("live", "feed"),
    "lane store (_Buf.append)": ("_Buf", "append"),
    "finished lane, all (_finish_lane)": ("LanePipeline", "_finish_lane"),
    "  5 m background high-pass (block_highpass)": ("module", "block_highpass",
                                                    "running_median", "median_filter"),
    "  masked-median level": ("module", "masked_level", "level_lane"),
    "  white noise (diff_noise)": ("module", "diff_noise"),
    "  despike": ("module", "spike_index", "despike"),
    "  background MAD (mad_sigma)": ("module", "mad_sigma"),
    "  segments (find_segments)": ("module", "find_segments"),
}


def step_breakdown(blocks: list[SampleBlock], repeat: int = 3) -> tuple[float, dict[str, float]]:
    """Cpu ns per sample of the streaming pipeline and of its main steps (timers
    wrapped around each; they add ~1 us a call, so the parts sum above the whole)."""
    acc: collections.Counter[str] = collections.Counter()
    undo: list[tuple[object, str, object]] = []

    def wrap(owner: object, name: str, label: str) -> None:
        f = getattr(owner, name)

        def timed(*a: object, **k: object) -> object:
            t0 = time.thread_time_ns()
            try:
                return f(*a, **k)
            finally:
                acc[label] += time.thread_time_ns() - t0

        undo.append((owner, name, f))
        setattr(owner, name, timed)

    def patch(pipe: LanePipeline) -> None:
        owners = {"segmenter": pipe.segmenter, "live": pipe.live, "LanePipeline": LanePipeline,
                  "_Buf": getattr(pipeline_mod, "_Buf", None), "module": pipeline_mod}
        for label, (where, *names) in STEPS.items():
            owner = owners[where]
            # the first of the names this version of the code has
            name = next((nm for nm in names if hasattr(owner, nm)), None)
            if name is not None:
                wrap(owner, name, label)

    n = sum(b.n for b in blocks)
    t_all = _time(pipeline_stream, blocks, repeat=repeat)
    for _ in range(repeat):
        pipe = LanePipeline(make_descriptor(GEO, 10.0, "s"), QUANG_TRI)
        patch(pipe)
        try:
            for b in blocks:
                pipe.process(b)
            pipe.finish()
        finally:
            for owner, name, f in reversed(undo):
                setattr(owner, name, f)
            undo.clear()
    return 1e9 * t_all / n, {k: v / repeat / n for k, v in acc.items()}


def _rate(n: int, t: float, tb: float, nb: int) -> str:
    return f"{n / t / 1e6:6.2f} M samples/s = {(n / t) / (nb / tb):.3f} x baseline"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", action="store_true", help="time the streaming steps too")
    ap.add_argument("--no-fit", action="store_true", help="skip dipole fit and 1 ha batch")
    args = ap.parse_args(argv)
    blocks = _lane_blocks()
    arrays = _as_2d(blocks)
    n = sum(b.size for b in blocks)
    tb = _time(numpy_baseline, arrays[0], repeat=9)
    print(f"{'plain numpy baseline (median + threshold):':52s} {n / tb / 1e6:6.1f} M "
          "samples/s (cpu time of this thread)")

    def row(label: str, fn: Callable[..., object], arg: object, count: int,
            repeat: int = 5) -> None:
        # the baseline again, just before: the ratio compares like with like
        tb = _time(numpy_baseline, arrays[0], repeat=5)
        t = _time(fn, arg, repeat=repeat)
        print(f"{label:52s} {_rate(count, t, tb, n)}")

    row("levelling + detection, lane by lane (1000):", level_and_detect, blocks, n)
    row("  same, 200 lanes at once (lanes2d):", level_and_detect_2d, arrays, n, repeat=9)
    row("live detector, blocks of 1000:", live_detect, blocks, n)
    quiet = {"10 lanes x 1 km": _quiet_survey_blocks(10, 1000.0),
             "100 lanes x 100 m (1 ha)": _quiet_survey_blocks(100, 100.0)}
    for name, sb in quiet.items():
        row(f"streaming pipeline, quiet, {name}:", pipeline_stream, sb,
            sum(b.n for b in sb), repeat=5)
    if args.steps:
        for name, sb in quiet.items():
            whole, parts = step_breakdown(sb)
            print(f"where the time goes, {name} (cpu ns per sample; whole {whole:.0f}):")
            for label in STEPS:
                if label in parts:
                    print(f"    {label:46s} {parts[label]:6.1f}")
    if args.no_fit:
        return
    cases = _fit_cases(30)
    per = []
    for c in cases:
        t0 = time.perf_counter()
        fit_all([c])
        per.append(time.perf_counter() - t0)
    print(f"dipole fit per target: median {1e3 * np.median(per):.1f} ms, "
          f"90th pct {1e3 * np.percentile(per, 90):.1f} ms")
    data = hectare_survey()
    t0 = time.perf_counter()
    k = batch_hectare(data)
    print(f"1 ha batch ({data[0].size} samples, {k} targets): {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
