"""`process_survey`: a `Survey` in, located and placed targets out; every setting resolved here.

The library call the CLI is built on (``uxo process`` only parses options and
prints), so Python and the command line give the same answer:

    >>> from acquisition import read_survey, process_survey
    >>> res = process_survey(read_survey("survey.csv"), lane_spacing_m=1.0)
    >>> for t, place in res.placed():
    ...     print(t.target_id, place.lat, place.lon, t.depth, t.size_class)

Precedence, for every setting (docs/api.md): a keyword override wins over the
survey's metadata, which wins over what a recording's instrument stated (its
stream geometry: kind, heights), which wins over the default. The Earth field:
explicit field values (override, else metadata) win; a place or date given as
an override asks for IGRF there and then (the file's field values give way);
else IGRF at the metadata's latitude/longitude; else IGRF at the survey's own
site when it is georeferenced (its centre, the date from the metadata, else
from epoch time stamps, else today); else Quang Tri's default field. The
declination handed to the DSP is turned from true north to the local grid's
y axis (grid rotation and meridian convergence).

Before the DSP: positions are corrected for a lag (``position_lag_s``: seconds,
or ``"auto"`` to estimate it from the zig-zag's herringbone,
`acquisition.dsp.lag`), and a total-field survey may have its diurnal
variation removed with a base station (``base``). After it: a lane spacing
too wide for the sensor's footprint is a warning naming the depth the survey
still covers; moments beyond any ordnance are flagged (`events.size_class`).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.coords import SurveyFrame
from acquisition.dsp.batch import SurveyResult
from acquisition.dsp.batch import process_survey as _process_arrays
from acquisition.dsp.pipeline import LaneConfig
from acquisition.events import BEYOND_ORDNANCE_AM2, Anomaly, Target
from acquisition.geomag import EarthField, resolve
from acquisition.survey import Survey
from acquisition.validate import finite_float

#: Override name -> (metadata key, what it is). Overrides use these names.
SETTINGS: dict[str, tuple[str | None, str]] = {
    "kind": ("kind", "reading kind, e.g. gradient (vertical fluxgate gradiometer) or total"),
    "sensor_height_m": ("sensor_height_m", "lower sensor height above ground, m"),
    "sensor_separation_m": ("sensor_separation_m", "gradiometer sensor separation, m"),
    "lane_spacing_m": ("lane_spacing_m", "nominal lane spacing, m"),
    "noise_nT": ("soil_noise_nT", "fixed noise sigma, nT (default: from the data)"),
    "threshold_nT": ("soil_threshold_nT", "fixed detection threshold, nT"),
    "detect_k": ("detect_k", "detection threshold in noise sigmas"),
    "position_sigma_m": ("position_sigma_m", "horizontal position uncertainty per axis, m"),
    "position_lag_s": ("position_lag_s", "time by which positions trail the readings, s, "
                       "or 'auto'"),
    "field_total_nT": ("field_total_nT", "Earth field total, nT"),
    "field_inclination_deg": ("field_inclination_deg", "Earth field inclination, deg down"),
    "field_declination_deg": ("field_declination_deg", "Earth field declination, deg east "
                              "of true north"),
    "latitude": ("latitude", "site latitude for IGRF, deg"),
    "longitude": ("longitude", "site longitude for IGRF, deg"),
    "date": ("date", "survey date for IGRF, YYYY-MM-DD"),
    "base": (None, "base-station record for diurnal correction: a file (GSM-19 dump or "
             "t,value CSV) or (t, value) arrays"),
}

DEFAULTS: dict[str, Any] = {"kind": "gradient", "sensor_height_m": 0.3,
                            "sensor_separation_m": 0.65, "lane_spacing_m": 1.0,
                            "detect_k": LaneConfig().detect_k,
                            "position_sigma_m": LaneConfig().position_sigma_m,
                            "position_lag_s": 0.0}

#: A bomb survey looks from this depth down (a mine detector clears the top: docs/field.md).
BOMB_SURVEY_TOP_M = 0.3
#: Time stamps beyond this (2000-01-01) are read as Unix epoch seconds (for the IGRF date).
EPOCH_FROM_S = 946_684_800.0


class ProcessingError(ValueError):
    """A setting or an input that processing cannot use; the message says which."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a target lies: frame CRS easting/northing, and WGS84 latitude/longitude."""

    easting: float
    northing: float
    lat: float
    lon: float


@dataclass(slots=True)
class Settings:
    """The configuration processing ran with, and where each value came from."""

    geometry: dict[str, Any]
    config: LaneConfig
    field: EarthField
    #: The field as the DSP got it: declination from the local grid's y axis.
    grid_field: EarthField
    grid_convergence_deg: float
    #: Setting name -> "override", "metadata", "instrument", "default" or "measured".
    source: dict[str, str]


@dataclass(slots=True)
class ProcessedSurvey:
    """What `process_survey` found, in local metres, with the survey's frame to place it."""

    result: SurveyResult
    settings: Settings
    frame: SurveyFrame
    survey: Survey
    warnings: list[str] = field(default_factory=list)
    #: The position lag applied (s) and how it was set ("override", "metadata", "auto").
    lag_s: float = 0.0
    lag_source: str = "default"
    #: Range (max - min, nT) of the base station's variation removed; None without a base.
    diurnal_range_nT: float | None = None
    #: Lane spacing measured from the positions (m); nan when it could not be.
    measured_lane_spacing_m: float = math.nan

    # -- the DSP's answer, as on `SurveyResult` ------------------------------------
    @property
    def targets(self) -> list[Target]:
        return self.result.targets

    @property
    def anomalies(self) -> list[Anomaly]:
        return self.result.anomalies

    @property
    def under_threshold(self) -> list[Target]:
        return self.result.under_threshold

    @property
    def explained(self) -> list[Target]:
        return self.result.explained

    @property
    def noise_nT(self) -> float:
        return self.result.noise_nT

    @property
    def threshold_nT(self) -> float:
        return self.result.threshold_nT

    @property
    def lanes(self) -> int:
        return self.result.lanes

    @property
    def area_m2(self) -> float:
        return self.result.area_m2

    @property
    def n_samples(self) -> int:
        return self.result.n_samples

    @property
    def beyond_ordnance(self) -> list[Target]:
        """Targets whose moment no ordnance has (geology, pipes, buildings), flagged."""
        return [t for t in self.targets if "beyond_ordnance" in t.flags]

    @property
    def rejected_samples(self) -> int:
        return self.result.rejected_samples

    def density(self) -> list[dict[str, Any]]:
        return self.result.density()

    def summary(self) -> str:
        return self.result.summary()

    # -- placing ---------------------------------------------------------------
    def place(self, targets: list[Target]) -> list[Place] | None:
        """Each target's CRS and WGS84 position; None when the survey is not georeferenced."""
        if not self.frame.georeferenced:
            return None
        x = np.array([t.x for t in targets], dtype=np.float64)
        y = np.array([t.y for t in targets], dtype=np.float64)
        e, n = self.frame.local_to_crs(x, y)
        lat, lon = self.frame.to_wgs84(x, y)
        return [Place(float(a), float(b), float(c), float(d))
                for a, b, c, d in zip(np.atleast_1d(e), np.atleast_1d(n), np.atleast_1d(lat),
                                      np.atleast_1d(lon), strict=True)]

    def placed(self) -> Iterator[tuple[Target, Place | None]]:
        """(target, place) for every listed target; place is None for an unplaced survey."""
        places: Sequence[Place | None] = self.place(self.targets) or [None] * len(self.targets)
        yield from zip(self.targets, places, strict=True)


# -- resolving settings ----------------------------------------------------------------
def _check_names(overrides: dict[str, Any]) -> None:
    unknown = sorted(set(overrides) - set(SETTINGS))
    if unknown:
        raise TypeError(f"process_survey: unknown setting(s) {', '.join(map(repr, unknown))}; "
                        f"known: {', '.join(SETTINGS)}")


def _given(v: Any) -> bool:
    return v is not None and not (isinstance(v, str) and not v.strip())


def _pick(name: str, overrides: dict[str, Any], md: dict[str, str],
          instrument: dict[str, Any] | None = None) -> tuple[Any, str]:
    if _given(overrides.get(name)):
        return overrides[name], "override"
    key = SETTINGS[name][0]
    if key is not None and _given(md.get(key)):
        return md[key], "metadata"
    if instrument and _given(instrument.get(name)):
        return instrument[name], "instrument"
    return DEFAULTS.get(name), "default"


def _number(name: str, v: Any, source: str) -> float:
    # name what the user wrote: the file's metadata key, or the setting
    where = f"metadata {SETTINGS[name][0]}" if source == "metadata" else name
    return finite_float(where, v, ProcessingError)


def _survey_date(md: dict[str, str], t: np.ndarray | None) -> Any:
    if _given(md.get("date")):
        return md["date"]
    if t is not None:
        ok = np.asarray(t, dtype=np.float64)
        ok = ok[np.isfinite(ok)]
        if ok.size and float(np.median(ok)) > EPOCH_FROM_S:
            return _dt.datetime.fromtimestamp(float(np.median(ok)), _dt.UTC).date()
    return None


def resolve_field(survey: Survey, overrides: dict[str, Any]) -> EarthField:
    """The Earth field at true north for this survey (precedence: module docstring)."""
    md = survey.metadata
    site_given = any(_given(overrides.get(k)) for k in ("latitude", "longitude", "date"))

    def value(name: str) -> float | None:
        v = overrides.get(name)
        if not _given(v) and not (site_given and name.startswith("field_")):
            v = md.get(SETTINGS[name][0] or "")
            src = "metadata"
        else:
            src = "override"
        return _number(name, v, src) if _given(v) else None

    comps = {k: value(k) for k in ("field_total_nT", "field_inclination_deg",
                                   "field_declination_deg")}
    lat, lon = value("latitude"), value("longitude")
    if (lat is None) != (lon is None):
        raise ProcessingError("a latitude needs a longitude and a longitude a latitude "
                              "(--lat and --lon, or latitude/longitude in the file)")
    date = overrides.get("date") if _given(overrides.get("date")) else None
    if site_given and lat is None and not survey.frame.georeferenced:
        raise ProcessingError("--date needs a place: --lat and --lon, latitude/longitude "
                              "in the file, or a georeferenced survey (--crs)")
    all_given = all(v is not None for v in comps.values())
    own_site = ""
    if lat is None and survey.frame.georeferenced and not all_given:
        # the Earth field follows the site without being asked
        ok = np.isfinite(survey.x) & np.isfinite(survey.y)
        if ok.any():
            cx = 0.5 * (float(survey.x[ok].min()) + float(survey.x[ok].max()))
            cy = 0.5 * (float(survey.y[ok].min()) + float(survey.y[ok].max()))
            la, lo = survey.frame.to_wgs84(cx, cy)
            lat, lon = round(float(la), 4), round(float(lo), 4)
            own_site = " (the survey's own site)"
    if lat is not None and date is None:
        date = _survey_date(md, survey.t)
    try:
        f = resolve(total_nT=comps["field_total_nT"],
                    inclination_deg=comps["field_inclination_deg"],
                    declination_deg=comps["field_declination_deg"],
                    lat=None if all_given else lat, lon=None if all_given else lon, date=date)
    except ValueError as exc:
        raise ProcessingError(str(exc)) from None
    if own_site and f.source.startswith("IGRF"):
        f = EarthField(f.total_nT, f.inclination_deg, f.declination_deg,
                       source=f.source + own_site)
    return f


def _grid_field(f: EarthField, frame: SurveyFrame, survey: Survey) -> tuple[EarthField, float]:
    """``f`` with its declination measured from the local grid's y axis."""
    if not frame.georeferenced:
        return f, 0.0
    ok = np.isfinite(survey.x) & np.isfinite(survey.y)
    cx = float(np.median(survey.x[ok])) if ok.any() else 0.0
    cy = float(np.median(survey.y[ok])) if ok.any() else 0.0
    conv = frame.grid_convergence_deg(cx, cy)
    if abs(conv) < 1e-9:
        return f, 0.0
    dec = (f.declination_deg + conv + 180.0) % 360.0 - 180.0
    return EarthField(f.total_nT, f.inclination_deg, dec,
                      source=f"{f.source}; declination {f.declination_deg:.2f} from true "
                      f"north is {dec:.2f} from the grid's y axis"), conv


def resolve_settings(survey: Survey, overrides: dict[str, Any]) -> Settings:
    """Every setting of `process_survey` for ``survey`` (precedence: module docstring)."""
    _check_names(overrides)
    md = survey.metadata
    inst = {k: v for k, v in survey.geometry.items()
            if k in ("kind", "sensor_height_m", "sensor_separation_m")}
    source: dict[str, str] = {}

    def get(name: str, number: bool = True) -> Any:
        v, src = _pick(name, overrides, md, inst)
        source[name] = src
        if v is None or not number:
            return v
        return _number(name, v, src)

    # the kind is passed through as a string: the DSP says which kinds it models
    geometry = dict(survey.geometry)
    geometry.update({"kind": str(get("kind", number=False)).strip(),
                     "sensor_height_m": get("sensor_height_m"),
                     "sensor_separation_m": get("sensor_separation_m")})
    try:
        config = LaneConfig(lane_spacing_m=get("lane_spacing_m"), detect_k=get("detect_k"),
                            noise_nT=get("noise_nT"), threshold_nT=get("threshold_nT"),
                            position_sigma_m=get("position_sigma_m"))
    except ValueError as exc:  # LaneConfig checks ranges
        raise ProcessingError(str(exc)) from None
    f = resolve_field(survey, overrides)
    source["field"] = f.source
    grid, conv = _grid_field(f, survey.frame, survey)
    return Settings(geometry=geometry, config=config, field=f, grid_field=grid,
                    grid_convergence_deg=conv, source=source)


# -- lanes, lag, base, sanity -----------------------------------------------------------
def survey_lanes(x: np.ndarray, y: np.ndarray, t: np.ndarray | None, lane: np.ndarray | None,
                 spacing_m: float) -> np.ndarray:
    """Lane number of every row: the file's lanes, else from a cart's instants, else positions."""
    from acquisition.dsp.cart import cart_lanes
    from acquisition.dsp.segment import LaneSegmenter

    if lane is not None:
        la = np.asarray(lane, dtype=np.float64)
        return np.where(np.isfinite(la), la, -1).astype(np.int64)
    ok = np.isfinite(x) & np.isfinite(y)
    out = np.full(x.size, -1, dtype=np.int64)
    if not ok.any():
        return out
    found = None
    if t is not None:
        tt = np.asarray(t, dtype=np.float64)
        ok &= np.isfinite(tt)
        found = cart_lanes(x[ok], y[ok], tt[ok], spacing_m)
    if found is None:
        found = LaneSegmenter(spacing_m).assign(x[ok], y[ok])
    out[ok] = found
    return out


def measure_lane_spacing(x: np.ndarray, y: np.ndarray, lanes: np.ndarray) -> float:
    """Median distance (m) across between neighbouring lanes' centre lines (x: lanes run N-S)."""
    centres = []
    for k in np.unique(lanes):
        if k < 0:
            continue
        sel = (lanes == k) & np.isfinite(x)
        if sel.sum() >= 5:
            centres.append(float(np.median(x[sel])))
    if len(centres) < 2:
        return math.nan
    gaps = np.diff(np.sort(centres))
    gaps = gaps[gaps > 0.05]
    return float(np.median(gaps)) if gaps.size else math.nan


def coverage_warning(spacing_m: float, sensor_height_m: float) -> str | None:
    """A warning when lanes are too far apart to see shallow objects between them.

    A body at depth d is seen on a lane when the lane passes within about its
    distance below the sensor (d + sensor height) of it; midway between lanes
    spacing/2 away, bodies shallower than spacing/2 - height can be missed.
    """
    if not math.isfinite(spacing_m):
        return None
    covered = spacing_m / 2.0 - sensor_height_m
    if covered <= BOMB_SURVEY_TOP_M:
        return None
    return (f"lanes {spacing_m:.3g} m apart: objects shallower than ~{covered:.1f} m between "
            f"lanes may be missed (a body is seen on a lane within about its depth below "
            f"the sensor; bomb surveys walk lanes 1 m apart)")


def read_base(base: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """A base-station record as (t s, value nT, what): a file path or (t, value) arrays."""
    from acquisition.basestation import read_base_file

    if isinstance(base, str | Path):
        tb, vb = read_base_file(Path(base))
        return tb, vb, str(base)
    if isinstance(base, tuple | list) and len(base) == 2:
        tb = np.asarray(base[0], dtype=np.float64).ravel()
        vb = np.asarray(base[1], dtype=np.float64).ravel()
        if tb.size != vb.size:
            raise ProcessingError("base: times and values differ in length")
        return tb, vb, "base arrays"
    raise ProcessingError("base: expected a file path or (t, value) arrays")


def diurnal_correction(t: np.ndarray, tb: np.ndarray, vb: np.ndarray, what: str
                       ) -> tuple[np.ndarray, float, int]:
    """The base's variation at each reading's time (minus its median), its range, and
    how many readings lie outside the base record (they get its nearest value)."""
    ok = np.isfinite(tb) & np.isfinite(vb)
    tb, vb = tb[ok], vb[ok]
    order = np.argsort(tb, kind="stable")
    tb, vb = tb[order], vb[order]
    if tb.size < 2:
        raise ProcessingError(f"{what}: fewer than 2 base readings")
    tt = np.asarray(t, dtype=np.float64)
    fin = np.isfinite(tt)
    inside = fin & (tt >= tb[0]) & (tt <= tb[-1])
    if not inside.any():
        lo, hi = (float(tt[fin].min()), float(tt[fin].max())) if fin.any() else (math.nan,) * 2
        raise ProcessingError(f"{what}: the base record ({tb[0]:.1f}-{tb[-1]:.1f} s) does not "
                              f"overlap the survey's times ({lo:.1f}-{hi:.1f} s); both must "
                              "use one clock (e.g. seconds of the day, or Unix time)")
    b = np.interp(np.where(fin, tt, tb[0]), tb, vb)
    b = b - float(np.median(b[fin]))
    b[~fin] = 0.0
    return b, float(b[fin].max() - b[fin].min()), int((fin & ~inside).sum())


def _flag_beyond_ordnance(targets: list[Target]) -> list[Target]:
    from dataclasses import replace

    return [replace(t, flags=(*t.flags, "beyond_ordnance"))
            if t.moment_abs >= BEYOND_ORDNANCE_AM2 and "beyond_ordnance" not in t.flags else t
            for t in targets]


# -- the facade -----------------------------------------------------------------------------
def process_survey(survey: Survey, *, on_progress: Callable[[int, int], None] | None = None,
                   **overrides: Any) -> ProcessedSurvey:
    """Process a survey read by `acquisition.read_survey`; keyword overrides win over metadata.

    ``on_progress(done, total)`` reports readings taken in (a progress bar); the
    answer is the same with or without it.

    Known overrides: the keys of `SETTINGS` (``kind``, ``sensor_height_m``,
    ``lane_spacing_m``, ``position_lag_s``, ``field_total_nT``, ``latitude``,
    ``base``, ...). An unknown name raises TypeError listing the known ones; a
    value that cannot be used raises `ProcessingError` (a ValueError).
    """
    settings = resolve_settings(survey, overrides)
    warnings: list[str] = []
    x = np.asarray(survey.x, dtype=np.float64)
    y = np.asarray(survey.y, dtype=np.float64)
    v = np.asarray(survey.value, dtype=np.float64)
    t = None if survey.t is None else np.asarray(survey.t, dtype=np.float64)
    kind = str(settings.geometry["kind"])
    lanes = survey_lanes(x, y, t, survey.lane, settings.config.lane_spacing_m)

    lag_raw, lag_src = _pick("position_lag_s", overrides, survey.metadata)
    lag_s, lag_source = 0.0, lag_src
    if isinstance(lag_raw, str) and lag_raw.strip().lower() == "auto":
        from acquisition.dsp.lag import LagError, estimate_lag
        from acquisition.forward import SensorGeometry

        if t is None:
            raise ProcessingError("position_lag_s auto needs time stamps (a t column): the "
                                  "lag is a time; give it in seconds, or add times")
        try:
            est = estimate_lag(t, x, y, v, lanes,
                               SensorGeometry.from_geometry(settings.geometry,
                                                            settings.grid_field))
        except (LagError, ValueError) as exc:
            raise ProcessingError(str(exc)) from None
        lag_s, lag_source = est.lag_s, f"auto ({est.windows} signals fitted)"
    elif lag_raw is not None:
        lag_s = _number("position_lag_s", lag_raw, lag_src)
        if abs(lag_s) > 10.0:
            raise ProcessingError(f"position_lag_s: {lag_s} s is not a position lag "
                                  "(expected a few tenths of a second)")
    if lag_s != 0.0:
        from acquisition.dsp.lag import LagError, apply_lag

        if t is None:
            raise ProcessingError("position_lag_s needs time stamps (a t column)")
        try:
            x, y = apply_lag(t, x, y, lanes, lag_s)
        except LagError as exc:
            raise ProcessingError(str(exc)) from None

    diurnal = None
    if _given(overrides.get("base")):
        if "gradient" in kind:
            raise ProcessingError(f"a base station corrects total-field readings; a {kind} "
                                  "survey needs none (the two sensors see the same diurnal "
                                  "change and it cancels)")
        if t is None:
            raise ProcessingError("a base-station correction needs the readings' times "
                                  "(a t column)")
        tb, vb, what = read_base(overrides["base"])
        corr, diurnal, outside = diurnal_correction(t, tb, vb, what)
        v = v - corr
        if outside:
            warnings.append(f"{outside} readings lie outside the base record's times and got "
                            "its nearest value")

    spacing = measure_lane_spacing(x, y, lanes)
    w = coverage_warning(spacing, float(settings.geometry["sensor_height_m"]))
    if w:
        warnings.append(w)
    try:
        res = _process_arrays(x, y, v, t=t, lane=survey.lane, geometry=settings.geometry,
                              field=settings.grid_field, config=settings.config,
                              on_progress=on_progress)
    except ValueError as exc:
        raise ProcessingError(str(exc)) from None
    res.targets = _flag_beyond_ordnance(res.targets)
    res.under_threshold = _flag_beyond_ordnance(res.under_threshold)
    res.explained = _flag_beyond_ordnance(res.explained)
    beyond = sum(1 for t_ in res.targets if "beyond_ordnance" in t_.flags)
    if beyond:
        warnings.append(f"{beyond} signal(s) with moments beyond any ordnance "
                        f"(>= {BEYOND_ORDNANCE_AM2:g} A m2): geology or infrastructure, "
                        "or a fit that lanes this far apart cannot constrain; flagged "
                        "beyond_ordnance, class geology_or_infrastructure")
    return ProcessedSurvey(result=res, settings=settings, frame=survey.frame, survey=survey,
                           warnings=warnings, lag_s=lag_s, lag_source=lag_source,
                           diurnal_range_nT=diurnal, measured_lane_spacing_m=spacing)
