"""The record of a cleared area: one self-contained HTML (or PDF) file that opens offline.

It holds the site, dates, team, operator and instrument (metadata); the soil
calibration (or the noise and threshold the survey set itself); lanes walked
against the plan with coverage and gaps; the map; the dig list sorted for
safety; signal density per hectare by depth band with the procedure's class;
warnings where two detectors came closer than 7 m; and the recording's
integrity (as ``uxo verify``). Every number comes from the same library
calls the commands use: `inputs.process` (``uxo process``), the DSP's
`SurveyResult.density`, `coverage.coverage`, `recorder.integrity.verify`.
The HTML has no external reference: the map is an inline base64 PNG and the
style sheet is inline.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.maps.coverage import Coverage
from acquisition.maps.proximity import MIN_SEPARATION_M, CloseApproach, fmt_time
from acquisition.maps.targets import MapTarget

#: Metadata keys shown in the header, with their labels.
HEADER_KEYS = (("site", "Site"), ("date", "Date"), ("team", "Team"), ("operator", "Operator"),
               ("instrument", "Instrument"), ("serial", "Serial"))
SOIL_KEYS = (("soil_level_nT", "level, nT"), ("soil_white_noise_nT", "white noise, nT"),
             ("soil_noise_nT", "background (noise), nT"),
             ("soil_threshold_nT", "detection threshold, nT"), ("soil_detect_k", "k (sigmas)"),
             ("soil_samples", "readings used"))


@dataclass(slots=True)
class Integrity:
    status: str          # "ok", "changed", "broken", "n/a"
    detail: str


@dataclass(slots=True)
class ReportData:
    source: str
    metadata: dict[str, str]
    crs: str | None
    kind: str
    noise_nT: float
    threshold_nT: float
    area_m2: float
    lanes: int
    targets: list[MapTarget]
    density: list[dict[str, Any]]
    coverage: Coverage
    approaches: list[CloseApproach]
    detectors: int
    integrity: Integrity
    map_png: bytes
    dates: str


def integrity_of(path: str, fmt: str) -> Integrity:
    """`uxo verify`'s answer for a recording; n/a for a text file (no chain to check)."""
    if fmt != "recording":
        return Integrity("n/a", "a text survey file carries no integrity chain; check the "
                                "recording it came from with 'uxo verify'")
    from recorder.integrity import verify

    try:
        rep = verify(path)
    except OSError as exc:
        return Integrity("broken", f"cannot open as a recording: {exc}")
    links = sum(c.links for c in rep.chains)
    if rep.ok:
        return Integrity("ok", f"{len(rep.chains)} chains, {links} links verified, nothing "
                               f"changed (recording state: {rep.state or 'unknown'})")
    parts = [c.describe() for c in rep.changed] + list(rep.problems)
    return Integrity("changed" if rep.changed else "broken", "; ".join(parts))


def density_of(result: Any, targets: list[MapTarget]) -> list[dict[str, Any]]:
    """The DSP's density table (`SurveyResult.density`) for the listed targets."""
    return dataclasses.replace(result, targets=targets).density()


def survey_dates(md: dict[str, str], t: np.ndarray | None) -> str:
    if md.get("date"):
        return md["date"]
    if t is not None:
        f = t[np.isfinite(t)]
        if f.size and f.min() > 1e9:
            a, b = fmt_time(float(f.min()))[:10], fmt_time(float(f.max()))[:10]
            return a if a == b else f"{a} to {b}"
    return ""


# ---------------------------------------------------------------------- HTML
_CSS = """
body{font-family:sans-serif;margin:1.5em;color:#111;max-width:70em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:1px solid #999;
margin-top:1.4em}table{border-collapse:collapse;font-size:.9em}
td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left}th{background:#eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#064;font-weight:bold}.bad{color:#a00;font-weight:bold}.warn{background:#fed}
img{max-width:100%;border:1px solid #ccc}.small{font-size:.85em;color:#444}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _n(v: float, d: int = 2) -> str:
    return f"{v:.{d}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"


def _table(head: list[str] | None, rows: list[list[str]], numeric: set[int] | None = None,
           cls: str = "") -> str:
    numeric = numeric or set()
    out = [f'<table class="{cls}">']
    if head:
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f'<td class="n">{_e(c)}</td>' if i in numeric
                                    else f"<td>{_e(c)}</td>" for i, c in enumerate(r)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def dig_rows(d: ReportData) -> list[list[str]]:
    rows = []
    for k, t in enumerate(d.targets, start=1):
        rows.append([str(k), t.id, t.size_class or "–", f"{t.depth:.2f} ± "
                     f"{_n(t.sigma_depth)} m", _n(t.easting, 2), _n(t.northing, 2),
                     _n(t.lat, 7), _n(t.lon, 7), _n(t.x, 2), _n(t.y, 2), _n(t.moment, 3),
                     ";".join(t.flags)])
    return rows


def render_html(d: ReportData) -> str:
    md = d.metadata
    title = md.get("site") or Path(d.source).name
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Survey report: "
             f"{_e(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Survey report: {_e(title)}</h1>",
             f'<p class="small">Source: {_e(Path(d.source).name)} · CRS: '
             f"{_e(d.crs or 'none (local grid)')} · {_e(d.kind)} survey</p>"]
    # the date: metadata's, else the readings' (`survey_dates` already chose)
    head = [[label, (d.dates if k == "date" else md.get(k, "")) or "–"]
            for k, label in HEADER_KEYS]
    parts.append("<h2>Site and team</h2>" + _table(None, head))
    parts.append("<h2>Soil calibration</h2>")
    soil = [[label, md[k]] for k, label in SOIL_KEYS if md.get(k) not in (None, "")]
    if soil:
        parts.append(_table(["soil calibration", "value"], soil, {1}))
    else:
        parts.append("<p>No soil calibration in the survey's metadata: the threshold was "
                     "set from the survey's own data.</p>")
    parts.append(_table(["survey level", "value"], [
        ["noise used, nT", _n(d.noise_nT, 3)], ["detection threshold used, nT",
                                                _n(d.threshold_nT, 3)]], {1}))
    c = d.coverage
    parts.append("<h2>Lanes walked against the plan</h2>")
    x0, y0, x1, y1 = c.plan
    parts.append(_table(None, [
        ["plan (local m)", f"x {x0:.1f}..{x1:.1f}, y {y0:.1f}..{y1:.1f}"],
        ["lanes planned / walked", f"{c.planned_lanes} / {c.walked_lanes}"],
        ["coverage", f"{c.percent:.1f} % of {c.plan_m2:.0f} m²"],
        ["area walked (DSP)", f"{d.area_m2:.0f} m² ({d.area_m2 / 1e4:.3f} ha), {d.lanes} lanes"],
    ]))
    if c.missing_lanes:
        parts.append("<p class='warn'>Lanes not walked (local x of the lane line): "
                     + _e(", ".join(f"{v:.1f}" for v in c.missing_lanes)) + "</p>")
    if c.gaps:
        parts.append("<p>Gaps (uncovered patches of 1 m² or more):</p>" + _table(
            ["#", "x0", "y0", "x1", "y1", "area m²", "centre E", "centre N", "lat", "lon"],
            [[str(i), _n(g.x0, 1), _n(g.y0, 1), _n(g.x1, 1), _n(g.y1, 1), _n(g.area_m2, 1),
              _n(g.easting, 2), _n(g.northing, 2), _n(g.lat, 7), _n(g.lon, 7)]
             for i, g in enumerate(c.gaps, start=1)], set(range(1, 10))))
    else:
        parts.append("<p class='ok'>No gap of 1 m² or more in the plan.</p>")
    b64 = base64.b64encode(d.map_png).decode("ascii")
    parts.append(f"<h2>Map</h2><img alt='map of the levelled survey' "
                 f"src='data:image/png;base64,{b64}'>")
    parts.append(f"<h2>Dig list ({len(d.targets)} signals, bomb-sized and deep first)</h2>")
    parts.append(_table(["order", "id", "class", "depth ± σ", "easting", "northing", "lat",
                         "lon", "x", "y", "moment A m²", "flags"], dig_rows(d),
                        {0, 4, 5, 6, 7, 8, 9, 10}, cls="dig"))
    parts.append("<p class='small'>The size class follows the fitted moment only: "
                 "remanence can make a large object look small, so a small class is never "
                 "proof that a signal is safe.</p>")
    parts.append("<h2>Signal density per hectare</h2>")
    parts.append(_table(["depth band", "signals", "per ha", "class (1–4, special)"],
                        [[r["band"], str(r["count"]), _n(r["per_ha"], 1), str(r["class"])]
                         for r in d.density], {1, 2}, cls="density"))
    parts.append(f"<h2>Detector separation (at least {MIN_SEPARATION_M:g} m)</h2>")
    if d.detectors < 2:
        parts.append("<p>One detector in this session: nothing to check.</p>")
    elif not d.approaches:
        parts.append(f"<p class='ok'>{d.detectors} detectors; never closer than "
                     f"{MIN_SEPARATION_M:g} m.</p>")
    else:
        parts.append("<p class='bad'>Detectors came closer than "
                     f"{MIN_SEPARATION_M:g} m:</p>" + _table(
                         ["detectors", "from", "to", "closest m", "x", "y"],
                         [[f"{a.a} / {a.b}", fmt_time(a.t_start), fmt_time(a.t_end),
                           _n(a.min_distance_m, 1), _n(a.x, 1), _n(a.y, 1)]
                          for a in d.approaches], {3, 4, 5}, cls="warn"))
    cls = "ok" if d.integrity.status == "ok" else ("small" if d.integrity.status == "n/a"
                                                   else "bad")
    parts.append(f"<h2>Recording integrity</h2><p class='{cls}'>{_e(d.integrity.status)}: "
                 f"{_e(d.integrity.detail)}</p>")
    parts.append("<p class='small'>Written by uxo-acquisition.</p></body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------------- PDF
def text_lines(d: ReportData) -> list[str]:
    """The report as plain lines (the PDF's text pages)."""
    md = d.metadata
    out = [f"Survey report: {md.get('site') or Path(d.source).name}", ""]
    for k, label in HEADER_KEYS:
        out.append(f"{label:12} {(d.dates if k == 'date' else md.get(k, '')) or '-'}")
    out += ["", "Soil calibration"]
    soil = [f"  {label}: {md[k]}" for k, label in SOIL_KEYS if md.get(k) not in (None, "")]
    out += soil or ["  none in the metadata (threshold set from the survey's data)"]
    out.append(f"  noise used {_n(d.noise_nT, 3)} nT, threshold {_n(d.threshold_nT, 3)} nT")
    c = d.coverage
    out += ["", f"Lanes planned/walked {c.planned_lanes}/{c.walked_lanes}, coverage "
                f"{c.percent:.1f} % of {c.plan_m2:.0f} m2"]
    out += [f"  gap x {g.x0:.1f}..{g.x1:.1f} y {g.y0:.1f}..{g.y1:.1f} ({g.area_m2:.1f} m2)"
            f" E {_n(g.easting)} N {_n(g.northing)}" for g in c.gaps]
    out += ["", f"Dig list ({len(d.targets)}), bomb-sized and deep first:",
            "  #   id      class             depth +- sigma   easting       northing      "
            "lat          lon"]
    for r in dig_rows(d):
        out.append(f"  {r[0]:>3} {r[1]:<7} {r[2]:<17} {r[3]:<16} {r[4]:>12} {r[5]:>13} "
                   f"{r[6]:>12} {r[7]:>12}")
    out += ["", "Signal density per hectare:"]
    out += [f"  {r['band']:>8}: {r['count']:4d} signals {_n(r['per_ha'], 1):>8} per ha, class "
            f"{r['class']}" for r in d.density]
    out += ["", f"Detector separation: {len(d.approaches)} approaches under "
                f"{MIN_SEPARATION_M:g} m ({d.detectors} detectors)"]
    out += [f"  {a.a}/{a.b} {fmt_time(a.t_start)}-{fmt_time(a.t_end)} closest "
            f"{a.min_distance_m:.1f} m" for a in d.approaches]
    out += ["", f"Recording integrity: {d.integrity.status}: {d.integrity.detail}"]
    return out


def write_pdf(path: str | Path, d: ReportData, map_figure: Any) -> Path:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    path = Path(path)
    lines = text_lines(d)
    per_page = 70
    with PdfPages(path, metadata={"Title": f"Survey report {Path(d.source).name}",
                                  "Creator": "uxo-acquisition"}) as pdf:
        for k in range(0, len(lines), per_page):
            fig = Figure(figsize=(8.27, 11.69))
            fig.text(0.05, 0.97, "\n".join(lines[k:k + per_page]), family="monospace",
                     fontsize=6.5, va="top")
            pdf.savefig(fig)
        pdf.savefig(map_figure)
    return path
