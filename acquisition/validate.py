"""Range checks for settings, options and metadata values, with one-line messages.

A mistyped setting must never turn into a quiet all-clear (a threshold of 0,
a lane spacing of 0 silently replaced, a negative reach). Library code checks
each value here, where it is taken in (dataclass ``__post_init__``, option and
metadata parsing), so every caller, not only the command line, gets the same
refusal: a `SettingError` naming the key, the value given and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from acquisition.errors import SettingError


@dataclass(frozen=True, slots=True)
class Range:
    """Allowed values of a number: bounds (None = open-ended), each inclusive or not."""

    lo: float | None = None
    hi: float | None = None
    lo_incl: bool = True
    hi_incl: bool = True
    integer: bool = False

    def __contains__(self, v: float) -> bool:
        if not math.isfinite(v):
            return False
        if self.integer and v != int(v):
            return False
        if self.lo is not None and (v < self.lo or (v == self.lo and not self.lo_incl)):
            return False
        return not (self.hi is not None and (v > self.hi or (v == self.hi and not self.hi_incl)))

    def describe(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>=' if self.lo_incl else '>'} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"{'<=' if self.hi_incl else '<'} {self.hi:g}")
        what = "a finite integer" if self.integer else "a finite number"
        return what + (" " + " and ".join(parts) if parts else "")


def finite_float(label: str, value: Any, error: type[Exception] = SettingError) -> float:
    """`value` as a finite float, else `error` naming `label` and the value given.

    The one place where a user's text or number becomes a float: coordinates,
    settings, metadata and sensor geometry all refuse "wide" and "nan" the same
    way, each with its own error class (a `CoordinateError` for a grid origin,
    a `ProcessingError` for a setting...).
    """
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise error(f"{label}: {value!r} is not a number") from None
    if not math.isfinite(f):
        raise error(f"{label}: must be finite, got {value!r}")
    return f


def positive(hi: float | None = None) -> Range:
    return Range(0.0, hi, lo_incl=False)


def non_negative(hi: float | None = None) -> Range:
    return Range(0.0, hi)


def check(name: str, value: Any, allowed: Range) -> float:
    """`value` as a float when it lies in `allowed`, else a `SettingError`."""
    # True is 1 to float() and "5" is 5: neither is a number a caller meant
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingError(f"{name} = {value!r} is not a number (allowed: {allowed.describe()})")
    v = float(value)
    if v not in allowed:
        raise SettingError(f"{name} = {value!r} is out of range (allowed: {allowed.describe()})")
    return v


def check_optional(name: str, value: Any, allowed: Range) -> float | None:
    """Like `check`, letting None through (a setting left to be found from the data)."""
    return None if value is None else check(name, value, allowed)


def metadata_number(md: dict[str, Any], key: str, default: float | None,
                    allowed: Range) -> float | None:
    """A numeric metadata value (``# key: value`` lines), checked; `default` when absent."""
    v = md.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        return default
    name = f"metadata {key}"
    if isinstance(v, str):
        try:
            num = float(v)
        except ValueError:
            raise SettingError(f"{name} = {v!r} is not a number "
                               f"(allowed: {allowed.describe()})") from None
        if num not in allowed:
            raise SettingError(f"{name} = {v!r} is out of range (allowed: {allowed.describe()})")
        return num
    return check(name, v, allowed)


#: Sensor geometry keys (docs/formats.md): heights and separations in metres.
GEOMETRY_RANGES: dict[str, Range] = {
    "sensor_height_m": positive(10.0),
    "sensor_separation_m": positive(10.0),
}
GEOMETRY_KINDS = ("gradient", "total", "tf_gradient")


def check_geometry(geometry: dict[str, Any]) -> dict[str, Any]:
    """Refuse a sensor geometry with an unknown kind or a height/separation out of range."""
    kind = geometry.get("kind", "gradient")
    if kind not in GEOMETRY_KINDS:
        raise SettingError(f"kind = {kind!r} is not known (allowed: "
                           + ", ".join(repr(k) for k in GEOMETRY_KINDS) + ")")
    for key, allowed in GEOMETRY_RANGES.items():
        if geometry.get(key) is not None:
            check(key, geometry[key], allowed)
    return geometry


#: Physical bounds of a reading (docs/formats.md units). Beyond them a value is a
#: damaged or mistyped one, rejected like a non-number and counted, never a
#: huge number that overflows the fits: local or projected positions (UTM
#: northings reach 1e7 m), depths below ground, and readings (the Earth's
#: whole field is ~6e4 nT).
POSITION_LIMIT_M = 1e8
DEPTH_RANGE_M = (-100.0, 1000.0)
READING_LIMIT_NT = 1e7

