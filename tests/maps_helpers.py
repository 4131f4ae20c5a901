"""Survey files with known buried objects for the maps/report/QA tests (our forward model)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from dsp_synth import Source, induced, lanes_xy

from acquisition.forward import SensorGeometry, forward
from acquisition.geomag import EarthField

GEOMETRY = {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}
#: A vertical Earth field: an induced anomaly's extreme lies right over its object.
POLE = EarthField(total_nT=43600.0, inclination_deg=90.0, declination_deg=0.0)


def write_survey(path: Path, sources: Iterable[Source], *, n_lanes: int = 12,
                 length: float = 20.0, field: EarthField = POLE, noise: float = 0.3,
                 seed: int = 1, skip_lanes: Iterable[int] = (),
                 metadata: dict[str, object] | None = None) -> Path:
    """A ``# uxo-survey v1`` CSV of zig-zag lanes 1 m apart (x = 0.5, 1.5, ...)."""
    rng = np.random.default_rng(seed)
    x, y, lane = lanes_xy(n_lanes, length)
    keep = ~np.isin(lane, list(skip_lanes))
    x, y, lane = x[keep], y[keep], lane[keep]
    geom = SensorGeometry.from_geometry(GEOMETRY, field)
    v = rng.normal(0, noise, x.size)
    for s in sources:
        v += forward(x, y, s.x, s.y, s.depth, s.moment, geom)
    md: dict[str, object] = {**GEOMETRY, "field_total_nT": field.total_nT,
                             "field_inclination_deg": field.inclination_deg,
                             "field_declination_deg": field.declination_deg,
                             "lane_spacing_m": 1.0, **(metadata or {})}
    t = np.arange(x.size) * 0.1
    lines = ["# uxo-survey v1", *(f"# {k}: {v_}" for k, v_ in md.items()), "t,x,y,lane,value"]
    lines += [f"{a:.2f},{b:.3f},{c:.3f},{d},{e:.4f}" for a, b, c, d, e in
              zip(t, x, y, lane, v, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pole_source(x: float, y: float, depth: float, m: float) -> Source:
    return induced(x, y, depth, m, POLE)


#: 2026-12-07 07:33:20 UTC, the first reading of `record_two_detectors`.
RECORD_T0_NS = 1_796_628_800_000_000_000


def record_two_detectors(path: Path, metadata: dict[str, str]) -> Path:
    """A real HDF5 recording of two detectors (streams grad0, grad1) walking 12 lanes x 20 m
    side by side, the second 5 m east of the first at every instant, over one object."""
    from acquisition.dsp.batch import make_descriptor
    from acquisition.types import SampleBlock
    from recorder.sink import RecorderSink

    x, y, _ = lanes_xy(12, 20.0)
    geom = SensorGeometry.from_geometry(GEOMETRY, POLE)
    src = pole_source(5.5, 8.3, 0.8, 1.0)
    v = forward(x, y, src.x, src.y, src.depth, src.moment, geom)
    v = v + np.random.default_rng(3).normal(0, 0.3, x.size)
    prov = {**metadata, "field_total_nT": "43600", "field_inclination_deg": "90",
            "field_declination_deg": "0"}
    with RecorderSink(path, session="two-detectors", provenance=prov) as sink:
        for sid in ("grad0", "grad1"):
            sink.add_stream(make_descriptor(GEOMETRY, 10.0, sid))
        for seq, i in enumerate(range(0, x.size, 100)):
            sl = slice(i, i + 100)
            for sid, dx in (("grad0", 0.0), ("grad1", 5.0)):
                sink.write_block(SampleBlock(sid, seq, i, RECORD_T0_NS + int(i * 1e8), 10.0,
                                             v[sl, None].copy(),
                                             np.column_stack((x[sl] + dx, y[sl]))))
    return path
