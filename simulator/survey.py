"""Simulate one survey from a scenario: readings along the walked path plus ground truth.

`simulate_survey(scenario)` walks the lanes (`simulator.walker`), evaluates
every target (elongated bodies as lines of dipoles) and the soil at the true
sensor positions, adds noise, drift and per-lane offsets, and records the
positions with their error. The result carries the ground truth of every
target, including how strongly it showed along the path (``peak_abs_nT``) and
whether that is clearly above the noise (``detectable``: peak >= 8 x noise).

Deterministic for a seed: every random part draws from its own child of the
scenario's seed, so changing e.g. the soil does not move the walker.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator import physics
from simulator.scenario import Scenario, TargetSpec
from simulator.walker import WalkPath, walk

#: A target is "detectable" when its peak is at least this many noise stds.
DETECT_FACTOR = 8.0

TRUTH_COLUMNS = ("id", "name", "kind", "x", "y", "depth", "mx", "my", "mz", "moment",
                 "length_m", "azimuth_deg", "plunge_deg", "peak_abs_nT", "peak_x", "peak_y",
                 "detectable")


@dataclass(frozen=True, slots=True, eq=False)
class TruthTarget:
    """What is really buried: position of the body centre, depth below ground, moment."""

    id: int
    name: str
    kind: str
    x: float
    y: float
    depth: float
    moment: np.ndarray  # (3,) east, north, up, A m^2 (induced + remanent)
    moment_abs: float
    length_m: float
    azimuth_deg: float
    plunge_deg: float
    #: Largest |noise-free signal| of this target alone along the walked path (nT).
    peak_abs_nT: float
    #: True position of the sensor where that peak was read.
    peak_x: float
    peak_y: float
    detectable: bool

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "kind": self.kind,
            "x": f"{self.x:.3f}", "y": f"{self.y:.3f}", "depth": f"{self.depth:.3f}",
            "mx": f"{self.moment[0]:.6g}", "my": f"{self.moment[1]:.6g}",
            "mz": f"{self.moment[2]:.6g}", "moment": f"{self.moment_abs:.6g}",
            "length_m": f"{self.length_m:.3f}", "azimuth_deg": f"{self.azimuth_deg:.1f}",
            "plunge_deg": f"{self.plunge_deg:.1f}", "peak_abs_nT": f"{self.peak_abs_nT:.3f}",
            "peak_x": f"{self.peak_x:.3f}", "peak_y": f"{self.peak_y:.3f}",
            "detectable": int(self.detectable),
        }


@dataclass(eq=False)
class SimulatedSurvey:
    """One simulated survey; every per-sample array has shape (n,) except ``values``."""

    scenario: Scenario
    index: np.ndarray  # device sample counter (jumps over turns)
    t_s: np.ndarray
    x_true: np.ndarray
    y_true: np.ndarray
    z_sensor: np.ndarray
    x_rec: np.ndarray
    y_rec: np.ndarray
    lane: np.ndarray
    heading: np.ndarray
    values: np.ndarray  # (n, 1) nT, what the instrument reports
    clean: np.ndarray  # (n,) noise-free signal: targets + soil
    soil_signal: np.ndarray  # (n,) the soil's part of ``clean``
    truth: list[TruthTarget] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.t_s.shape[0])

    @property
    def rate_hz(self) -> float:
        return self.scenario.survey.rate_hz

    @property
    def kind(self) -> str:
        return self.scenario.sensor.kind

    @property
    def noise_nT(self) -> float:
        return self.scenario.noise.white_nT

    @property
    def channel_name(self) -> str:
        return {"gradient": "grad", "total": "tf", "tf_gradient": "tfgrad"}[self.kind]

    def metadata(self) -> dict[str, Any]:
        return self.scenario.metadata()

    def write_survey_csv(self, path: str | Path) -> Path:
        """Write the survey CSV of docs/formats.md (``# uxo-survey v1``, columns t,x,y,lane,value).

        Positions are the recorded ones (with error), as an instrument would log them.
        """
        path = Path(path)
        with path.open("w", encoding="utf-8", newline="") as f:
            f.write("# uxo-survey v1\n")
            for k, v in self.metadata().items():
                f.write(f"# {k}: {v}\n")
            f.write("t,x,y,lane,value\n")
            table = np.column_stack([self.t_s, self.x_rec, self.y_rec, self.lane,
                                     self.values[:, 0]])
            np.savetxt(f, table, fmt=["%.3f", "%.3f", "%.3f", "%d", "%.4f"], delimiter=",")
        return path

    def write_truth_csv(self, path: str | Path) -> Path:
        """Write the ground truth, one row per target (columns `TRUTH_COLUMNS`)."""
        path = Path(path)
        with path.open("w", encoding="utf-8", newline="") as f:
            f.write("# uxo-truth v1\n")
            f.write(f"# scenario: {self.scenario.name}\n# seed: {self.scenario.seed}\n")
            f.write(f"# kind: {self.kind}\n# noise_nT: {self.noise_nT}\n")
            f.write(f"# detect_factor: {DETECT_FACTOR}\n")
            w = csv.DictWriter(f, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
            w.writeheader()
            for t in self.truth:
                w.writerow(t.row())
        return path


def read_truth_csv(path: str | Path) -> list[TruthTarget]:
    """Read a file written by `SimulatedSurvey.write_truth_csv` (for benchmarks)."""
    with Path(path).open(encoding="utf-8") as f:
        rows = [line for line in f if not line.startswith("#")]
    out = []
    for r in csv.DictReader(rows):
        m = np.array([float(r["mx"]), float(r["my"]), float(r["mz"])])
        out.append(TruthTarget(
            id=int(r["id"]), name=r["name"], kind=r["kind"], x=float(r["x"]), y=float(r["y"]),
            depth=float(r["depth"]), moment=m, moment_abs=float(r["moment"]),
            length_m=float(r["length_m"]), azimuth_deg=float(r["azimuth_deg"]),
            plunge_deg=float(r["plunge_deg"]), peak_abs_nT=float(r["peak_abs_nT"]),
            peak_x=float(r["peak_x"]), peak_y=float(r["peak_y"]),
            detectable=bool(int(r["detectable"])),
        ))
    return out


def target_moment(t: TargetSpec, scenario: Scenario) -> np.ndarray:
    """Total moment (3,) of a target: induced along the field (plus anisotropy) + remanent."""
    axis = physics.axis_vector(t.azimuth_deg, t.plunge_deg) if t.length_m > 0 else None
    m = physics.induced_moment(t.moment_Am2, scenario.field, axis=axis, axial_gain=t.axial_gain)
    if t.remanent_Am2 is not None:
        m = m + np.asarray(t.remanent_Am2, float)
    return m


#: How the moment is spread along an elongated body (`physics.shell_weights`).
BODY_PROFILE = "shell"


def target_sources(t: TargetSpec, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Dipole positions (K, 3) and moments (K, 3) standing for one target."""
    return physics.line_of_dipoles(np.array([t.x, t.y, -t.depth]), target_moment(t, scenario),
                                   t.length_m, t.azimuth_deg, t.plunge_deg,
                                   profile=BODY_PROFILE)


def _signal(sc: Scenario, path: WalkPath, pos: np.ndarray, mom: np.ndarray) -> np.ndarray:
    return physics.reading(sc.sensor.kind, path.x_true, path.y_true, path.z_sensor, pos, mom,
                           field=sc.field, separation_m=sc.sensor.separation_m)


def simulate_survey(scenario: Scenario) -> SimulatedSurvey:
    """Simulate the scenario's survey (deterministic for ``scenario.seed``)."""
    sc = scenario
    ss = np.random.SeedSequence([sc.seed, 0x55584F])
    r_walk, r_soil, r_noise, r_lane = (np.random.default_rng(s) for s in ss.spawn(4))
    path = walk(sc.area, sc.survey, sc.sensor.height_m, r_walk)
    n = path.n

    truth: list[TruthTarget] = []
    targets_sig = np.zeros(n)
    for i, t in enumerate(sc.all_targets):
        pos, mom = target_sources(t, sc)
        sig = _signal(sc, path, pos, mom)
        targets_sig += sig
        k = int(np.argmax(np.abs(sig))) if n else 0
        peak = float(abs(sig[k])) if n else 0.0
        m = mom.sum(axis=0)
        truth.append(TruthTarget(
            id=i, name=t.name, kind=t.kind, x=t.x, y=t.y, depth=t.depth, moment=m,
            moment_abs=float(np.linalg.norm(m)), length_m=t.length_m,
            azimuth_deg=t.azimuth_deg, plunge_deg=t.plunge_deg, peak_abs_nT=peak,
            peak_x=float(path.x_true[k]) if n else math.nan,
            peak_y=float(path.y_true[k]) if n else math.nan,
            detectable=peak >= DETECT_FACTOR * sc.noise.white_nT and peak > 0,
        ))

    soil_sig = np.zeros(n)
    if sc.soil is not None:
        a = sc.area
        spos, smom = physics.soil_dipoles(a.x0, a.y0, a.width, a.length, sc.soil, sc.field,
                                          r_soil)
        soil_sig = _signal(sc, path, spos, smom)

    nz = sc.noise
    noise = nz.white_nT * r_noise.standard_normal(n) if nz.white_nT else np.zeros(n)
    minutes = path.t_s / 60.0
    drift = nz.drift_nT_per_min * minutes
    if nz.drift_walk_nT and n:
        dmin = np.diff(minutes, prepend=minutes[0])
        drift = drift + np.cumsum(nz.drift_walk_nT * np.sqrt(dmin)
                                  * r_noise.standard_normal(n))
    n_lanes = int(path.lane.max()) + 1 if n else 0
    offsets = nz.lane_offset_nT * r_lane.standard_normal(n_lanes) if n_lanes else np.zeros(0)
    lane_off = offsets[path.lane] if n else np.zeros(0)
    heading = nz.heading_offset_nT * path.heading
    clean = targets_sig + soil_sig
    values = (clean + noise + drift + lane_off + heading).reshape(n, 1)

    return SimulatedSurvey(
        scenario=sc, index=path.index, t_s=path.t_s, x_true=path.x_true, y_true=path.y_true,
        z_sensor=path.z_sensor, x_rec=path.x_rec, y_rec=path.y_rec, lane=path.lane,
        heading=path.heading, values=values, clean=clean, soil_signal=soil_sig, truth=truth,
    )
