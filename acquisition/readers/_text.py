"""Helpers shared by the text-format readers: decoding, lines, fields, numbers, units, dates.

Every text reader follows the same rules (docs/formats.md): a UTF-8 byte-order
mark is dropped, only ``\\n``, ``\\r\\n`` and ``\\r`` end a line, line numbers
are 1-based in the original file, a row that cannot be read becomes a `BadRow`
and never stops the read, and the read fails only when the damaged rows exceed
``max_bad_share`` of the data rows (`check_bad_share`).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from pathlib import Path

import numpy as np

from acquisition.readers import BadRow

UTF8_BOM = b"\xef\xbb\xbf"
#: Lines of a file's head looked at by the sniffers.
SNIFF_LINES = 40
#: Bytes of the head `read_survey` gives the sniffers (acquisition.survey.SNIFF_BYTES).
HEAD_BYTES = 64 * 1024


def decode(data: bytes) -> str:
    """File bytes as text: BOM dropped, UTF-8 with undecodable bytes replaced (then rejected)."""
    return data.removeprefix(UTF8_BOM).decode("utf-8", errors="replace")


def split_lines(text: str) -> list[str]:
    """Lines ended by ``\\n``, ``\\r\\n`` or ``\\r`` only.

    str.splitlines() would also split on form feeds and other separators that a
    damaged row may hold, and shift every later line number.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def read_lines(path: Path) -> list[str]:
    """The file's lines (see `split_lines`); a `SurveyReadError` if it cannot be read."""
    from acquisition.survey import SurveyReadError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SurveyReadError(path, None, f"cannot read: {exc.strerror or exc}") from None
    return split_lines(decode(data))


def head_lines(head: bytes, n: int = SNIFF_LINES) -> list[str]:
    """The first ``n`` non-blank lines of a file's head, stripped.

    A head as long as `HEAD_BYTES` was cut there, so its last line may be
    partial: it is dropped.
    """
    lines = split_lines(decode(head))
    if len(head) >= HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]
    return [s.strip() for s in lines if s.strip()][:n]


# -- fields and numbers ----------------------------------------------------------
DELIMITERS = (";", "\t", ",", " ")


def split_fields(line: str, delim: str) -> list[str]:
    """Fields of one line; ``" "`` means any run of whitespace."""
    if delim == " ":
        return line.split()
    return [f.strip() for f in line.split(delim)]


def sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter that splits ``lines`` into the same number (>= 2) of fields.

    Tried in order ``;``, tab, ``,``, whitespace, so that a ``;`` file with
    decimal commas is not taken for a comma file. None when no delimiter fits
    at least 80 % of the lines.
    """
    if not lines:
        return None
    for d in DELIMITERS:
        counts = [len(split_fields(s, d)) for s in lines]
        best = max(set(counts), key=counts.count)
        if best >= 2 and counts.count(best) >= 0.8 * len(counts):
            return d
    return None


def to_float(tok: str, *, decimal_comma: bool = False) -> float:
    """A finite number from a text field; ValueError otherwise (NaN, inf, 1e999, text)."""
    s = tok.strip()
    if decimal_comma and "," in s and "." not in s:
        s = s.replace(",", ".")
    try:
        v = float(s)
    except ValueError:
        raise ValueError(f"{tok!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{tok!r} is not a finite number")
    return v


def is_number(tok: str) -> bool:
    try:
        to_float(tok, decimal_comma=True)
    except ValueError:
        return False
    return True


_UNIT_RE = re.compile(r"^(.*?)\s*[\[(]\s*([^\])]*)\s*[\])]\s*$")
_UNITS = {"nt": "nT", "nt/m": "nT/m", "pt": "pT", "t": "T"}


def name_and_unit(header: str) -> tuple[str, str | None]:
    """``"Grad [nT/m]"`` -> ``("grad", "nT/m")``; the unit only when it is one we convert."""
    m = _UNIT_RE.match(header.strip())
    if not m:
        return header.strip().lower(), None
    unit = _UNITS.get(m.group(2).strip().lower().replace(" ", ""))
    return m.group(1).strip().lower(), unit


# -- dates and times -------------------------------------------------------------
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d.%m.%y", "%m/%d/%Y", "%m/%d/%y")


def parse_date(tok: str, formats: tuple[str, ...] = _DATE_FORMATS) -> _dt.date:
    """A calendar date in one of ``formats``; ValueError otherwise."""
    s = tok.strip()
    for f in formats:
        try:
            return _dt.datetime.strptime(s, f).date()
        except ValueError:
            continue
    raise ValueError(f"{tok!r} is not a date (expected e.g. 2026-03-14 or 14.03.2026)")


_TIME_RE = re.compile(r"^([0-9]{1,2}):([0-9]{2}):([0-9]{2}(?:[.,][0-9]*)?)$")


def parse_clock(tok: str) -> float:
    """``HH:MM:SS[.fff]`` (decimal point or comma) -> seconds of the day; ValueError otherwise."""
    m = _TIME_RE.match(tok.strip())
    if not m:
        raise ValueError(f"{tok!r} is not a time of day (expected HH:MM:SS.s)")
    h, mi, sec = int(m.group(1)), int(m.group(2)), float(m.group(3).replace(",", "."))
    if h > 23 or mi > 59 or sec >= 61:
        raise ValueError(f"{tok!r} is not a time of day (hours 0-23, minutes and seconds 0-59)")
    return h * 3600.0 + mi * 60.0 + sec


def epoch_seconds(day: _dt.date, seconds_of_day: float) -> float:
    """Seconds since 1970-01-01 UTC of a date and a time of day (the file's clock, taken as UTC)."""
    midnight = _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC).timestamp()
    return midnight + seconds_of_day


# -- rejects ---------------------------------------------------------------------
def check_bad_share(path: Path, bad: list[BadRow], n_data: int, max_bad_share: float) -> None:
    """Raise `SurveyReadError` when damaged rows exceed ``max_bad_share`` of the data rows.

    Rows marked ``no_data`` (no GNSS fix, dummies) are well formed and do not count.
    """
    from acquisition.survey import SurveyReadError

    damaged = [b for b in bad if not b.no_data]
    if n_data and len(damaged) > max_bad_share * n_data:
        first = damaged[0]
        raise SurveyReadError(path, first.line, f"{first.reason}; {len(damaged)} of {n_data} "
                              f"data rows are bad (limit {max_bad_share:.0%})")


def no_rows(path: Path, bad: list[BadRow], expected: str) -> None:
    """Raise `SurveyReadError` for a file with no usable row, naming the first reject."""
    from acquisition.survey import SurveyReadError

    if bad:
        b = bad[0]
        raise SurveyReadError(path, b.line, f"no usable row: {b.reason} "
                              f"({len(bad)} rows rejected)")
    raise SurveyReadError(path, None, f"no data rows (expected {expected})")


def as_array(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)
