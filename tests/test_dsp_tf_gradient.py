"""A caesium/Overhauser gradiometer survey (kind tf_gradient) from simulator to `uxo process`.

The simulator walks a survey with two total-field sensors (F lower - F upper,
its own physics), writes the survey CSV (``# kind: tf_gradient``), and the
real CLI locates the objects. Processed as a vertical-component gradiometer
(``--kind gradient``, the mistake the kind exists to prevent) the same data
give markedly worse positions and depths.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from acquisition.cli import build_parser
from acquisition.targets_io import read_targets_csv
from simulator.scenario import scenario_from_dict
from simulator.scoring import match
from simulator.survey import simulate_survey

TARGETS = [
    {"name": "mortar", "kind": "mortar", "x": 2.5, "y": 3.5, "depth": 0.5},
    {"name": "projectile", "kind": "projectile", "x": 5.5, "y": 8.5, "depth": 1.2,
     "azimuth_deg": 60.0},
]


def _scenario() -> dict:
    return {"name": "tfg", "seed": 5,
            "area": {"x0": 0.0, "y0": 0.0, "width": 8.0, "length": 12.0},
            "survey": {"lane_spacing_m": 1.0, "speed_m_s": 1.0, "rate_hz": 10.0,
                       "turn_time_s": 2.0, "position_error_m": 0.02, "gait_bob_m": 0.02},
            "sensor": {"kind": "tf_gradient", "height_m": 0.3, "separation_m": 0.65},
            "noise": {"white_nT": 0.3, "drift_nT_per_min": 0.2, "lane_offset_nT": 0.5},
            "targets": TARGETS}


def _process(csv_path, out, *extra: str) -> np.ndarray:
    proc = subprocess.run([sys.executable, "-m", "acquisition.cli", "process", str(csv_path),
                           "-o", str(out), *extra], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = read_targets_csv(out)
    return np.array([[float(r["x"]), float(r["y"]), float(r["depth"])] for r in rows]
                    ).reshape(-1, 3)


@pytest.mark.slow
def test_tf_gradient_survey_located_and_wrong_kind_is_markedly_worse(tmp_path):
    sim = simulate_survey(scenario_from_dict(_scenario()))
    csv_path = sim.write_survey_csv(tmp_path / "survey.csv")
    head = csv_path.read_text().splitlines()[:6]
    assert "# kind: tf_gradient" in head and "# sensor_separation_m: 0.65" in head
    truth = np.array([[t["x"], t["y"], t["depth"]] for t in TARGETS])

    right = _process(csv_path, tmp_path / "right.csv")
    m = match(truth, right, gate_m=1.0)
    assert len(right) == 2 and len(m.pairs) == 2 and not m.missed
    for p in m.pairs:
        t = truth[p.truth_index]
        assert p.horizontal_error_m < 0.15, (t, right[p.report_index])
        assert abs(p.depth_error_m) < 0.1 + 0.1 * t[2], (t, right[p.report_index])

    wrong = _process(csv_path, tmp_path / "wrong.csv", "--kind", "gradient")
    mw = match(truth, wrong, gate_m=1.5)
    err_right = np.mean([p.error_3d_m for p in m.pairs])
    # A target the wrong model misses counts as the gate's error.
    err_wrong = np.mean([p.error_3d_m for p in mw.pairs] + [1.5] * len(mw.missed))
    assert err_wrong > 3.0 * err_right, (err_right, err_wrong, wrong)


def test_process_accepts_kind_tf_gradient():
    args = build_parser().parse_args(["process", "s.csv", "-o", "t.csv", "--kind",
                                      "tf_gradient"])
    assert args.kind == "tf_gradient"
