"""The resolvability oracle (`bench/resolvable.py`) on worlds whose answer is known.

A lone bomb well over the noise is resolvable, a body under the noise is
not, nor is a small body 0.4 m beside a bomb a hundred times stronger (its
field is the bomb's own shape, changed by less than the walk's errors).
A place with no body beside a long bomb must not pay: that is what the
criterion's noise model (the walk's correlated errors, the neighbour held
as a line) is for. On laterite the soil's covariance (`bench/soilcov.py`)
must be the simulated soil's, and whitening with it must refuse the places
with no body that soil taken as white noise pays for, and the bodies at the
soil's clutter level, while keeping the bodies well over it. The
benchmark's figures themselves are measured, not tested (bench/README.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from accuracy_lanes import LATERITE, random_world, scenario
from resolvable import (
    judge_at,
    judge_body,
    main,
    markdown,
    phantom_sites,
    tally,
    text_table,
)
from soilcov import soil_covariance

from acquisition.dsp.fitconfig import FitConfig
from simulator.scenario import scenario_from_dict
from simulator.survey import simulate_survey

BAR = FitConfig().bic_gain


def _body(name: str, kind: str, x: float, y: float, depth: float, moment: float,
          length: float = 0.0) -> dict:
    return {"name": name, "kind": kind, "x": x, "y": y, "depth": depth, "moment_Am2": moment,
            "length_m": length}


def _survey(*bodies: dict, white: float = 0.5, seed: int = 7):
    """A 12 m x 16 m gradient survey with the benchmark's walk and noise."""
    d = scenario("resolve", seed, width=12.0, length=16.0, white=white, count=0,
                 targets=list(bodies))
    return simulate_survey(scenario_from_dict(d))


def test_a_lone_bomb_3_m_deep_is_resolvable() -> None:
    sim = _survey(_body("bomb", "aircraft_bomb", 6.0, 8.0, 3.0, 1.0))
    v = judge_body(sim, 0, 0.5)
    assert v.resolvable
    assert v.gain > 10 * BAR
    assert v.offset_m < 0.3
    assert (v.free, v.held) == (0, 0)


def test_a_body_under_the_noise_is_not() -> None:
    sim = _survey(_body("mortar", "mortar", 6.0, 8.0, 2.0, 0.05))
    assert sim.truth[0].peak_abs_nT < 0.5  # under the 0.5 nT white noise
    v = judge_body(sim, 0, 0.5)
    assert not v.resolvable
    assert v.gain < 0


@pytest.mark.parametrize("length", [0.0, 1.8])
def test_a_small_body_beside_a_big_bomb_is_not(length: float) -> None:
    sim = _survey(_body("bomb", "aircraft_bomb", 6.0, 8.0, 1.0, 50.0, length),
                  _body("proj", "projectile", 6.4, 8.0, 1.0, 0.5))
    small = judge_body(sim, 1, 0.5)
    assert small.free == 1  # the bomb may move to take it up
    assert not small.resolvable
    assert small.gain < 0
    assert judge_body(sim, 0, 0.5).resolvable


def test_a_projectile_1_5_m_from_a_shallow_bomb_is_resolvable_and_nothing_there_is_not() -> None:
    bomb = _body("bomb", "aircraft_bomb", 6.0, 8.0, 0.6, 30.0, 1.8)
    sim = _survey(bomb, _body("proj", "projectile", 7.5, 8.0, 0.6, 1.0, 0.6))
    v = judge_body(sim, 1, 0.5)
    assert v.resolvable and v.gain > BAR and v.offset_m < 0.3
    lone = _survey(bomb)
    nominal = 0.5 * np.asarray(lone.scenario.field.unit_vector(), float)
    for x, y in ((7.5, 8.0), (6.4, 8.0), (6.0, 9.3)):
        ph = judge_at(lone, (x, y, 0.6), nominal, 0.5)
        assert not ph.resolvable, (x, y, ph.gain)
        assert ph.gain < BAR


def test_two_deep_bombs_3_5_m_apart_are_each_resolvable() -> None:
    sim = _survey(_body("a", "aircraft_bomb", 6.0, 6.25, 4.5, 15.0),
                  _body("b", "aircraft_bomb", 6.0, 9.75, 4.5, 15.0))
    for i in (0, 1):
        v = judge_body(sim, i, 0.5)
        assert v.free == 1
        assert v.resolvable and v.offset_m < 0.3


def test_verdicts_are_deterministic_per_seed() -> None:
    def run() -> list:
        sim = simulate_survey(scenario_from_dict(random_world("clean", 3)))
        # shallow ones: small windows, a fast test
        some = [i for i, t in enumerate(sim.truth) if t.detectable and t.depth < 1.0][:3]
        sites = phantom_sites(sim, np.random.default_rng(5), 2)
        return [judge_body(sim, i, 0.5) for i in some] + sites

    a, b = run(), run()
    assert len(a) == 5
    assert a == b


def _rec(scenario: str, big: bool, found: bool, resolvable: bool, phantom: bool = False,
         seed: int = 1) -> dict:
    return {"scenario": scenario, "seed": seed, "big": big, "found": found,
            "resolvable": resolvable, "phantom": phantom, "sensor": "gradient",
            "kind": "aircraft_bomb", "x": 1.0, "y": 2.0, "depth": 4.5, "moment": 15.0,
            "peak_nT": 9.0, "gain": 50.0, "offset_m": 0.1, "free": 1, "held": 0}


def test_the_tally_splits_misses_by_resolvability() -> None:
    recs = [_rec("carpet", True, True, True), _rec("carpet", True, False, True),
            _rec("carpet", True, False, False), _rec("carpet", False, False, False, seed=2),
            _rec("carpet", False, True, False, seed=2),
            _rec("carpet", False, False, True, phantom=True),
            _rec("carpet", False, False, False, phantom=True)]
    t = tally(recs)["carpet"]
    assert (t.big.n, t.big.resolvable, t.big.found) == (3, 2, 1)
    assert (t.big.missed_resolvable, t.big.missed_unresolvable) == (1, 1)
    assert (t.every.n, t.every.found, t.every.found_unresolvable) == (5, 2, 1)
    assert (t.phantoms, t.phantoms_paid, sorted(t.seeds)) == (2, 1, [1, 2])
    md = markdown(recs).splitlines()
    assert md[2] == ("| carpet | 2 | 3 | 0.667 | 0.333 | 1 | 1 | 0 | 5 | 0.400 | 0.400 | 1 "
                     "| 2 | 1 / 2 |")
    assert "RESOLVABLE" in text_table(recs) and "unresolvable" in text_table(recs)


# ------------------------------------------------------------------ magnetic soil
def _soil_survey(*bodies: dict, seed: int = 7):
    """A 14 m x 18 m gradient survey on the benchmark's laterite (20 grains per m^2)."""
    d = scenario("soil", seed, width=14.0, length=18.0, white=0.5, count=0,
                 soil=dict(LATERITE), targets=list(bodies))
    return simulate_survey(scenario_from_dict(d))


def _lag_cov(sim, cov, k: int) -> tuple[float, float]:
    """Measured and modelled covariance of the soil's field k samples apart on a lane."""
    s = sim.soil_signal - sim.soil_signal.mean()
    same = sim.lane[k:] == sim.lane[:-k]
    measured = float(np.mean(s[k:][same] * s[:-k][same]))
    model = float(np.mean(cov.at(sim.x_rec[k:][same] - sim.x_rec[:-k][same],
                                 sim.y_rec[k:][same] - sim.y_rec[:-k][same])))
    return measured, model


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gradient", "total"])
def test_the_soil_covariance_is_the_simulated_soils(kind: str) -> None:
    d = scenario("soil", 3, width=16.0, length=20.0, kind=kind, white=0.5, count=0,
                 soil=dict(LATERITE))
    sim = simulate_survey(scenario_from_dict(d))
    cov = soil_covariance(sim.scenario)
    assert cov is not None
    assert cov.variance == pytest.approx(float(np.var(sim.soil_signal)), rel=0.15)
    # Along the lane: 0.1 m (strongly correlated), 0.3 m, and 0.5 m (the
    # kernel's negative lobe: anticorrelated).
    for k in (1, 3, 5):
        measured, model = _lag_cov(sim, cov, k)
        assert model == pytest.approx(measured, abs=0.15 * cov.variance), k
    assert _lag_cov(sim, cov, 5)[1] < 0
    # Across the lanes (1 m): still correlated, under a third of the variance.
    c = len(cov.lags) // 2
    assert 0 < cov.at(np.array([1.0]), np.array([0.0]))[0] < cov.variance / 3
    assert abs(cov.grid[0, c]) < 0.01 * cov.variance  # EXTENT_M away: nothing left
    # Twice the grains, twice the covariance (Campbell: linear in density).
    twice = dict(d, soil=dict(LATERITE, density_per_m2=2 * LATERITE["density_per_m2"]))
    assert soil_covariance(scenario_from_dict(twice)).variance == pytest.approx(
        2 * cov.variance, rel=1e-9)


def test_no_soil_no_soil_covariance() -> None:
    assert soil_covariance(_survey().scenario) is None


@pytest.mark.slow
def test_phantoms_on_laterite_pay_as_white_noise_and_not_with_the_soil_modelled() -> None:
    sim = _soil_survey(_body("bomb", "aircraft_bomb", 7.0, 5.0, 2.0, 5.0), seed=8)
    cov = soil_covariance(sim.scenario)
    background = float(np.hypot(0.5, np.sqrt(cov.variance)))  # the pipeline's noise here
    nominal = 0.5 * np.asarray(sim.scenario.field.unit_vector(), float)
    places = [(x, y, d) for x in (3.0, 7.0, 11.0) for y in (3.0, 9.0, 15.0) for d in (0.4, 1.0)
              if np.hypot(x - 7.0, y - 5.0) > 1.5]
    as_white = [judge_at(sim, p, nominal, background) for p in places]
    modelled = [judge_at(sim, p, nominal, 0.5, soil=cov) for p in places]
    assert len(places) == 18
    # The grain clusters buy a source at several places when the soil is
    # taken as white noise; whitened by the soil's covariance, none pays.
    assert sum(v.resolvable for v in as_white) >= 3
    assert sum(v.resolvable for v in modelled) == 0
    assert np.median([v.gain for v in modelled]) < np.median([v.gain for v in as_white])


@pytest.mark.slow
def test_on_laterite_a_bomb_is_resolvable_and_a_mortar_at_the_clutter_is_not() -> None:
    bomb = _body("bomb", "aircraft_bomb", 7.0, 5.0, 2.0, 5.0)
    sim = _soil_survey(bomb, _body("proj", "projectile", 7.0, 13.0, 0.6, 0.15))
    cov = soil_covariance(sim.scenario)
    clutter = float(np.sqrt(cov.variance))
    assert 1.0 < clutter < 2.5
    b, p = (judge_body(sim, i, 0.5, soil=cov) for i in range(2))
    assert b.resolvable and b.gain > 100 * BAR and b.offset_m < 0.3
    assert sim.truth[1].peak_abs_nT > 6 * clutter
    assert p.resolvable and p.offset_m < 0.3
    # The same place, a mortar: detectable by the simulator's rule (8 x the
    # white noise), but under 4 x the soil's clutter. Taken as white noise
    # the soil lets it pay; modelled, it does not.
    sim = _soil_survey(bomb, _body("mortar", "mortar", 7.0, 13.0, 0.5, 0.05))
    assert sim.truth[1].detectable and sim.truth[1].peak_abs_nT < 4 * clutter
    assert not judge_body(sim, 1, 0.5, soil=cov).resolvable
    assert judge_body(sim, 1, float(np.hypot(0.5, clutter))).resolvable


# ------------------------------------------------------------------ tables and records
def test_one_row_builder_feeds_both_tables() -> None:
    recs = [_rec("clean", True, True, True), _rec("lateritic", True, False, True),
            _rec("lateritic", False, False, False, seed=4),
            _rec("lateritic", False, False, False, phantom=True)]
    md = [[c.strip() for c in line.strip("|").split("|")]
          for line in markdown(recs).splitlines()[2:]]
    text = [line.replace("|", " ").split() for line in text_table(recs).splitlines()[1:3]]
    # The text table's "0 / 1" is three words.
    assert [[*t[:-3], " ".join(t[-3:])] for t in text] == md
    assert md[1] == ["lateritic", "2", "1", "1.000", "0.000", "1", "0", "0", "2", "0.500",
                     "0.000", "1", "1", "0 / 1"]


def test_summarise_reprints_the_records(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recs = [_rec("carpet", True, True, True), _rec("carpet", True, False, False, seed=2)]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + "\n", encoding="utf-8")
    assert main(["--summarise", str(path), "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == markdown(recs)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
    st.text(max_size=40),
    st.dictionaries(st.sampled_from(["scenario", "seed", "big", "found", "x", "gain"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                              st.text(max_size=5)), max_size=6).map(json.dumps),
    st.just(json.dumps(_rec("clean", True, True, True)))), max_size=5))
def test_summarise_refuses_a_bad_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                lines: list[str]) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(ln.replace("\n", " ").replace("\r", " ") for ln in lines),
                    encoding="utf-8")
    rc = main(["--summarise", str(path)])
    out, err = capsys.readouterr()
    good = json.dumps(_rec("clean", True, True, True))
    if all(not ln.strip() or ln == good for ln in lines):
        assert rc == 0 and err == ""
        assert ("clean" in out) == (good in lines)
    else:
        assert rc == 2 and out == ""
        assert err.count("\n") == 1 and f"{path}:" in err
        bad = int(err.split(f"{path}:")[1].split(":")[0])
        assert lines[bad - 1] != good and lines[bad - 1].strip()
