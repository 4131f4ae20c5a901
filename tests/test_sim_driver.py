"""The ``sim`` driver: SampleBlocks straight from a scenario, found through the registry."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.drivers import registry
from acquisition.drivers.transport import PortError
from acquisition.types import BlockFlags
from simulator.driver import SimDriver
from simulator.scenario import load_scenario, parse_scenario
from simulator.survey import simulate_survey

TURNS = """
name = "turns"
seed = 3
[area]
width = 3.0
length = 3.0
[survey]
turn_time_s = 1.5
[[targets]]
kind = "mortar"
x = 1.5
y = 1.5
depth = 0.3
"""


def read_all(d: SimDriver, timeout: float = 0.05, limit: int = 100_000) -> list:
    blocks = []
    for _ in range(limit):
        b = d.read_block(timeout)
        if b is None:
            if d.finished:
                break
            continue
        blocks.append(b)
    return blocks


def test_registry_finds_the_sim_driver():
    assert registry.get("sim") is SimDriver
    assert "sim" in registry.available()


def test_blocks_reproduce_the_survey_exactly():
    survey = simulate_survey(load_scenario("demo", seed=2))
    d = registry.create("sim", "sim://demo?seed=2", speed=0, block_size=128)
    desc = d.open()
    assert desc.channel_names == ("grad",) and desc.rate_hz == 10.0
    assert desc.position_dims == 2 and desc.driver == "sim"
    assert desc.geometry["kind"] == "gradient"
    assert desc.geometry["sensor_height_m"] == 0.3
    assert desc.geometry["sensor_separation_m"] == 0.65
    assert desc.geometry["field_inclination_deg"] == 23.2
    blocks = read_all(d)
    d.close()
    assert all(b.n <= 128 for b in blocks)
    data = np.concatenate([b.data for b in blocks])
    pos = np.concatenate([b.positions for b in blocks])
    np.testing.assert_array_equal(data, survey.values)
    np.testing.assert_array_equal(pos, np.column_stack([survey.x_rec, survey.y_rec]))
    assert [b.seq for b in blocks] == list(range(len(blocks)))
    nxt = 0
    for b in blocks:
        assert b.first_index == nxt and b.flags == BlockFlags.SIMULATED
        nxt = b.next_index
        assert b.device_time_ns == round(survey.t_s[b.first_index] * 1e9)
    t = np.concatenate([b.times_ns() for b in blocks])
    np.testing.assert_array_equal(np.diff(t), np.full(len(t) - 1, 100_000_000))
    assert d.counters.samples == survey.n and d.counters.gaps == 0


def test_turns_become_gaps(tmp_path):
    p = tmp_path / "turns.toml"
    p.write_text(TURNS)
    survey = simulate_survey(parse_scenario(TURNS, source=str(p)))
    d = SimDriver(f"sim://{p}", speed=0)
    d.open()
    blocks = read_all(d)
    assert sum(b.n for b in blocks) == survey.n
    gaps = [b for b in blocks if b.flags & BlockFlags.GAP]
    assert len(gaps) == 2 and d.counters.gaps == 2
    for b in gaps:
        assert b.first_index in set(survey.index.tolist())
    assert blocks[-1].next_index == survey.index[-1] + 1
    assert [b.first_index for b in blocks if b.flags & BlockFlags.GAP] == \
        [int(survey.index[k + 1]) for k in np.flatnonzero(np.diff(survey.index) != 1)]


def test_paced_driver_delivers_everything(tmp_path):
    p = tmp_path / "turns.toml"
    p.write_text(TURNS.replace("turn_time_s = 1.5", "turn_time_s = 0.0"))
    d = SimDriver("sim://ignored", scenario=str(p), speed=50, max_block_s=0.05)
    d.open()
    blocks = read_all(d, timeout=0.2)
    assert sum(b.n for b in blocks) == 3 * 31
    assert len(blocks) > 1  # paced: not everything in one block
    assert d.read_block(0.01) is None and d.finished


def test_reopen_flags_reconnect_and_errors_are_port_errors():
    d = SimDriver("sim://demo", speed=0, block_size=50)
    d.open()
    first = d.read_block(0.1)
    d.close()
    with pytest.raises(PortError):
        d.read_block(0.1)
    d.open()
    second = d.read_block(0.1)
    assert second.flags & BlockFlags.RECONNECT and second.first_index == first.next_index
    with pytest.raises(PortError, match="nope"):
        SimDriver("sim://nope").open()
    with pytest.raises(ValueError):
        SimDriver("sim://demo", speed=-1)


def test_tf_gradient_scenario_streams_a_tf_gradient_geometry(tmp_path):
    from acquisition.dsp.pipeline import LanePipeline
    from acquisition.service import make_pipeline

    p = tmp_path / "tfg.toml"
    p.write_text(TURNS.replace("[survey]", "[sensor]\nkind = \"tf_gradient\"\n"
                               "separation_m = 0.8\n[survey]"))
    d = SimDriver(f"sim://{p}", speed=0)
    desc = d.open()
    d.close()
    assert desc.channel_names == ("tfgrad",)
    assert desc.geometry["kind"] == "tf_gradient"
    assert desc.geometry["sensor_separation_m"] == 0.8
    pipe = make_pipeline(desc, load_scenario("demo").field)
    assert isinstance(pipe, LanePipeline)
    assert (pipe.geom.kind, pipe.geom.sensor_separation_m) == ("tf_gradient", 0.8)
