"""Reader for Geosoft XYZ files (Oasis montaj ASCII export), plug-in ``geosoft-xyz``.

Layout (docs/formats.md)::

    / comment lines start with a slash
    /      X           Y          MAG
    LINE 10
      713000.00  1861000.00   43612.4
      713000.00  1861000.50         *
    TIE 900
      ...

``LINE``/``TIE`` records (any case) start a line; their number becomes the
lane. Data rows are whitespace-separated numbers; ``*`` is Geosoft's dummy (no
value): a row with a dummy position or value is counted as a no-data row.
Column names come from the last ``/`` comment before the data that has as many
names as the rows have numbers; the value column is the one named by
``--columns value=NAME``, else guessed from common names (MAG, TMI, GRAD...),
else the third column. Positions as in the generic table reader.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from acquisition.readers import BadRow, Positions, RawSurvey
from acquisition.readers._table import PROJECTED_NAMES, positions_kind
from acquisition.readers._text import (
    check_bad_share,
    head_lines,
    is_number,
    name_and_unit,
    no_rows,
    read_lines,
)
from acquisition.readers.table import GUESS, KEYS

LINE_RE = re.compile(r"^(line|tie)\s+([^\s]+)\s*$", re.I)
DUMMY = "*"


def _row_numbers(s: str) -> list[str] | None:
    toks = s.split()
    if toks and all(tk == DUMMY or is_number(tk) for tk in toks):
        return toks
    return None


class GeosoftXYZReader:
    """Geosoft XYZ: ``/`` comments, LINE/TIE records, whitespace columns, ``*`` dummies."""

    name: ClassVar[str] = "geosoft-xyz"
    description: ClassVar[str] = "Geosoft XYZ (LINE/TIE records, / comments, * dummies)"
    priority: ClassVar[int] = 25

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        lines = head_lines(head)
        has_line = any(LINE_RE.match(s) for s in lines)
        rows = [s for s in lines if _row_numbers(s)]
        other = [s for s in lines if not (s.startswith("/") or LINE_RE.match(s)
                                          or _row_numbers(s))]
        return has_line and len(rows) >= 1 and len(other) <= 0.2 * len(lines)

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        from acquisition.survey import SurveyReadError

        if stream:
            raise SurveyReadError(path, None, "a Geosoft XYZ file holds one stream; pick the "
                                  "value column with --columns value=NAME")
        lines = read_lines(path)
        comments: list[str] = []
        ncol = 0
        for s in (raw.strip() for raw in lines):
            if s.startswith("/"):
                comments.append(s.lstrip("/").strip())
                continue
            toks = _row_numbers(s)
            if toks:
                ncol = len(toks)
                break
        if ncol < 3:
            raise SurveyReadError(path, None, "no data row of 3 or more numbers (expected "
                                  "X Y VALUE columns under a LINE record)")
        names: list[str] = []
        for c in reversed(comments):
            toks = c.split()
            if len(toks) == ncol and not all(is_number(tk) for tk in toks):
                names = toks
                break
        keys = [name_and_unit(n)[0] for n in names]
        wanted, notes = _pick(path, names, keys, columns)
        if max(wanted.values()) >= ncol:
            raise SurveyReadError(path, None, f"rows have {ncol} columns; a mapped column is "
                                  "beyond them")
        out: dict[str, list[float]] = {k: [] for k in wanted}
        lane_out: list[int] = []
        good: list[int] = []
        bad: list[BadRow] = []
        n_data = 0
        lane = 0
        lane_ids: dict[str, int] = {}
        items = list(wanted.items())
        for i, raw in enumerate(lines):
            s = raw.strip()
            if not s or s.startswith("/"):
                continue
            m = LINE_RE.match(s)
            if m:
                tag = m.group(2)
                digits = re.sub(r"[^0-9]", "", tag)
                lane = int(digits[-9:]) if digits else lane_ids.setdefault(tag, len(lane_ids))
                continue
            n_data += 1
            toks = s.split()
            if len(toks) != ncol:
                bad.append(BadRow(i + 1, f"{len(toks)} fields, expected {ncol}"))
                continue
            vals: list[float] = []
            dummy = None
            try:
                for key, idx in items:
                    tk = toks[idx]
                    if tk == DUMMY:
                        dummy = key
                        break
                    v = float(tk)
                    if not np.isfinite(v):
                        raise ValueError
                    vals.append(v)
            except ValueError:
                bad.append(BadRow(i + 1, f"{toks[idx]!r} is not a number or '*'"))
                continue
            if dummy is not None:
                bad.append(BadRow(i + 1, f"dummy '*' in the {dummy} column", no_data=True))
                continue
            for (key, _), v in zip(items, vals, strict=True):
                out[key].append(v)
            lane_out.append(lane)
            good.append(i + 1)
        check_bad_share(path, bad, n_data, max_bad_share)
        if not good:
            no_rows(path, bad, "rows of numbers under LINE records")
        cols = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
        md: dict[str, str] = {}
        unit = name_and_unit(names[wanted["value"]])[1] if names else None
        if unit:
            md["value_unit"] = unit
        positions: Positions
        if "lat" in cols:
            ok = (np.abs(cols["lat"]) <= 90) & (np.abs(cols["lon"]) <= 180)
            for j in np.flatnonzero(~ok):
                bad.append(BadRow(good[j], "latitude/longitude out of range"))
            x, y, positions = cols["lon"][ok], cols["lat"][ok], "geographic"
        else:
            ok = np.ones(len(good), dtype=bool)
            named = bool(keys) and any(keys[wanted[k]] in PROJECTED_NAMES for k in ("x", "y"))
            x, y = cols["x"], cols["y"]
            positions = positions_kind(x, y, named)
        if not ok.any():
            no_rows(path, bad, "positions in range")
        bad.sort(key=lambda b: b.line)
        return RawSurvey(x=x, y=y, value=cols["value"][ok],
                         t=cols["t"][ok] if "t" in cols else None,
                         lane=np.asarray(lane_out, dtype=np.int64)[ok], metadata=md,
                         bad_rows=bad, line_numbers=np.asarray(good, dtype=np.int64)[ok],
                         positions=positions,
                         rows_seen=n_data, notes=notes)


def _pick(path: Path, names: list[str], keys: list[str], columns: dict[str, str] | None
          ) -> tuple[dict[str, int], list[str]]:
    """Our names -> column indices for a Geosoft file (mapping, names, or position)."""
    from acquisition.survey import SurveyReadError

    def find(name: str) -> int | None:
        w = name.strip().lower()
        for i, (n, k) in enumerate(zip(names, keys, strict=True)):
            if n.lower() == w or k == w:
                return i
        return None

    wanted: dict[str, int] = {}
    notes: list[str] = []
    for key, name in (columns or {}).items():
        if key not in KEYS or key == "lane":
            raise SurveyReadError(path, None, f"--columns: unknown key {key!r} for a Geosoft "
                                  "file (expected x, y, lat, lon, value, t)")
        i = find(name)
        if i is None:
            raise SurveyReadError(path, None, f"--columns: no column {name!r} (names found: "
                                  f"{', '.join(names) or 'none: the file has no name line'})")
        wanted[key] = i
    if not any(k in wanted for k in ("x", "y", "lat", "lon")):
        for pair in (("x", "y"), ("lat", "lon")):
            found = [next((i for c in GUESS[k] if (i := find(c)) is not None), None)
                     for k in pair]
            if all(i is not None for i in found):
                wanted.update({k: i for k, i in zip(pair, found, strict=True) if i is not None})
                break
        else:
            wanted.update({"x": 0, "y": 1})
            notes.append("Geosoft: no X/Y names found; the first two columns read as x, y")
    if "value" not in wanted:
        i = next((i for c in GUESS["value"] if (i := find(c)) is not None), None)
        if i is None:
            i = 2
            notes.append(f"Geosoft: value read from column 3"
                         f"{' (' + names[2] + ')' if names else ''}: name it with "
                         "--columns value=NAME")
        wanted["value"] = i
    return wanted, notes
