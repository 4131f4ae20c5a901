"""docs/api.md: its five-line example runs as printed and gives placed targets."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from simulator.scenario import load_scenario
from simulator.survey import simulate_survey

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_api_doc_example_runs(tmp_path, monkeypatch):
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    code = block.group(1)
    assert len([ln for ln in code.splitlines() if ln.strip()]) == 5
    sim = simulate_survey(load_scenario("demo"))
    sim.write_survey_csv(tmp_path / "survey.csv")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    lines = out.getvalue().splitlines()
    assert len(lines) == len([t for t in sim.truth if t.detectable]) == 6
    for ln in lines:
        tid, lat, lon, depth, unit, cls = ln.split()
        assert tid.isdigit()
        # the demo lies 0-20 m north of the origin at 713000 E, 1861000 N (UTM 48N)
        assert float(lat) == pytest.approx(16.8226, abs=2e-4)
        assert float(lon) == pytest.approx(106.99889, abs=1e-4)
        assert 0.0 < float(depth) < 4.5 and unit == "m"
        assert cls in ("scrap_or_bomblet", "mortar", "projectile", "aircraft_bomb")
