"""Every reading kind the forward model knows can be read from a survey CSV and processed.

`acquisition.validate` takes its list of kinds from `acquisition.forward`, so a
kind the physics models (``tf_gradient``: two total-field sensors) is never
refused by the settings check.
"""

from __future__ import annotations

import numpy as np
import pytest

from acquisition import process_survey, read_survey
from acquisition.forward import KINDS, SensorGeometry, forward, induced_moment
from acquisition.geomag import QUANG_TRI
from acquisition.survey_csv import parse_survey_csv, write_survey_csv


def test_survey_csv_geometry_accepts_every_forward_kind() -> None:
    for kind in KINDS:
        d = parse_survey_csv(f"# uxo-survey v1\n# kind: {kind}\nx,y,value\n0,0,1\n")
        assert d.geometry()["kind"] == kind


@pytest.mark.parametrize("kind", ["tf_gradient", "total"])
def test_a_buried_dipole_is_located_for_kind(tmp_path, kind) -> None:
    # 9 lanes 1 m apart, 10 samples a metre, one 1 A m^2 induced source 1.2 m deep
    ys = np.arange(0.0, 12.0, 0.1)
    x = np.concatenate([np.full(ys.size, lane) for lane in range(9)]).astype(float)
    y = np.tile(ys, 9)
    lane = np.repeat(np.arange(9), ys.size)
    geom = SensorGeometry.from_geometry({"kind": kind}, QUANG_TRI)
    v = forward(x, y, 4.2, 6.3, 1.2, induced_moment(1.0, QUANG_TRI), geom)
    v = v + np.random.default_rng(5).normal(0.0, 0.05, v.size)
    path = tmp_path / "s.csv"
    write_survey_csv(path, x, y, v, lane=lane, metadata={"kind": kind})
    res = process_survey(read_survey(path))
    assert len(res.targets) == 1
    t = res.targets[0]
    assert abs(t.x - 4.2) < 0.15 and abs(t.y - 6.3) < 0.15
    assert abs(t.depth - 1.2) < 0.15 * 1.2
