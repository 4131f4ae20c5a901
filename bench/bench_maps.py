"""Time to map and to report a 1 ha survey (``uxo map``, ``uxo report``), in process.

A 100 m x 100 m gradiometer survey (100 lanes 1 m apart, ~100,000 readings)
with 40 random objects is simulated once (`simulator.survey`), written as a
survey CSV placed in UTM 48N, and processed once into a target list. Then:
``uxo map`` to PNG, ``uxo map`` to GeoTIFF, ``uxo map --product
analytic_signal``, and ``uxo report`` (which also processes the survey, as
the report's numbers come from the DSP). Run as a script for the figures, or
under pytest-benchmark.

    .venv/bin/python bench/bench_maps.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acquisition.cli import main
from simulator.scenario import scenario_from_dict
from simulator.survey import simulate_survey

HECTARE = {
    "name": "hectare", "seed": 11,
    "area": {"x0": 0.0, "y0": 0.0, "width": 100.0, "length": 100.0},
    "survey": {"speed_variation": 0.05, "lateral_wander_m": 0.05, "position_error_m": 0.03},
    "field": {"total_nT": 43600.0, "inclination_deg": 23.2, "declination_deg": -1.4},
    "noise": {"white_nT": 0.5, "drift_nT_per_min": 0.2, "lane_offset_nT": 0.3},
    "random_targets": {"count": 40, "kinds": ["bomblet", "mortar", "projectile",
                                              "aircraft_bomb", "scrap"],
                       "depth_min_m": 0.1, "depth_max_m": 3.0, "min_separation_m": 3.0,
                       "edge_margin_m": 2.0},
}
PLACE = {"crs": "EPSG:32648", "grid_origin_e": "700000", "grid_origin_n": "1850000",
         "site": "bench hectare", "date": "2026-12-07", "team": "bench"}


def make_site(folder: Path) -> tuple[Path, Path, int]:
    """(survey CSV, target CSV, readings) of the simulated hectare."""
    sim = simulate_survey(scenario_from_dict(HECTARE))
    survey = sim.write_survey_csv(folder / "hectare.csv")
    text = survey.read_text(encoding="utf-8").splitlines()
    head = [f"# {k}: {v}" for k, v in PLACE.items()]
    survey.write_text("\n".join([text[0], *head, *text[1:]]) + "\n", encoding="utf-8")
    targets = folder / "targets.csv"
    assert main(["process", str(survey), "-o", str(targets)]) == 0
    return survey, targets, sim.n


def run_map(survey: Path, targets: Path, out: Path, *extra: str) -> None:
    assert main(["map", str(survey), "--targets", str(targets), "-o", str(out), *extra]) == 0


def run_report(survey: Path, targets: Path, out: Path) -> None:
    assert main(["report", str(survey), "--targets", str(targets), "-o", str(out)]) == 0


# ------------------------------------------------------------ pytest-benchmark
def _site(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench_maps")
    return d, *make_site(d)[:2]


def test_bench_map_png_hectare(benchmark, tmp_path_factory):
    d, survey, targets = _site(tmp_path_factory)
    benchmark.pedantic(run_map, args=(survey, targets, d / "m.png"), rounds=2, iterations=1)


def test_bench_report_hectare(benchmark, tmp_path_factory):
    d, survey, targets = _site(tmp_path_factory)
    benchmark.pedantic(run_report, args=(survey, targets, d / "r.html"), rounds=2,
                       iterations=1)


def _timed(label: str, fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    dt = time.perf_counter() - t0
    print(f"{label}: {dt:.2f} s", file=sys.stderr)
    return dt


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        survey, targets, n = make_site(d)
        print(f"simulated + processed 1 ha ({n} readings): {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        rows = []
        # the first call pays the imports (verde, matplotlib...), as a fresh `uxo map` does
        rows.append(("uxo map -> PNG (first call, with imports)",
                     _timed("map png 1", run_map, survey, targets, d / "m.png")))
        rows.append(("uxo map -> PNG", _timed("map png", run_map, survey, targets,
                                             d / "m.png")))
        rows.append(("uxo map -> GeoTIFF", _timed("map tif", run_map, survey, targets,
                                                 d / "m.tif")))
        rows.append(("uxo map --product analytic_signal -> PNG",
                     _timed("map as", run_map, survey, targets, d / "a.png",
                            "--product", "analytic_signal")))
        rows.append(("uxo report -> HTML", _timed("report", run_report, survey, targets,
                                                 d / "r.html")))
        rows.append(("uxo report -> PDF", _timed("report pdf", run_report, survey, targets,
                                                d / "r.pdf")))
        print(f"\n1 ha, {n} readings\n| command | wall time |\n|---|---|")
        for label, dt in rows:
            print(f"| {label} | {dt:.1f} s |")
