"""Simulator speed: dipole field evaluation, whole surveys, and the UXG emulator over a pty.

    .venv/bin/pytest bench/bench_sim_physics.py --benchmark-only
    .venv/bin/python bench/bench_sim_physics.py      # prints a small table
"""

from __future__ import annotations

import time

import numpy as np
import serial

from acquisition.geomag import QUANG_TRI
from simulator import physics
from simulator.emulators.gradline import GradLineEmulator
from simulator.scenario import load_scenario, parse_scenario
from simulator.survey import simulate_survey

SOIL = """
name = "soil-bench"
[area]
width = 10.0
length = 20.0
[soil]
density_per_m2 = 20.0
"""


def _field_case(n_obs: int = 4000, n_src: int = 5000):
    rng = np.random.default_rng(0)
    obs = np.column_stack([rng.uniform(0, 10, n_obs), rng.uniform(0, 20, n_obs),
                           np.full(n_obs, 0.3)])
    pos = np.column_stack([rng.uniform(0, 10, n_src), rng.uniform(0, 20, n_src),
                           -rng.uniform(0.02, 0.3, n_src)])
    mom = 1e-4 * rng.standard_normal((n_src, 3)) + physics.induced_moment(2e-4, QUANG_TRI)
    return obs, pos, mom


def test_bench_dipole_field_soil_scale(benchmark):
    obs, pos, mom = _field_case()
    out = benchmark(physics.dipole_field, obs, pos, mom)
    assert out.shape == (4000, 3)


def test_bench_demo_survey(benchmark):
    sc = load_scenario("demo")
    s = benchmark(simulate_survey, sc)
    assert s.n > 1900


def test_bench_soil_survey(benchmark):
    sc = parse_scenario(SOIL)
    s = benchmark.pedantic(simulate_survey, args=(sc,), rounds=3, iterations=1)
    assert np.std(s.soil_signal) > 0


def emulator_lines_per_s() -> float:
    survey = simulate_survey(load_scenario("demo"))
    with GradLineEmulator(survey, speed=0) as emu:
        port = serial.Serial(emu.path, timeout=0.2)
        t0 = time.perf_counter()
        emu.start()
        got = 0
        while True:
            data = port.read(max(1, port.in_waiting))
            got += data.count(b"\n")
            if not data and emu.done:
                break
        dt = time.perf_counter() - t0 - 0.2  # minus the final read timeout
        port.close()
    return got / dt


def test_bench_emulator_pty(benchmark):
    rate = benchmark.pedantic(emulator_lines_per_s, rounds=3, iterations=1)
    assert rate > 0


if __name__ == "__main__":
    obs, pos, mom = _field_case()
    t = time.perf_counter()
    physics.dipole_field(obs, pos, mom)
    dt = time.perf_counter() - t
    print(f"dipole_field 4000 points x 5000 sources: {dt * 1e3:.0f} ms "
          f"({4000 * 5000 / dt / 1e6:.0f} M pairs/s)")
    for name, sc in (("demo", load_scenario("demo")), ("soil 20/m2", parse_scenario(SOIL))):
        t = time.perf_counter()
        s = simulate_survey(sc)
        print(f"simulate_survey {name}: {s.n} samples in {(time.perf_counter() - t) * 1e3:.0f} ms")
    print(f"UXG emulator over a pty at speed 0: {emulator_lines_per_s():.0f} lines/s")
