"""GSM-19 dump decoding speed (rows/s): a base-station file and a walking-gradiometer file with GPS.

Both are 100,000 rows in the layouts of `acquisition.drivers.gsm19_dump`, made
here (no file is read). Base-station rows take the live stream's batch parser;
walking-gradiometer rows are read line by line.

Run: ``.venv/bin/python bench/bench_gsm19_dump.py`` or through pytest-benchmark.
"""

from __future__ import annotations

import time

from acquisition.drivers.gsm19_dump import decode_gsm19_dump

N = 100_000


def _hms(i: int) -> str:
    t = (40_000 + i) % 86_400
    return f"{t // 3600:02d}{t % 3600 // 60:02d}{t % 60:02d}.0"


def base_text(n: int = N) -> str:
    head = "Gem Systems GSM-19W 3101329 v6.0 24 X 2003\nID 1 file 23c-ost .b   09 VII10\n\n"
    return head + "".join(f"{_hms(i)}  4848{i % 10}.12 99\n" for i in range(n))


def wg_text(n: int = N) -> str:
    head = ("/Gem Systems GSM-19GWV 7122568 v7.0 4 V 2011 M ewv10fl.v7vbs\n"
            "/ID 1 file 24survey.wg  02VIII12\n/00106 sensor distance cm\n"
            "/X Y elevation nT nT/m sq cor-nT sat time picket-x picket-y\n")
    return head + "".join(
        f"047.{9263435 + i:07d}  015.8653717  001089  4838{i % 10}.35  0012.61 99"
        f"  000000.00 07 {_hms(i)} * *\n" for i in range(n))


def test_decode_base_station(benchmark):
    text = base_text()
    d, _ = benchmark(decode_gsm19_dump, text)
    assert d.n == N


def test_decode_walking_gradiometer(benchmark):
    text = wg_text()
    d, _ = benchmark(decode_gsm19_dump, text)
    assert d.n == N


def main() -> None:
    for name, text in (("base station (v6)", base_text()), ("walking grad. + GPS", wg_text())):
        best = min(_timed(text) for _ in range(5))
        print(f"{name:22s} {N / best / 1e3:6.0f} k rows/s")


def _timed(text: str) -> float:
    t0 = time.perf_counter()
    decode_gsm19_dump(text)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
