"""Base-station records for diurnal correction: a GSM-19 dump or a ``t,value`` CSV.

A base magnetometer left still near the survey logs the Earth field's time
variation (diurnal change, storms); `acquisition.processing` removes it from
total-field readings. Two file kinds are read here:

* a GEM GSM-19 memory dump (base station v6/v7), decoded by
  `acquisition.drivers.gsm19.decode_gsm19_dump`; times are UTC epoch seconds
  when the dump's header gives the date, else seconds since midnight;
* a CSV with columns ``t`` (seconds) and ``value`` (nT), ``#`` comment lines
  allowed, in the survey file's own clock.

Unreadable rows are errors naming the file and line: a base record with holes
would correct the survey wrongly without a word.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np


class BaseFileError(ValueError):
    """A base-station file that cannot be used; the message names the file and line."""


def _read_csv(path: Path, text: str) -> tuple[np.ndarray, np.ndarray]:
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise BaseFileError(f"{path}: no base readings")
    head_no, head = lines[0]
    cols = [c.strip().lower() for c in next(csv.reader(io.StringIO(head)))]
    if "t" not in cols or "value" not in cols:
        raise BaseFileError(f"{path}:{head_no}: expected a header with columns t,value "
                            f"(or a GSM-19 dump), got {head.strip()[:60]!r}")
    it, iv = cols.index("t"), cols.index("value")
    t, v = [], []
    for no, ln in lines[1:]:
        row = next(csv.reader(io.StringIO(ln)))
        try:
            a, b = float(row[it]), float(row[iv])
        except (IndexError, ValueError):
            raise BaseFileError(f"{path}:{no}: expected numbers t,value, got "
                                f"{ln.strip()[:60]!r}") from None
        if not (math.isfinite(a) and math.isfinite(b)):
            raise BaseFileError(f"{path}:{no}: t and value must be finite")
        t.append(a)
        v.append(b)
    return np.array(t, dtype=np.float64), np.array(v, dtype=np.float64)


def _read_gsm19(path: Path, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    from acquisition.drivers.gsm19 import decode_gsm19_dump

    dump, rejects = decode_gsm19_dump(data)
    if rejects:
        r = rejects[0]
        raise BaseFileError(f"{path}:{r.line}: unreadable GSM-19 line ({r.reason}); "
                            f"{len(rejects)} such line(s)")
    if dump.n == 0:
        raise BaseFileError(f"{path}: no readings in the GSM-19 dump")
    ns = dump.utc_epoch_ns()
    if ns is None:
        ns = dump.time_ns
    return np.asarray(ns, dtype=np.float64) / 1e9, np.asarray(dump.field_nT, dtype=np.float64)


def read_base_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(t in s, total field in nT) of a base-station file (GSM-19 dump or t,value CSV)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BaseFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    low = first.lower()
    if low.startswith("/") or low.startswith("gem systems") or (
            first[:1].isdigit() and "," not in first):
        return _read_gsm19(path, data)
    return _read_csv(path, text)
