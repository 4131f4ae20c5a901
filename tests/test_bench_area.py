"""`bench/bench_area.py`'s records and figure: one record per area and seed,
the figure from the latest record of each, several worlds per area drawn
with their mean."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_area import SIZES, dense_targets, main


def _records(path: Path, rows: list[tuple[float, int, float]]) -> None:
    with path.open("w") as fh:
        for ha, seed, sec in rows:
            fh.write(json.dumps({"ha": ha, "seed": seed, "kind": "total", "samples": 1,
                                 "bodies": 1, "targets": 1, "cpu_s": sec}) + "\n")


def test_plot_of_several_seeds_per_area(tmp_path: Path) -> None:
    jl, png = tmp_path / "area.jsonl", tmp_path / "area.png"
    # seed 1 at every area, three worlds at 0.12 ha, a rerun of 0.5 ha (latest wins)
    _records(jl, [(0.12, 1, 4.0), (0.12, 2, 30.0), (0.12, 3, 12.0), (0.5, 1, 90.0),
                  (0.5, 1, 80.0), (1.0, 1, 150.0)])
    assert main(["--ha", "--jsonl", str(jl), "--plot", str(png)]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_plot_needs_records(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--ha", "--plot", str(tmp_path / "a.png")])
    assert exc.value.code == 2
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("ha", list(SIZES))
def test_density_is_the_same_at_every_area(ha: float) -> None:
    width, length = SIZES[ha]
    targets = dense_targets(width, length, seed=1)
    bodies = sum(1 for t in targets if t["kind"] != "scrap")
    scrap = len(targets) - bodies
    scale = width * length / (24.0 * 50.0)
    assert bodies == round(22 * scale)
    assert scrap == round(30 * scale)
    assert all(0.0 < t["x"] < width and 0.0 < t["y"] < length for t in targets)
