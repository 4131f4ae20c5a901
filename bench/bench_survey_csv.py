"""Survey CSV parsing: memory per million rows and rows/s (pytest-benchmark and script).

Each measurement reads a generated ``t,x,y,value`` file (about 45 bytes a row,
like a gradiometer cart's export) in a fresh Python process, so its peak
resident memory (``ru_maxrss``) is the parse's own: the figure reported is
peak RSS minus the RSS after imports, per million rows. The line-by-line
parser the chunked one replaced (tests/survey_csv_reference.py) is measured
the same way for comparison.

    .venv/bin/pytest bench/bench_survey_csv.py --benchmark-only   # 200 k rows, quick
    .venv/bin/python bench/bench_survey_csv.py 1000000 3000000     # the README's table
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
import numpy as np
from acquisition.survey_csv import read_survey_csv, parse_survey_csv
def rss_kib():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:"))
base = rss_kib()
t0 = time.perf_counter()
if {which!r} == "reference":
    from survey_csv_reference import reference_parse
    with open({path!r}, "rb") as fh:
        d = reference_parse(fh.read().decode("utf-8", errors="replace"))
else:
    d = read_survey_csv({path!r})
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"rows": d.n, "s": dt, "peak_mib": peak / 1024,
                  "parse_mib": (peak - base) / 1024}}))
"""


def write_file(path: Path, n: int, block: int = 500_000) -> None:
    """A cart survey file of ``n`` rows (zig-zag lanes, 10 Hz), written in blocks."""
    rng = np.random.default_rng(0)
    with path.open("w", encoding="ascii") as fh:
        fh.write("# uxo-survey v1\n# kind: gradient\n# sensor_height_m: 0.3\nt,x,y,value\n")
        for s in range(0, n, block):
            i = np.arange(s, min(n, s + block))
            cols = np.column_stack([i * 0.1, 0.5 + (i // 201), (i % 201) * 0.1,
                                    rng.normal(0, 0.3, i.size)])
            np.savetxt(fh, cols, fmt=("%.1f", "%.3f", "%.3f", "%.4f"), delimiter=",")


def measure(path: Path, which: str = "chunked") -> dict[str, float]:
    code = _CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), path=str(path), which=which)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def test_parse_200k_rows(benchmark, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    write_file(path, 200_000)
    res = benchmark.pedantic(measure, args=(path,), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    benchmark.extra_info["mib_per_million_rows"] = res["parse_mib"] / 0.2


def main(sizes: list[int]) -> None:
    print("| parser | rows | file MB | s | rows/s | parse MiB | MiB per M rows |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"s{n}.csv"
            write_file(path, n)
            mb = path.stat().st_size / 1e6
            whiches = ["chunked"] + (["reference"] if n <= 1_000_000 else [])
            for which in whiches:
                r = measure(path, which)
                print(f"| {which} | {r['rows']:,} | {mb:.0f} | {r['s']:.1f} | "
                      f"{r['rows'] / r['s'] / 1e3:.0f} k | {r['parse_mib']:.0f} | "
                      f"{r['parse_mib'] / (n / 1e6):.0f} |", flush=True)
            path.unlink()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000_000, 3_000_000])
