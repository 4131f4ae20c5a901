"""Replay: processing a recording gives the events the live run gave, every time."""

from __future__ import annotations

import subprocess
import sys

import pytest

from acquisition.drivers import registry
from acquisition.service import AcquisitionService, ServiceConfig
from simulator.demo import run_demo

pytestmark = pytest.mark.slow


def _replay(path, tmp_path, name):
    driver = registry.create("replay", str(path), stream="grad0", speed=0)
    cfg = ServiceConfig(record=str(tmp_path / f"{name}.h5"))
    return AcquisitionService(driver, cfg).run()


def _key(events):
    return [(e.target_id, round(e.x, 9), round(e.y, 9), round(e.depth, 9),
             tuple(round(m, 9) for m in e.moment), round(e.quality, 9), e.flags)
            for e in events]


def test_replay_reproduces_live_targets_and_is_repeatable(tmp_path):
    live = run_demo("demo", speed=0, out_dir=tmp_path / "live",
                    publish=f"ipc://{tmp_path}/bus")
    rec = live.record_path
    first = _replay(rec, tmp_path, "r1")
    second = _replay(rec, tmp_path, "r2")
    # The replay ends by itself at the end of the file, with every sample.
    assert first.samples == second.samples == live.summary.samples
    assert first.blocks == live.summary.blocks
    assert len(live.summary.targets) >= 6
    assert _key(first.targets) == _key(live.summary.targets)
    assert _key(second.targets) == _key(first.targets)
    assert [(a.lane, a.sample_index) for a in first.anomalies] == [
        (a.lane, a.sample_index) for a in live.summary.anomalies]


def test_uxo_acquire_replay_exits_at_end_of_file(tmp_path):
    live = run_demo("demo", speed=0, out_dir=tmp_path, publish=f"ipc://{tmp_path}/bus")
    out = subprocess.run(
        [sys.executable, "-m", "acquisition.cli", "acquire", "--driver", "replay",
         "--port", str(live.record_path), "--opt", "speed=0", "--opt", "stream=grad0"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"stopped: {live.summary.samples} samples" in out.stdout
    assert out.stdout.count("target  #") == len(live.summary.targets)
