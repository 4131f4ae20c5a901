"""Reader for MagMap's X,Y,TOP_RDG,BOTTOM_RDG,VRT_GRAD exports (G-858), plug-in ``magmap-xyz``.

MagMap exports a G-858 survey as a table (Surfer ``.dat``, comma or
whitespace separated) with a header row such as::

    X,Y,TOP_RDG,BOTTOM_RDG,VRT_GRAD
    58,49.887,45459.079,45463.551,6.88

``TOP_RDG`` and ``BOTTOM_RDG`` are the two caesium sensors' total fields (nT);
``VRT_GRAD`` is (BOTTOM_RDG - TOP_RDG) / separation in **nT/m** (checked on
public exports: the ratio is the sensor separation, e.g. 0.65 m). So:

- with both readings: value = BOTTOM_RDG - TOP_RDG (nT), ``kind: tf_gradient``,
  and the separation is measured from VRT_GRAD when present (metadata
  ``sensor_separation_m``);
- with VRT_GRAD alone: value in nT/m (``value_unit`` fixed by the format),
  converted to nT by `read_survey` with the separation (metadata, else 0.65 m);
- with one reading column: a total-field survey (``kind: total``).

X, Y are MagMap's local grid metres (eastings/northings when they are too large
for a taped grid: then a CRS is needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from acquisition.readers import RawSurvey
from acquisition.readers._table import (
    PROJECTED_NAMES,
    find_table,
    positions_kind,
    read_columns,
    unknown_column,
)
from acquisition.readers._text import check_bad_share, head_lines, no_rows, read_lines

MAGMAP_COLUMNS = ("top_rdg", "bottom_rdg", "vrt_grad")
class MagMapXYZReader:
    """MagMap export table: X, Y and TOP_RDG / BOTTOM_RDG / VRT_GRAD columns."""

    name: ClassVar[str] = "magmap-xyz"
    description: ClassVar[str] = ("Geometrics MagMap export X,Y,TOP_RDG,BOTTOM_RDG,VRT_GRAD "
                                  "(G-858; VRT_GRAD in nT/m)")
    priority: ClassVar[int] = 20

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        t = find_table(head_lines(head))
        return (t is not None and t.find("x") is not None and t.find("y") is not None
                and any(t.find(c) is not None for c in MAGMAP_COLUMNS))

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        from acquisition.survey import SurveyReadError

        if columns:
            raise SurveyReadError(path, None, "a MagMap export has fixed columns; --columns "
                                  "is for generic CSV/XYZ files (--from table)")
        if stream:
            raise SurveyReadError(path, None, "a MagMap export holds one stream")
        t = find_table(read_lines(path))
        if t is None:
            raise SurveyReadError(path, 1, "no header row (expected X,Y,TOP_RDG,BOTTOM_RDG,"
                                  "VRT_GRAD)")
        ix, iy = t.find("x"), t.find("y")
        if ix is None or iy is None:
            raise unknown_column(path, t, "X and Y", "a MagMap export starts X,Y")
        it, ib, ig = (t.find(c) for c in MAGMAP_COLUMNS)
        wanted = {"x": ix, "y": iy}
        for k, i in (("top", it), ("bottom", ib), ("grad", ig)):
            if i is not None:
                wanted[k] = i
        if len(wanted) == 2:
            raise unknown_column(path, t, "TOP_RDG, BOTTOM_RDG or VRT_GRAD", "")
        cols, lines_ok, bad, n_data = read_columns(t, wanted)
        check_bad_share(path, bad, n_data, max_bad_share)
        if lines_ok.size == 0:
            no_rows(path, bad, "rows of numbers under the header")
        md = dict(t.metadata)
        md["instrument"] = "Geometrics G-858 (MagMap export)"
        notes: list[str] = []
        extra: dict[str, np.ndarray] = {}
        unit = "nT"
        if "top" in cols and "bottom" in cols:
            value = np.round(cols["bottom"] - cols["top"], 6)  # float noise off, 1e-6 nT
            md["kind"] = "tf_gradient"
            extra = {"top_rdg": cols["top"], "bottom_rdg": cols["bottom"]}
            if "grad" in cols:
                sep = _separation(value, cols["grad"])
                if sep is not None:
                    md["sensor_separation_m"] = f"{sep:g}"
                    notes.append(f"MagMap: sensor separation {sep:g} m measured from "
                                 "(BOTTOM_RDG - TOP_RDG) / VRT_GRAD")
            notes.append("MagMap: value = BOTTOM_RDG - TOP_RDG (nT), kind tf_gradient")
        elif "grad" in cols:
            value = cols["grad"]
            unit = "nT/m"
            md["kind"] = "tf_gradient"
            notes.append("MagMap: VRT_GRAD is nT/m; converted to nT with the sensor separation")
        else:
            key = "top" if "top" in cols else "bottom"
            value = cols[key]
            md["kind"] = "total"
            notes.append(f"MagMap: one sensor ({key.upper()}_RDG), kind total")
        named = t.keys[ix] in PROJECTED_NAMES or t.keys[iy] in PROJECTED_NAMES
        return RawSurvey(x=cols["x"], y=cols["y"], value=value, metadata=md, extra=extra,
                         bad_rows=bad, line_numbers=lines_ok,
                         positions=positions_kind(cols["x"], cols["y"], named),
                         value_unit=unit, rows_seen=n_data, notes=notes)


def _separation(diff: np.ndarray, grad: np.ndarray) -> float | None:
    """The sensor separation (m) that VRT_GRAD implies: median of diff / grad, to the mm.

    Only rows where the gradient is well above the export's rounding (0.5 nT/m)
    count; None when there are too few of them or they disagree by more than 2 %.
    """
    ok = np.abs(grad) > 0.5
    if ok.sum() < 3:
        return None
    r = diff[ok] / grad[ok]
    med = float(np.median(r))
    if not (0.05 < med < 10.0):
        return None
    if float(np.median(np.abs(r - med))) > 0.02 * med:
        return None
    return round(med, 3)
