"""Survey-file conversion speed per reader: rows/s through `read_survey` and `uxo convert`.

Each format gets a generated file of ``ROWS`` readings in its own layout
(written like the samples in tests/data), read through the public facade
(sniffing, units, coordinates included) and, for the end-to-end figure,
converted to the survey CSV as ``uxo convert`` does.

    .venv/bin/pytest bench/bench_readers.py --benchmark-only
    .venv/bin/python bench/bench_readers.py            # prints a table of rows/s
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acquisition.convert_cli import write_survey_csv
from acquisition.survey import read_survey

ROWS = 20_000
CRS = {"crs": "EPSG:32648"}


def _clock(k: int, step: float) -> tuple[int, int, float]:
    t = 8 * 3600 + k * step
    return int(t // 3600), int(t % 3600 // 60), t % 60


def stn(n: int) -> str:
    """MagMap STN, newest first: lines of 200 readings with a mark every 50."""
    out: list[str] = []
    k = 0
    per = 200
    for line in range(n // per):
        recs = []
        h, m, s = _clock(k, 0.1)
        recs.append(f"3 {line * 0.5:13.3f} {0.0:13.3f} {h:02d}:{m:02d}:{s:05.2f} 03/14/26"
                    f" {50:10d} {line:11d} {0:11d}  36")
        for i in range(per):
            h, m, s = _clock(k, 0.1)
            recs.append(f"0 {43600 + i * 0.01:11.3f}{43590 + i * 0.02:11.3f} "
                        f"{h:02d}:{m:02d}:{s:05.2f} 03/14/26   0")
            k += 1
            if (i + 1) % 50 == 0:
                code = 5 if i + 1 == per else 4
                recs.append(f"3 {line * 0.5:13.3f} {(i + 1) / 10:13.3f} "
                            f"{h:02d}:{m:02d}:{s:05.2f} 03/14/26 {50:10d} {line:11d}"
                            f" {(i + 1) // 50:11d} {code:4d}")
        out.extend(recs)
    return "99 0 0\n" + "\n".join(reversed(out)) + "\n"


def magmap(n: int) -> str:
    rows = ["X,Y,TOP_RDG,BOTTOM_RDG,VRT_GRAD"]
    for i in range(n):
        top, bot = 45459.0 + (i % 97) * 0.013, 45460.0 + (i % 89) * 0.017
        rows.append(f"{i // 400},{(i % 400) * 0.125:.3f},{top:.3f},{bot:.3f},"
                    f"{(bot - top) / 0.65:.3f}")
    return "\n".join(rows) + "\n"


def sensys(n: int) -> str:
    rows = ["Date;Time;Latitude;Longitude;Altitude [m];Fix;Gradient [nT]"]
    for i in range(n):
        h, m, s = _clock(i, 0.1)
        lat = 16.82 + (i % 400) * 0.125 / 110700.0
        lon = 107.1 + (i // 400) / 106600.0
        v = f"{(i % 50) * 0.05 - 1:.2f}".replace(".", ",")  # decimal comma
        rows.append(f"14.03.2026;{h:02d}:{m:02d}:{s:06.3f};{lat:.8f};{lon:.8f};12,3;4;{v}")
    return "\n".join(rows) + "\n"


def gsm19(n: int) -> str:
    rows = ["/Gem Systems GSM-19GWV 7122568 v7.0 4 V 2011 M ewv10fl.v7vbs",
            "/ID 1 file 14survey.wg  14 III 26", "/00065 sensor distance cm",
            "/X Y elevation nT nT/m sq cor-nT sat time picket-x picket-y"]
    for i in range(n):
        if i % 400 == 0:
            rows.append(f"line  {i // 400:06d}")
        h, m, s = _clock(i // 4, 1.0)
        lat = 16.82 + (i % 400) * 0.25 / 110700.0
        lon = 107.1 + (i // 400) / 106600.0
        rows.append(f"{lat:011.7f}  {lon:011.7f}  000012  {43600 + (i % 70) * 0.01:.2f}  "
                    f"{(i % 40) * 0.1 - 2:08.2f} 99  000000.00 07 "
                    f"{h:02d}{m:02d}{int(s):02d}.{i % 4} * *")
    return "\n".join(rows) + "\n"


def geosoft(n: int) -> str:
    rows = ["/ XYZ EXPORT", "/      X             Y           MAG"]
    for i in range(n):
        if i % 400 == 0:
            rows.append(f"LINE {10 * (i // 400 + 1)}")
        rows.append(f"   {713000 + i // 400:.2f}   {1861000 + (i % 400) * 0.125:.3f}   "
                    f"{43600 + (i % 60) * 0.05:.2f}")
    return "\n".join(rows) + "\n"


def table(n: int) -> str:
    rows = ["Easting\tNorthing\tGrad [nT/m]"]
    for i in range(n):
        rows.append(f"{713000 + i // 400:.2f}\t{1861000 + (i % 400) * 0.125:.3f}\t"
                    f"{(i % 80) * 0.05 - 2:.3f}")
    return "\n".join(rows) + "\n"


def uxo_csv(n: int) -> str:
    rows = ["# uxo-survey v1", "t,x,y,lane,value"]
    for i in range(n):
        rows.append(f"{i * 0.1:.1f},{i // 400:.3f},{(i % 400) * 0.125:.3f},{i // 400},"
                    f"{(i % 80) * 0.05 - 2:.3f}")
    return "\n".join(rows) + "\n"


FORMATS: dict[str, tuple[Callable[[int], str], str, dict[str, object]]] = {
    "uxo-csv": (uxo_csv, "s.csv", {}),
    "stn": (stn, "s.stn", {}),
    "magmap-xyz": (magmap, "s.dat", {}),
    "sensys": (sensys, "s.csv", {}),
    "gsm19": (gsm19, "s.wg", {}),
    "geosoft-xyz": (geosoft, "s.xyz", {"metadata": CRS}),
    "table": (table, "s.txt", {"metadata": CRS, "columns": {"x": "Easting", "y": "Northing",
                                                             "value": "Grad"}}),
}


def make(directory: Path, name: str, n: int = ROWS) -> Path:
    gen, fname, _ = FORMATS[name]
    p = directory / f"{name}-{fname}"
    p.write_text(gen(n), encoding="utf-8")
    return p


def read(path: Path, name: str):  # type: ignore[no-untyped-def]
    s = read_survey(path, **FORMATS[name][2])  # type: ignore[arg-type]
    assert s.format == name and not s.bad_rows, (name, s.bad_rows[:3])
    return s


def convert(path: Path, name: str) -> int:
    s = read(path, name)
    buf = io.StringIO()
    write_survey_csv(buf, s)
    return s.n


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("readers")
    return {name: make(d, name) for name in FORMATS}


@pytest.mark.parametrize("name", list(FORMATS))
def test_read_survey(benchmark, files, name):
    s = benchmark.pedantic(read, args=(files[name], name), rounds=5, iterations=1)
    benchmark.extra_info["rows"] = s.n
    benchmark.extra_info["rows_per_s"] = s.n / benchmark.stats.stats.median


@pytest.mark.parametrize("name", list(FORMATS))
def test_convert(benchmark, files, name):
    n = benchmark.pedantic(convert, args=(files[name], name), rounds=3, iterations=1)
    benchmark.extra_info["rows_per_s"] = n / benchmark.stats.stats.median


def main() -> None:
    """Best of 5 per format; "cpu" is the thread's CPU time, fairer on a shared machine."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        print(f"{'format':<12} {'rows':>7} {'MB':>5} {'read rows/s (wall / cpu)':>26} "
              f"{'convert rows/s (wall / cpu)':>29}")
        for name in FORMATS:
            p = make(d, name)
            mb = p.stat().st_size / 1e6
            cells = []
            for fn in (read, convert):
                wall, cpu = [], []
                for _ in range(5):
                    t0, c0 = time.perf_counter(), time.thread_time()
                    fn(p, name)
                    wall.append(time.perf_counter() - t0)
                    cpu.append(time.thread_time() - c0)
                cells.append(f"{ROWS / min(wall):>12,.0f} / {ROWS / min(cpu):>9,.0f}")
            print(f"{name:<12} {ROWS:>7} {mb:>5.2f} {cells[0]:>26} {cells[1]:>29}")


if __name__ == "__main__":
    main()
