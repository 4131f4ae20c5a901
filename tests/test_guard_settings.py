"""A typo never produces a clearance: settings, options and metadata out of range are
refused by the library with a message naming them, and `uxo process` / `uxo borehole
process` turn every refusal into one line on stderr and exit 2 (never a traceback)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from dsp_synth import induced, survey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.borehole.batch import BoreholeConfig
from acquisition.borehole.logs import write_borehole_csv
from acquisition.cli import main
from acquisition.dsp.batch import process_survey
from acquisition.dsp.pipeline import LaneConfig
from acquisition.errors import SettingError, UxoError
from acquisition.geomag import QUANG_TRI
from acquisition.survey_csv import read_survey_csv, write_survey_csv
from acquisition.targets_io import read_targets_csv
from acquisition.validate import GEOMETRY_RANGES, metadata_number
from simulator.borehole_sim import make_scenario

SOURCES = [induced(2.0, 5.0, 1.0, 5.0), induced(5.5, 14.0, 0.8, 2.0)]


@pytest.fixture(scope="module")
def lanes(tmp_path_factory) -> tuple[Path, dict]:
    x, y, v, _lane, geo = survey(SOURCES, noise=0.3, seed=1)
    path = tmp_path_factory.mktemp("guard") / "s.csv"
    t = np.arange(x.size) * 0.1
    write_survey_csv(path, x, y, v, t=t, metadata={"kind": "gradient"})
    return path, {"x": x, "y": y, "v": v, "t": t, "geo": geo}


def _one_line_refusal(capsys, rc: int) -> str:
    cap = capsys.readouterr()
    assert rc == 2
    assert "Traceback" not in cap.err
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1, cap.err
    return lines[0]


def test_the_survey_finds_its_two_targets(lanes, tmp_path, capsys) -> None:
    # the baseline the refusals below are measured against
    path, _ = lanes
    out = tmp_path / "t.csv"
    assert main(["process", str(path), "-o", str(out)]) == 0
    assert len(read_targets_csv(out)) == 2


@pytest.mark.parametrize(("argv", "key", "value"), [
    (["--threshold", "0"], "threshold_nT", "0"), (["--threshold", "-5"], "threshold_nT", "-5"),
    (["--noise", "0"], "noise_nT", "0"), (["--noise", "-1"], "noise_nT", "-1"),
    (["--detect-k", "0"], "detect_k", "0"), (["--detect-k", "500"], "detect_k", "500"),
    (["--lane-spacing", "0"], "lane_spacing_m", "0"),
    (["--sensor-height", "-0.3"], "sensor_height_m", "-0.3"),
])
def test_process_refuses_settings_out_of_range(lanes, tmp_path, capsys, argv, key,
                                               value) -> None:
    path, _ = lanes
    out = tmp_path / "t.csv"
    line = _one_line_refusal(capsys, main(["process", str(path), "-o", str(out), *argv]))
    assert key in line and value in line and "allowed" in line
    assert not out.exists()


@pytest.mark.parametrize(("meta", "key"), [
    ("# lane_spacing_m: 0", "lane_spacing_m"), ("# sensor_height_m: abc", "sensor_height_m"),
    ("# sensor_separation_m: -1", "sensor_separation_m"),
    ("# soil_threshold_nT: 0", "threshold_nT"), ("# soil_noise_nT: nan", "soil_noise_nT"),
])
def test_process_refuses_metadata_out_of_range(lanes, tmp_path, capsys, meta, key) -> None:
    path, _ = lanes
    text = path.read_text().replace("# uxo-survey v1\n", f"# uxo-survey v1\n{meta}\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    line = _one_line_refusal(capsys, main(["process", str(bad), "-o", str(tmp_path / "o")]))
    assert key in line


def test_shuffled_rows_are_sorted_by_time_and_said(lanes, tmp_path, capsys) -> None:
    path, _ = lanes
    rows = path.read_text().splitlines()
    head = [r for r in rows if r.startswith("#")] + [rows[len([r for r in rows
                                                          if r.startswith("#")])]]
    data = rows[len(head):]
    order = np.random.default_rng(3).permutation(len(data))
    shuf = tmp_path / "shuf.csv"
    shuf.write_text("\n".join(head + [data[i] for i in order]) + "\n")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["process", str(path), "-o", str(a)]) == 0
    capsys.readouterr()
    assert main(["process", str(shuf), "-o", str(b)]) == 0
    err = capsys.readouterr().err
    assert "sorted by t" in err
    ta, tb = read_targets_csv(a), read_targets_csv(b)
    assert len(tb) == len(ta) == 2
    assert sorted((r["x"], r["y"], r["depth"]) for r in ta) == sorted(
        (r["x"], r["y"], r["depth"]) for r in tb)


def test_library_sorts_by_time_and_keeps_line_order_for_equal_times(lanes) -> None:
    _, d = lanes
    order = np.random.default_rng(5).permutation(d["x"].size)
    kw = {"geometry": d["geo"], "field": QUANG_TRI}
    ref = process_survey(d["x"], d["y"], d["v"], t=d["t"], **kw)
    res = process_survey(d["x"][order], d["y"][order], d["v"][order], t=d["t"][order], **kw)
    assert ref.notes == [] and len(res.notes) == 1 and "sorted by t" in res.notes[0]
    assert [(t.x, t.y) for t in res.targets] == [(t.x, t.y) for t in ref.targets]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(("name", "content", "expect"), [
    ("same.csv", "x,y,value\n" + "".join(f"1.0,2.0,{i % 7}\n" for i in range(300)),
     "one position"),
    ("hdr.csv", "# uxo-survey v1\nx,y,value\n", "no data rows"),
    ("random.h5", None, "unknown survey format"),
    ("dir", None, "is a directory"),
])
def test_process_bad_inputs_give_one_line(tmp_path, capsys, name, content, expect) -> None:
    if name == "dir":
        path = tmp_path / "adir"
        path.mkdir()
    elif content is None:
        path = _write(tmp_path, name, np.random.default_rng(0).bytes(4096))
    else:
        path = _write(tmp_path, name, content.encode())
    line = _one_line_refusal(capsys, main(["process", str(path), "-o", str(tmp_path / "o")]))
    assert expect in line


# --- the library, property-tested: accepted values lie in range, refusals name them ---

_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6),
                     st.text(max_size=8))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["lane_spacing_m", "detect_k", "live_k", "noise_nT",
                             "threshold_nT", "max_sources", "position_sigma_m",
                             "turn_tol_m", "min_fit_samples"]), value=_NUMBERS)
def test_lane_config_accepts_only_in_range(name: str, value: object) -> None:
    try:
        cfg = LaneConfig(**{name: value})
    except SettingError as exc:
        assert name in str(exc) and repr(value) in str(exc) and "allowed" in str(exc)
        return
    v = getattr(cfg, name)
    assert isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    assert v >= 0 if name == "position_sigma_m" else v > 0
    if name in ("detect_k", "live_k"):
        assert 1 <= v <= 30


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(sorted(GEOMETRY_RANGES)), value=st.one_of(
    st.text(max_size=10), st.floats().map(repr), st.integers(-5, 20).map(str)))
def test_metadata_number_parses_or_names_key(key: str, value: str) -> None:
    try:
        v = metadata_number({key: value}, key, 0.3, GEOMETRY_RANGES[key])
    except SettingError as exc:
        assert key in str(exc) and repr(value) in str(exc)
        return
    assert v == (0.3 if not value.strip() else float(value))
    assert v is not None and 0 < v <= 10


@settings(max_examples=300, deadline=None)
@given(key=st.one_of(st.sampled_from(sorted(BoreholeConfig().option_names())),
                     st.text(min_size=1, max_size=12)),
       value=st.one_of(st.booleans(), st.floats(), st.integers(-10**6, 10**6)))
def test_borehole_options_set_in_range_or_refused(key: str, value: object) -> None:
    try:
        cfg = BoreholeConfig.from_options({key: value})
    except SettingError as exc:
        msg = str(exc)
        assert repr(key) in msg or key in msg
        if key not in BoreholeConfig().option_names():
            assert "reach_m" in msg  # the known options are listed
        return
    assert key in cfg.option_names()
    cfg.validate()
    got = next(getattr(o, key) for o in (cfg, cfg.log, cfg.detect)
               if key in type(o).__dataclass_fields__)
    assert got == value


# --- borehole process through the CLI ---

@pytest.fixture(scope="module")
def holes(tmp_path_factory) -> Path:
    sc = make_scenario(41, area=(0.0, 0.0, 6.0, 4.0), n_targets=1)
    path = tmp_path_factory.mktemp("bh") / "logs.csv"
    write_borehole_csv(path, sc.logs, {"hole_spacing_m": 2.0})
    return path


@pytest.mark.parametrize(("opt", "needle"), [
    ("reach_m=-5", "reach_m = -5"), ("nonsense=1", "unknown borehole option 'nonsense'"),
    ("k=0", "k = 0"), ("max_sources=2.5", "max_sources = 2.5"),
])
def test_borehole_options_refused(holes, tmp_path, capsys, opt, needle) -> None:
    out = tmp_path / "t.csv"
    line = _one_line_refusal(capsys, main(["borehole", "process", str(holes), "-o", str(out),
                                           "--opt", opt]))
    assert needle in line
    if "nonsense" in opt:
        assert "reach_m" in line and "window_m" in line
    assert not out.exists()


@pytest.mark.parametrize(("column", "value", "why"), [
    (3, "1e300", "depth 1e+300 m outside"), (1, "1e200", "x/y (1e+200, 0) beyond"),
])
def test_borehole_absurd_rows_are_rejected_with_line(holes, tmp_path, capsys, column, value,
                                                     why) -> None:
    lines = holes.read_text().splitlines()
    fields = lines[10].split(",")
    fields[column] = value
    lines[10] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "t.csv"
    rc = main(["borehole", "process", str(bad), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err
    assert f"line 11: {why}" in err
    assert len(read_targets_csv(out)) >= 1


@pytest.mark.parametrize("kind", ["dir", "random.h5"])
def test_borehole_bad_inputs_give_one_line(tmp_path, capsys, kind) -> None:
    if kind == "dir":
        path = tmp_path / "d"
        path.mkdir()
    else:
        path = _write(tmp_path, kind, os.urandom(4096))
    line = _one_line_refusal(capsys, main(["borehole", "process", str(path), "-o",
                                           str(tmp_path / "o")]))
    assert str(path) in line


def test_every_refusal_is_a_uxo_error_and_a_value_error() -> None:
    with pytest.raises(UxoError):
        LaneConfig(threshold_nT=0)
    with pytest.raises(ValueError):
        BoreholeConfig.from_options({"nonsense": 1})


def test_header_only_survey_is_refused_by_the_library(tmp_path) -> None:
    p = _write(tmp_path, "h.csv", b"x,y,value\n")
    d = read_survey_csv(p)
    with pytest.raises(UxoError, match="no data rows"):
        process_survey(d.x, d.y, d.value, geometry={"kind": "gradient"}, field=QUANG_TRI)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["sensor_height_m", "sensor_separation_m", "lane_spacing_m",
                            "soil_noise_nT", "soil_threshold_nT"]),
       value=st.one_of(st.text(alphabet="0123456789.-eanif ", max_size=6),
                       st.floats().map(repr)))
def test_process_metadata_fuzz_refuses_or_runs(tmp_path, capsys, key, value) -> None:
    # a tiny survey (2 lanes) so each accepted example runs through quickly
    x, y, v, _l, _g = survey([induced(1.0, 3.0, 0.6, 1.0)], n_lanes=2, length=6.0)
    p = tmp_path / "tiny.csv"
    write_survey_csv(p, x, y, v, metadata={key: value})
    rc = main(["process", str(p), "-o", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc in (0, 2)
    if rc == 2:
        assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("meta", "key"), [("sensor_height_m: abc", "sensor_height_m"),
                                           ("sensor_separation_m: 0", "sensor_separation_m"),
                                           ("kind: totl", "kind")])
def test_survey_geometry_from_metadata_is_checked(meta, key) -> None:
    from acquisition.survey_csv import parse_survey_csv

    d = parse_survey_csv(f"# {meta}\nx,y,value\n1,2,3\n")
    with pytest.raises(SettingError, match=key):
        d.geometry()


@pytest.mark.parametrize("share", [-1.0, 1.5, math.nan])
def test_max_bad_share_outside_zero_to_one_is_refused(share, tmp_path, capsys) -> None:
    from acquisition.survey_csv import parse_survey_csv

    with pytest.raises(SettingError, match="max_bad_share"):
        parse_survey_csv("x,y,value\n1,2,3\n", max_bad_share=share)
    p = _write(tmp_path, "s.csv", b"x,y,value\n1,2,3\n")
    line = _one_line_refusal(capsys, main(["process", str(p), "-o", str(tmp_path / "o"),
                                           "--max-bad-share", str(share)]))
    assert "max_bad_share" in line


@pytest.mark.parametrize(("column", "value"), [(1, "1e200"), (3, "1e300")])
def test_one_absurd_reading_is_rejected_not_fitted(lanes, tmp_path, capsys, column,
                                                   value) -> None:
    path, _ = lanes
    rows = path.read_text().splitlines()
    first = next(i for i, r in enumerate(rows) if r.startswith("t,")) + 1
    fields = rows[first + 50].split(",")
    fields[column] = value
    rows[first + 50] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["process", str(path), "-o", str(a)]) == 0
    capsys.readouterr()
    assert main(["process", str(bad), "-o", str(b)]) == 0
    err = capsys.readouterr().err
    assert "1 reading(s) beyond physical bounds rejected" in err and "data row 51" in err
    ta, tb = read_targets_csv(a), read_targets_csv(b)
    assert len(tb) == len(ta) == 2
    for p, q in zip(sorted(ta, key=lambda r: float(r["y"])),
                    sorted(tb, key=lambda r: float(r["y"])), strict=True):
        assert float(q["x"]) == pytest.approx(float(p["x"]), abs=0.05)
        assert float(q["y"]) == pytest.approx(float(p["y"]), abs=0.05)


@pytest.mark.parametrize(("argv", "needle"), [
    (["--snr", "0"], "snr_required = 0"), (["--snr", "2"], "snr_required = 2"),
    (["--noise", "-1"], "noise_nT = -1"), (["--step", "0"], "step_m = 0"),
    (["--step", "0.0001"], "grid cells"),
])
def test_coverage_refuses_a_sign_off_setting_out_of_range(holes, capsys, argv, needle) -> None:
    # today `--snr 0` signs the layer off
    line = _one_line_refusal(capsys, main(["borehole", "coverage", str(holes), "--rect",
                                           "0,0,6,4", *argv]))
    assert needle in line and "signed off" not in line


@pytest.mark.parametrize(("argv", "needle"), [
    (["--spacing", "0.001"], "would plan up to 1e+08 holes"),
    (["--azimuth", "nan"], "azimuth_deg = nan"),
])
def test_plan_refuses_a_spacing_that_would_hang_it(tmp_path, capsys, argv, needle) -> None:
    out = tmp_path / "p.csv"
    line = _one_line_refusal(capsys, main(["borehole", "plan", "--rect", "0,0,10,8", "-o",
                                           str(out), *argv]))
    assert needle in line and not out.exists()


def test_walks_joined_with_their_own_clocks_keep_file_order(lanes) -> None:
    # two walks in one file, each clock starting at 0: sorting by t would
    # interleave them; they are kept in order and the result says so
    _, d = lanes
    kw = {"geometry": d["geo"], "field": QUANG_TRI}
    half = d["x"].size // 2
    t = np.concatenate([d["t"][:half], d["t"][half:] - d["t"][half]])
    ref = process_survey(d["x"], d["y"], d["v"], t=d["t"], **kw)
    res = process_survey(d["x"], d["y"], d["v"], t=t, **kw)
    assert "2 walks joined" in res.notes[0]
    assert sorted((round(q.x, 2), round(q.y, 2)) for q in res.targets) == sorted(
        (round(q.x, 2), round(q.y, 2)) for q in ref.targets)


def test_every_sensor_kind_of_the_forward_model_is_accepted_and_no_other() -> None:
    from acquisition.forward.geometry import KINDS
    from acquisition.validate import check_geometry

    for kind in KINDS:
        assert check_geometry({"kind": kind, "sensor_height_m": 0.3,
                               "sensor_separation_m": 0.65})["kind"] == kind
    with pytest.raises(SettingError, match="kind = 'vector' is not known"):
        check_geometry({"kind": "vector"})
