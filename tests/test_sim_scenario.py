"""Scenario files: the bundled demo, strict validation with named keys, fuzzing."""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    bundled_scenarios,
    load_scenario,
    parse_scenario,
    resolve_scenario_path,
    scenario_from_dict,
)

MINIMAL = """
[area]
width = 4.0
length = 6.0
"""


def test_demo_scenario_matches_the_brief():
    sc = load_scenario("demo")
    assert "demo" in bundled_scenarios()
    assert (sc.area.x0, sc.area.y0, sc.area.width, sc.area.length) == (0, 0, 10, 20)
    assert sc.survey.lane_spacing_m == 1.0 and sc.survey.speed_m_s == 1.0
    assert sc.survey.rate_hz == 10.0 and sc.n_lanes == 10
    assert sc.sensor.kind == "gradient"
    assert (sc.sensor.height_m, sc.sensor.separation_m) == (0.3, 0.65)
    assert (sc.field.total_nT, sc.field.inclination_deg, sc.field.declination_deg) == \
        (43600.0, 23.2, -1.4)
    targets = sc.all_targets
    assert 4 <= len(targets) <= 8
    kinds = {t.kind for t in targets}
    assert {"bomblet", "aircraft_bomb"} <= kinds
    assert min(t.depth for t in targets) == pytest.approx(0.1)
    assert max(t.depth for t in targets) == pytest.approx(4.0)
    for t in targets:
        assert sc.area.contains(t.x, t.y, margin=1.5), t.name
    for a, b in itertools.combinations(targets, 2):
        assert math.hypot(a.x - b.x, a.y - b.y) >= 2.5, (a.name, b.name)


def test_minimal_scenario_gets_defaults():
    sc = parse_scenario(MINIMAL, source="mini.toml")
    assert sc.name == "mini"
    assert sc.survey.lane_spacing_m == 1.0 and sc.noise.white_nT == 0.5
    assert sc.field.total_nT == 43600.0 and sc.targets == ()
    assert sc.n_lanes == 4


@pytest.mark.parametrize(("kind", "has_separation"), [
    ("gradient", True), ("total", False), ("tf_gradient", True)])
def test_sensor_kinds_and_their_metadata(kind, has_separation):
    sc = parse_scenario(MINIMAL + f"[sensor]\nkind = '{kind}'\nseparation_m = 0.5\n",
                        source="k.toml")
    md = sc.metadata()
    assert sc.sensor.kind == md["kind"] == kind
    assert md.get("sensor_separation_m") == (0.5 if has_separation else None)


@pytest.mark.parametrize(("text", "needle"), [
    ("", "area"),
    ("[area]\nwidth = 4.0\n", "area.length"),
    (MINIMAL + "[survey]\nlane_spacing = 1.0\n", "survey.lane_spacing"),
    (MINIMAL + "[survey]\nspeed_m_s = 'fast'\n", "survey.speed_m_s"),
    (MINIMAL + "[survey]\nrate_hz = true\n", "survey.rate_hz"),
    (MINIMAL + "[survey]\nrate_hz = -1.0\n", "survey.rate_hz"),
    (MINIMAL + "[sensor]\nkind = 'vector'\n", "sensor.kind"),
    (MINIMAL + "[noise]\nwhite_nT = nan\n", "noise.white_nT"),
    (MINIMAL + "colour = 'red'\n", "colour"),
    (MINIMAL + "[[targets]]\nkind = 'bomblet'\nx = 1\ny = 1\ndepth = 0.1\n"
     "[[targets]]\nkind = 'mortar'\nx = 1\ny = 2\ndepth = -0.5\n", "targets[1].depth"),
    (MINIMAL + "[[targets]]\nkind = 'tank'\nx = 1\ny = 1\ndepth = 1\n", "targets[0].kind"),
    (MINIMAL + "[[targets]]\nkind = 'mortar'\nx = 1\ny = 1\n", "targets[0].depth"),
    (MINIMAL + "[[targets]]\nkind = 'mortar'\nx = 1\ny = 1\ndepth = 1\n"
     "remanent_Am2 = [1, 2]\n", "targets[0].remanent_Am2"),
    (MINIMAL + "[[targets]]\nkind = 'mortar'\nx = 1\ny = 1\ndepth = 1\nmass = 3\n",
     "targets[0].mass"),
    (MINIMAL + "[field]\nlat = 16.7\n", "field.lat"),
    (MINIMAL + "[field]\ninclination_deg = 123\n", "field.inclination_deg"),
    (MINIMAL + "[random_targets]\ncount = 3\nkinds = ['x']\n", "random_targets.kinds"),
    (MINIMAL + "[random_targets]\ncount = 50\nmin_separation_m = 3\nedge_margin_m = 0.5\n",
     "random_targets"),
    (MINIMAL + "[soil]\ndepth_min_m = 0.5\ndepth_max_m = 0.1\n", "depth"),
    (MINIMAL + "[soil]\ndensity_per_m2 = 9000\n", "soil"),
    ("[area]\nwidth = 9000\nlength = 9000\n", "samples"),
    (MINIMAL + "[survey]\ngait_bob_m = 0.4\n", "gait_bob_m"),
    ("[area\nwidth = 1", "TOML"),
    ("area = 3\n", "area"),
])
def test_bad_scenarios_name_the_key(text, needle):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source="bad.toml")
    msg = str(info.value)
    assert needle in msg
    assert msg.startswith("bad.toml")


def test_scenario_error_is_a_value_error():
    assert issubclass(ScenarioError, ValueError)


def test_unknown_scenario_name_lists_bundled():
    with pytest.raises(ScenarioError, match="demo"):
        resolve_scenario_path("no-such-scenario")


def test_load_from_path_and_seed_override(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text("name = 'mine'\nseed = 3\n" + MINIMAL)
    sc = load_scenario(p)
    assert sc.name == "mine" and sc.seed == 3
    assert load_scenario(p, seed=9).seed == 9


def test_random_targets_are_seeded_separated_and_inside():
    text = ("seed = 4\n[area]\nwidth = 30\nlength = 40\n"
            "[random_targets]\ncount = 12\nmin_separation_m = 3\nedge_margin_m = 2\n"
            "depth_min_m = 0.2\ndepth_max_m = 2.5\nremanent_fraction = 0.5\n"
            "[[targets]]\nkind = 'projectile'\nx = 10\ny = 10\ndepth = 1\n")
    a = parse_scenario(text)
    b = parse_scenario(text)
    assert a.generated == b.generated and len(a.generated) == 12
    assert len(a.all_targets) == 13
    for t in a.generated:
        assert a.area.contains(t.x, t.y, margin=2)
        assert 0.2 <= t.depth <= 2.5
        assert t.remanent_Am2 is not None
    for p, q in itertools.combinations(a.all_targets, 2):
        assert math.hypot(p.x - q.x, p.y - q.y) >= 3 - 1e-3
    c = a.with_seed(5)
    assert c.generated != a.generated and c.targets == a.targets


def test_random_plunging_bodies_stay_buried():
    # Shallow draws of 1.8 m bombs at up to 60 deg plunge: uncorrected, about
    # two in three would have their upper end above the ground.
    sc = parse_scenario("seed = 7\n[area]\nwidth = 60\nlength = 60\n"
                        "[random_targets]\ncount = 40\nkinds = ['aircraft_bomb']\n"
                        "min_separation_m = 1\ndepth_min_m = 0.05\ndepth_max_m = 0.5\n")
    deepened = 0
    for t in sc.generated:
        top = 0.5 * t.length_m * math.sin(math.radians(t.plunge_deg))
        assert t.length_m == pytest.approx(1.8)
        assert t.depth >= top - 5e-4  # the upper end at or below the ground
        if t.depth > 0.5 + 1e-9:
            # Deepened exactly to the surface, no further.
            assert t.depth == pytest.approx(top, abs=5e-4)
            deepened += 1
        else:
            assert 0.05 <= t.depth <= 0.5
    assert 10 <= deepened <= 35
    # Explicit targets are taken as written: a partly exposed bomb is allowed.
    ex = parse_scenario(MINIMAL + "[[targets]]\nkind = 'aircraft_bomb'\nx = 2\ny = 3\n"
                        "depth = 0.05\nplunge_deg = 45\n")
    assert ex.targets[0].depth == pytest.approx(0.05)


def test_field_from_lat_lon_date_uses_igrf():
    sc = parse_scenario(MINIMAL + "[field]\nlat = 16.75\nlon = 107.0\ndate = 2026-01-01\n")
    assert sc.field.total_nT == pytest.approx(43600, rel=0.01)
    assert sc.field.inclination_deg == pytest.approx(23.2, abs=0.5)
    assert sc.field.source.startswith("IGRF")


def test_every_bundled_scenario_loads():
    for name in bundled_scenarios():
        sc = load_scenario(name)
        assert sc.area.width > 0
    assert (SCENARIO_DIR / "demo.toml").is_file()


# --------------------------------------------------------------------------- fuzz
_DEMO = tomllib.loads((SCENARIO_DIR / "demo.toml").read_text())

toml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.lists(st.floats(-1e6, 1e6), max_size=4), st.dates(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


def _paths(d, prefix=()):
    for k, v in d.items():
        yield (*prefix, k)
        if isinstance(v, dict):
            yield from _paths(v, (*prefix, k))
        if isinstance(v, list):
            for i, item in enumerate(v):
                if isinstance(item, dict):
                    yield from _paths(item, (*prefix, k, i))


_DEMO_PATHS = list(_paths(_DEMO))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_DEMO_PATHS), toml_values, st.booleans()),
                max_size=4))
def test_fuzz_mutated_demo_only_raises_scenario_error(mutations):
    doc = copy.deepcopy(_DEMO)
    for path, value, delete in mutations:
        node = doc
        try:
            for part in path[:-1]:
                node = node[part]
            if delete:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        sc = scenario_from_dict(doc, source="fuzz")
    except ScenarioError:
        return
    assert sc.area.width > 0 and sc.area.length > 0


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), toml_values, max_size=5))
def test_fuzz_random_documents_only_raise_scenario_error(doc):
    with contextlib.suppress(ScenarioError):
        scenario_from_dict(doc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text_only_raises_scenario_error(text):
    with contextlib.suppress(ScenarioError):
        parse_scenario(MINIMAL + text)
