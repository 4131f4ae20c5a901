"""Scenario files (TOML): the survey area, walking pattern, sensor, field, noise and targets.

A scenario says everything the simulator needs to make one survey. It is read
with `tomllib` and validated strictly: an unknown key, a wrong type or a value
out of range raises `ScenarioError` naming the key (``targets[2].depth``), so a
typo never silently falls back to a default.

Layout (every table optional except ``area``; defaults in the dataclasses)::

    name = "demo"
    seed = 1
    [area]        x0, y0, width (east, m), length (north, m)
    [survey]      lane_spacing_m, speed_m_s, rate_hz, turn_time_s, speed_variation,
                  lateral_wander_m, wander_wavelength_m, position_error_m,
                  position_error_tau_s, gait_bob_m, step_length_m
    [sensor]      kind = "gradient"|"total"|"tf_gradient", height_m, separation_m
    [field]       total_nT, inclination_deg, declination_deg  and/or  lat, lon, date
    [noise]       white_nT, drift_nT_per_min, drift_walk_nT, lane_offset_nT, heading_offset_nT
    [soil]        density_per_m2, moment_Am2, moment_spread, depth_min_m, depth_max_m,
                  remanent_fraction, margin_m
    [[targets]]   name, kind, x, y, depth, moment_Am2, remanent_Am2 = [e, n, u],
                  length_m, azimuth_deg, plunge_deg, axial_gain
    [random_targets] count, kinds, depth_min_m, depth_max_m, min_separation_m,
                  edge_margin_m, remanent_fraction, moment_spread, seed

Lanes run north-south, ``lane_spacing_m`` apart, the first at
``x0 + lane_spacing_m / 2`` walked northward, then zig-zag.
Depth is metres below ground of the body's centre (positive down).
"""

from __future__ import annotations

import datetime as _dt
import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.errors import UxoValueError
from acquisition.geomag import QUANG_TRI, EarthField, resolve
from simulator.physics import SENSOR_KINDS, SoilSpec

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

#: Default moment (A m^2) and body length (m) by kind (docs/field.md rough moments).
KIND_DEFAULTS: dict[str, tuple[float, float]] = {
    "bomblet": (0.03, 0.0),
    "grenade": (0.02, 0.1),
    "mortar": (0.15, 0.35),
    "projectile": (1.0, 0.6),
    "aircraft_bomb": (15.0, 1.8),
    "scrap": (0.01, 0.1),
}

#: Upper bounds that keep a (possibly fuzzed) scenario within memory and time.
MAX_SAMPLES = 2_000_000
MAX_SOIL_SOURCES = 200_000
MAX_TARGETS = 10_000


class ScenarioError(UxoValueError):
    """A scenario file is missing, unreadable or invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class Area:
    x0: float
    y0: float
    width: float  # east, m
    length: float  # north, m

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        return (self.x0 + margin <= x <= self.x0 + self.width - margin
                and self.y0 + margin <= y <= self.y0 + self.length - margin)


@dataclass(frozen=True, slots=True)
class SurveySpec:
    lane_spacing_m: float = 1.0
    speed_m_s: float = 1.0
    rate_hz: float = 10.0
    #: Time spent turning between lanes; the device keeps counting but sends nothing.
    turn_time_s: float = 0.0
    #: Relative std of the walking speed (smooth), 0 = constant speed.
    speed_variation: float = 0.0
    #: Std (m) of the smooth east-west wander off the lane line.
    lateral_wander_m: float = 0.0
    wander_wavelength_m: float = 5.0
    #: Std (m) of the recorded-position error (AR(1), correlation time below).
    position_error_m: float = 0.0
    position_error_tau_s: float = 1.0
    #: Amplitude (m) of the sensor's vertical bob with each step.
    gait_bob_m: float = 0.0
    step_length_m: float = 0.6


@dataclass(frozen=True, slots=True)
class SensorSpec:
    kind: str = "gradient"
    height_m: float = 0.3
    separation_m: float = 0.65

    @property
    def is_gradient(self) -> bool:
        """Whether the reading is lower sensor minus upper sensor (has a separation)."""
        return self.kind in ("gradient", "tf_gradient")


@dataclass(frozen=True, slots=True)
class NoiseSpec:
    white_nT: float = 0.5
    drift_nT_per_min: float = 0.0
    #: Random-walk drift, std growth in nT per sqrt(minute).
    drift_walk_nT: float = 0.0
    #: Std of a random zero offset per lane (re-zeroing, heading).
    lane_offset_nT: float = 0.0
    #: Offset added on northward lanes and subtracted on southward ones (heading error).
    heading_offset_nT: float = 0.0


@dataclass(frozen=True, slots=True)
class TargetSpec:
    name: str
    kind: str
    x: float
    y: float
    depth: float
    #: Induced moment magnitude (A m^2), along the Earth field.
    moment_Am2: float
    #: Optional remanent moment (east, north, up) in A m^2, added to the induced one.
    remanent_Am2: tuple[float, float, float] | None = None
    length_m: float = 0.0
    azimuth_deg: float = 0.0
    plunge_deg: float = 0.0
    axial_gain: float = 1.0


@dataclass(frozen=True, slots=True)
class RandomTargetsSpec:
    count: int
    kinds: tuple[str, ...] = ("bomblet", "mortar", "projectile", "aircraft_bomb", "scrap")
    depth_min_m: float = 0.1
    depth_max_m: float = 3.0
    min_separation_m: float = 2.5
    edge_margin_m: float = 1.5
    remanent_fraction: float = 0.0
    moment_spread: float = 0.3
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    area: Area
    survey: SurveySpec = SurveySpec()
    sensor: SensorSpec = SensorSpec()
    field: EarthField = QUANG_TRI
    noise: NoiseSpec = NoiseSpec()
    soil: SoilSpec | None = None
    targets: tuple[TargetSpec, ...] = ()
    random_targets: RandomTargetsSpec | None = None
    seed: int = 0
    description: str = ""
    source: str = ""
    #: Targets drawn from ``random_targets`` (filled in at load time, seeded).
    generated: tuple[TargetSpec, ...] = ()

    @property
    def all_targets(self) -> tuple[TargetSpec, ...]:
        return self.targets + self.generated

    @property
    def n_lanes(self) -> int:
        return max(1, math.floor(self.area.width / self.survey.lane_spacing_m + 1e-9))

    def with_seed(self, seed: int) -> Scenario:
        """Same scenario with another seed (random targets are redrawn unless they fix one)."""
        sc = replace(self, seed=int(seed), generated=())
        return replace(sc, generated=_generate_targets(sc))

    def metadata(self) -> dict[str, Any]:
        """Key/value pairs for file headers (docs/formats.md survey metadata keys first)."""
        md: dict[str, Any] = {
            "kind": self.sensor.kind,
            "sensor_height_m": self.sensor.height_m,
        }
        if self.sensor.is_gradient:
            md["sensor_separation_m"] = self.sensor.separation_m
        md.update({
            "field_total_nT": self.field.total_nT,
            "field_inclination_deg": self.field.inclination_deg,
            "field_declination_deg": self.field.declination_deg,
            "lane_spacing_m": self.survey.lane_spacing_m,
            "rate_hz": self.survey.rate_hz,
            "scenario": self.name,
            "seed": self.seed,
            "source": "simulated",
        })
        return md


# --------------------------------------------------------------------------- loading
def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped in simulator/scenarios/."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A file path if it exists, else a bundled scenario by name."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    text = str(name_or_path)
    if text and "/" not in text and "\\" not in text:
        cand = SCENARIO_DIR / (text if text.endswith(".toml") else f"{text}.toml")
        if cand.is_file():
            return cand
    raise ScenarioError(
        f"no scenario file or bundled scenario {text!r}; bundled: "
        f"{', '.join(bundled_scenarios()) or 'none'}"
    )


def load_scenario(name_or_path: str | Path, *, seed: int | None = None) -> Scenario:
    """Load and validate a scenario by bundled name or file path."""
    path = resolve_scenario_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    sc = parse_scenario(text, source=str(path))
    return sc if seed is None else sc.with_seed(seed)


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Parse TOML text into a validated `Scenario`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from exc
    return scenario_from_dict(data, source=source)


def scenario_from_dict(data: Any, source: str = "<dict>") -> Scenario:
    """Validate a parsed TOML document (dict) into a `Scenario`."""
    try:
        sc = _build(data, source)
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return sc


# --------------------------------------------------------------------------- validation
class _Table:
    """A TOML table being validated: typed getters, then `done` rejects unknown keys."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{path or 'document'} must be a table, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def has(self, k: str) -> bool:
        return k in self.data

    def raw(self, k: str) -> Any:
        self.used.add(k)
        return self.data.get(k)

    def num(self, k: str, default: float | None, lo: float = -math.inf, hi: float = math.inf,
            *, lo_open: bool = False) -> float:
        self.used.add(k)
        if k not in self.data:
            if default is None:
                raise ScenarioError(f"missing required key {self.key(k)!r}")
            return default
        v = self.data[k]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ScenarioError(f"{self.key(k)} must be a number, got {v!r}")
        v = float(v)
        if not math.isfinite(v):
            raise ScenarioError(f"{self.key(k)} must be finite, got {v!r}")
        if (v <= lo if lo_open else v < lo) or v > hi:
            lo_txt = f"> {lo}" if lo_open else f">= {lo}"
            raise ScenarioError(f"{self.key(k)} = {v} out of range (must be {lo_txt} and <= {hi})")
        return v

    def integer(self, k: str, default: int | None, lo: int, hi: int) -> int:
        self.used.add(k)
        if k not in self.data:
            if default is None:
                raise ScenarioError(f"missing required key {self.key(k)!r}")
            return default
        v = self.data[k]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ScenarioError(f"{self.key(k)} must be an integer, got {v!r}")
        if not lo <= v <= hi:
            raise ScenarioError(f"{self.key(k)} = {v} out of range ({lo}..{hi})")
        return v

    def string(self, k: str, default: str | None, choices: tuple[str, ...] | None = None,
               max_len: int = 200) -> str:
        self.used.add(k)
        if k not in self.data:
            if default is None:
                raise ScenarioError(f"missing required key {self.key(k)!r}")
            return default
        v = self.data[k]
        if not isinstance(v, str):
            raise ScenarioError(f"{self.key(k)} must be a string, got {v!r}")
        if len(v) > max_len:
            raise ScenarioError(f"{self.key(k)} is longer than {max_len} characters")
        if choices is not None and v not in choices:
            raise ScenarioError(f"{self.key(k)} = {v!r} is not one of {', '.join(choices)}")
        return v

    def table(self, k: str) -> _Table | None:
        self.used.add(k)
        if k not in self.data:
            return None
        return _Table(self.data[k], self.key(k))

    def done(self) -> None:
        unknown = sorted(str(k) for k in self.data if k not in self.used)
        if unknown:
            raise ScenarioError(f"unknown key {self.key(unknown[0])!r}"
                                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))


def _build(data: Any, source: str) -> Scenario:
    doc = _Table(data, "")
    name = doc.string("name", Path(source).stem if source else "scenario")
    description = doc.string("description", "", max_len=2000)
    seed = doc.integer("seed", 0, 0, 2**63 - 1)

    at = doc.table("area")
    if at is None:
        raise ScenarioError("missing required table 'area'")
    area = Area(x0=at.num("x0", 0.0, -1e7, 1e7), y0=at.num("y0", 0.0, -1e7, 1e7),
                width=at.num("width", None, 0.0, 1e4, lo_open=True),
                length=at.num("length", None, 0.0, 1e4, lo_open=True))
    at.done()

    survey = SurveySpec()
    st = doc.table("survey")
    if st is not None:
        d = SurveySpec()
        survey = SurveySpec(
            lane_spacing_m=st.num("lane_spacing_m", d.lane_spacing_m, 0.05, 100, lo_open=False),
            speed_m_s=st.num("speed_m_s", d.speed_m_s, 0.01, 20),
            rate_hz=st.num("rate_hz", d.rate_hz, 0.1, 10000),
            turn_time_s=st.num("turn_time_s", d.turn_time_s, 0.0, 600),
            speed_variation=st.num("speed_variation", d.speed_variation, 0.0, 0.5),
            lateral_wander_m=st.num("lateral_wander_m", d.lateral_wander_m, 0.0, 2.0),
            wander_wavelength_m=st.num("wander_wavelength_m", d.wander_wavelength_m, 0.1, 1e4),
            position_error_m=st.num("position_error_m", d.position_error_m, 0.0, 5.0),
            position_error_tau_s=st.num("position_error_tau_s", d.position_error_tau_s,
                                        0.0, 3600),
            gait_bob_m=st.num("gait_bob_m", d.gait_bob_m, 0.0, 0.5),
            step_length_m=st.num("step_length_m", d.step_length_m, 0.1, 3.0),
        )
        st.done()

    sensor = SensorSpec()
    se = doc.table("sensor")
    if se is not None:
        sensor = SensorSpec(
            kind=se.string("kind", "gradient", SENSOR_KINDS),
            height_m=se.num("height_m", 0.3, 0.0, 10.0, lo_open=True),
            separation_m=se.num("separation_m", 0.65, 0.0, 5.0, lo_open=True),
        )
        se.done()
    if survey.gait_bob_m >= sensor.height_m:
        raise ScenarioError("survey.gait_bob_m must be smaller than sensor.height_m "
                            "(the sensor would touch the ground)")

    earth = _field(doc.table("field"))

    noise = NoiseSpec()
    nt = doc.table("noise")
    if nt is not None:
        noise = NoiseSpec(
            white_nT=nt.num("white_nT", 0.5, 0.0, 1e5),
            drift_nT_per_min=nt.num("drift_nT_per_min", 0.0, -1e5, 1e5),
            drift_walk_nT=nt.num("drift_walk_nT", 0.0, 0.0, 1e5),
            lane_offset_nT=nt.num("lane_offset_nT", 0.0, 0.0, 1e5),
            heading_offset_nT=nt.num("heading_offset_nT", 0.0, -1e5, 1e5),
        )
        nt.done()

    soil = None
    so = doc.table("soil")
    if so is not None:
        d2 = SoilSpec()
        try:
            soil = SoilSpec(
                density_per_m2=so.num("density_per_m2", d2.density_per_m2, 0.0, 1e4),
                moment_Am2=so.num("moment_Am2", d2.moment_Am2, 0.0, 1.0),
                moment_spread=so.num("moment_spread", d2.moment_spread, 0.0, 5.0),
                depth_min_m=so.num("depth_min_m", d2.depth_min_m, 0.0, 10.0),
                depth_max_m=so.num("depth_max_m", d2.depth_max_m, 0.0, 10.0),
                remanent_fraction=so.num("remanent_fraction", d2.remanent_fraction, 0.0, 1.0),
                margin_m=so.num("margin_m", d2.margin_m, 0.0, 100.0),
            )
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
        so.done()
        padded = ((area.width + 2 * soil.margin_m) * (area.length + 2 * soil.margin_m))
        if soil.density_per_m2 * padded > MAX_SOIL_SOURCES:
            raise ScenarioError(f"soil would need {soil.density_per_m2 * padded:.0f} sources "
                                f"(limit {MAX_SOIL_SOURCES}); lower soil.density_per_m2")

    targets = _targets(doc.raw("targets"), area)
    rt = doc.table("random_targets")
    random_spec = _random_spec(rt) if rt is not None else None
    doc.done()

    n_lanes = max(1, math.floor(area.width / survey.lane_spacing_m + 1e-9))
    per_lane = area.length / survey.speed_m_s * survey.rate_hz * (1 + survey.speed_variation * 3)
    if n_lanes * (per_lane + 1) > MAX_SAMPLES:
        raise ScenarioError(f"survey would take about {n_lanes * per_lane:.0f} samples "
                            f"(limit {MAX_SAMPLES}); shrink area or rate")

    sc = Scenario(name=name, area=area, survey=survey, sensor=sensor, field=earth, noise=noise,
                  soil=soil, targets=targets, random_targets=random_spec, seed=seed,
                  description=description, source=source)
    return replace(sc, generated=_generate_targets(sc))


def _field(ft: _Table | None) -> EarthField:
    if ft is None:
        return QUANG_TRI
    total = ft.num("total_nT", None, 1000.0, 100000.0) if ft.has("total_nT") else None
    inc = ft.num("inclination_deg", None, -90.0, 90.0) if ft.has("inclination_deg") else None
    dec = ft.num("declination_deg", None, -180.0, 180.0) if ft.has("declination_deg") else None
    lat = ft.num("lat", None, -90.0, 90.0) if ft.has("lat") else None
    lon = ft.num("lon", None, -180.0, 360.0) if ft.has("lon") else None
    date: _dt.date | None = None
    if ft.has("date"):
        raw = ft.raw("date")
        if isinstance(raw, _dt.datetime):
            date = raw.date()
        elif isinstance(raw, _dt.date):
            date = raw
        elif isinstance(raw, str):
            try:
                date = _dt.date.fromisoformat(raw)
            except ValueError:
                raise ScenarioError(f"{ft.key('date')} must be a date YYYY-MM-DD, "
                                    f"got {raw!r}") from None
        else:
            raise ScenarioError(f"{ft.key('date')} must be a date, got {raw!r}")
        if not 1900 <= date.year <= 2035:
            raise ScenarioError(f"{ft.key('date')} = {date} is outside the IGRF model's range")
    ft.done()
    if (lat is None) != (lon is None):
        raise ScenarioError("field.lat and field.lon must be given together")
    if date is not None and lat is None:
        raise ScenarioError("field.date needs field.lat and field.lon")
    try:
        return resolve(total, inc, dec, lat=lat, lon=lon, date=date)
    except ValueError as exc:
        raise ScenarioError(f"field: {exc}") from None


def _vec3(t: _Table, k: str) -> tuple[float, float, float] | None:
    if not t.has(k):
        return None
    v = t.raw(k)
    if (not isinstance(v, list) or len(v) != 3
            or any(isinstance(c, bool) or not isinstance(c, int | float) for c in v)
            or not all(math.isfinite(float(c)) and abs(float(c)) <= 1e4 for c in v)):
        raise ScenarioError(f"{t.key(k)} must be a list of three finite numbers "
                            f"(east, north, up) within +-1e4, got {v!r}")
    return (float(v[0]), float(v[1]), float(v[2]))


def _one_target(t: _Table, i: int) -> TargetSpec:
    kind = t.string("kind", None, tuple(KIND_DEFAULTS))
    dm, dl = KIND_DEFAULTS[kind]
    return TargetSpec(
        name=t.string("name", f"{kind}-{i}"),
        kind=kind,
        x=t.num("x", None, -1e7, 1e7),
        y=t.num("y", None, -1e7, 1e7),
        depth=t.num("depth", None, 0.0, 50.0),
        moment_Am2=t.num("moment_Am2", dm, 0.0, 1e4),
        remanent_Am2=_vec3(t, "remanent_Am2"),
        length_m=t.num("length_m", dl, 0.0, 10.0),
        azimuth_deg=t.num("azimuth_deg", 0.0, -360.0, 360.0),
        plunge_deg=t.num("plunge_deg", 0.0, -90.0, 90.0),
        axial_gain=t.num("axial_gain", 1.0, 0.0, 100.0, lo_open=True),
    )


def _targets(raw: Any, area: Area) -> tuple[TargetSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ScenarioError(f"targets must be an array of tables ([[targets]]), got {raw!r}")
    if len(raw) > MAX_TARGETS:
        raise ScenarioError(f"too many targets ({len(raw)} > {MAX_TARGETS})")
    out = []
    for i, item in enumerate(raw):
        t = _Table(item, f"targets[{i}]")
        tgt = _one_target(t, i)
        t.done()
        if tgt.moment_Am2 == 0 and tgt.remanent_Am2 is None:
            raise ScenarioError(f"targets[{i}] has no moment (moment_Am2 = 0, no remanent_Am2)")
        out.append(tgt)
    names = [t.name for t in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ScenarioError(f"duplicate target names: {', '.join(sorted(dup))}")
    return tuple(out)


def _random_spec(t: _Table) -> RandomTargetsSpec:
    kinds_raw = t.raw("kinds")
    if kinds_raw is None:
        kinds = RandomTargetsSpec(count=0).kinds
    else:
        if (not isinstance(kinds_raw, list) or not kinds_raw
                or any(not isinstance(k, str) or k not in KIND_DEFAULTS for k in kinds_raw)):
            raise ScenarioError(f"{t.key('kinds')} must be a non-empty list of kinds from "
                                f"{', '.join(KIND_DEFAULTS)}, got {kinds_raw!r}")
        kinds = tuple(kinds_raw)
    spec = RandomTargetsSpec(
        count=t.integer("count", None, 0, MAX_TARGETS),
        kinds=kinds,
        depth_min_m=t.num("depth_min_m", 0.1, 0.0, 50.0),
        depth_max_m=t.num("depth_max_m", 3.0, 0.0, 50.0),
        min_separation_m=t.num("min_separation_m", 2.5, 0.0, 1000.0),
        edge_margin_m=t.num("edge_margin_m", 1.5, 0.0, 1000.0),
        remanent_fraction=t.num("remanent_fraction", 0.0, 0.0, 10.0),
        moment_spread=t.num("moment_spread", 0.3, 0.0, 3.0),
        seed=t.integer("seed", 0, 0, 2**63 - 1) if t.has("seed") else None,
    )
    t.done()
    if spec.depth_min_m > spec.depth_max_m:
        raise ScenarioError(f"{t.key('depth_min_m')} must not exceed {t.key('depth_max_m')}")
    return spec


def buried_depth(depth: float, length_m: float, plunge_deg: float) -> float:
    """``depth`` (of the body's centre, m), deepened where needed so that the
    upper end of a plunging body stays below ground, rounded to the mm.

    A random body is buried ordnance: one whose end stood above the ground
    would be seen, not surveyed, and has no meaningful "depth". The draws
    are made before this rule, so every other body of a seed is unchanged.
    Explicit ``[[targets]]`` are taken as written (a partly exposed bomb is
    a case worth simulating on purpose).
    """
    top = 0.5 * length_m * math.sin(math.radians(abs(plunge_deg)))
    return round(max(depth, top), 3)


def _generate_targets(sc: Scenario) -> tuple[TargetSpec, ...]:
    """Draw the random targets (seeded; rejection sampling for minimum separation)."""
    spec = sc.random_targets
    if spec is None or spec.count == 0:
        return ()
    rng = np.random.default_rng([spec.seed if spec.seed is not None else sc.seed, 0x7A46])
    a = sc.area
    m = spec.edge_margin_m
    if 2 * m >= a.width or 2 * m >= a.length:
        raise ScenarioError("random_targets.edge_margin_m leaves no room inside the area")
    placed = [(t.x, t.y) for t in sc.targets]
    out: list[TargetSpec] = []
    tries = 0
    while len(out) < spec.count:
        tries += 1
        if tries > 1000 * spec.count + 1000:
            raise ScenarioError(
                f"cannot place {spec.count} random targets {spec.min_separation_m} m apart "
                f"inside the area (placed {len(out)}); lower random_targets.count or "
                f"random_targets.min_separation_m")
        x = float(rng.uniform(a.x0 + m, a.x0 + a.width - m))
        y = float(rng.uniform(a.y0 + m, a.y0 + a.length - m))
        if any(math.hypot(x - px, y - py) < spec.min_separation_m for px, py in placed):
            continue
        kind = str(spec.kinds[int(rng.integers(len(spec.kinds)))])
        dm, dl = KIND_DEFAULTS[kind]
        moment = dm * float(math.exp(spec.moment_spread * rng.standard_normal()))
        rem: tuple[float, float, float] | None = None
        if spec.remanent_fraction > 0:
            d = rng.standard_normal(3)
            d /= max(float(np.linalg.norm(d)), 1e-12)
            rx, ry, rz = (float(v) for v in spec.remanent_fraction * moment * d)
            rem = (rx, ry, rz)
        depth = float(rng.uniform(spec.depth_min_m, spec.depth_max_m))
        azimuth = float(rng.uniform(0, 360))
        plunge = float(rng.uniform(0, 60))
        out.append(TargetSpec(
            name=f"rnd-{len(out)}", kind=kind, x=round(x, 3), y=round(y, 3),
            depth=buried_depth(depth, dl, plunge), moment_Am2=moment, remanent_Am2=rem,
            length_m=dl, azimuth_deg=azimuth, plunge_deg=plunge,
        ))
        placed.append((x, y))
    return tuple(out)
