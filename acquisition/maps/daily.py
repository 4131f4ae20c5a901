"""The daily log: area surveyed, signals and targets by class, per team and day.

``uxo daily DIR`` reads a day's folder: survey files (any format `read_survey`
knows, recordings included) and target lists (``# uxo-targets`` CSVs). A
target list belongs to the survey its ``# source:`` line names (what ``uxo
process`` writes), or else to the survey whose file name starts its own; a
survey without a target list is processed. The team and the day come from the
survey's metadata (``team``, ``date``), else from its time stamps, else from
the file's modification date. Area is the strips walked (lane length times
lane spacing, as the DSP measures a survey's area).
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.events import SIZE_CLASSES
from acquisition.maps.coverage import lane_runs
from acquisition.maps.inputs import InputError, lane_spacing, load_survey
from acquisition.maps.levelled import Levelled, lane_numbers
from acquisition.maps.targets import MapTarget, from_results, read_target_list
from acquisition.progress import progress

CLASSES = tuple(name for name, _, _ in SIZE_CLASSES)
LOG_COLUMNS = ("date", "team", "surveys", "area_m2", "area_ha", "signals", *CLASSES,
               "unclassified", "files")
TARGETS_MAGIC = "# uxo-targets"


@dataclass(slots=True)
class SurveyDay:
    path: Path
    team: str
    date: str
    area_m2: float
    targets: list[MapTarget]
    targets_from: str


@dataclass(slots=True)
class LogRow:
    date: str
    team: str
    surveys: list[str] = field(default_factory=list)
    area_m2: float = 0.0
    signals: int = 0
    by_class: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _is_target_list(p: Path) -> bool:
    try:
        with p.open(encoding="utf-8-sig", errors="replace") as f:
            return f.readline().startswith(TARGETS_MAGIC)
    except OSError:
        return False


def _source_of(p: Path) -> str | None:
    with p.open(encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                return None
            k, _, v = line[1:].partition(":")
            if k.strip() == "source":
                return v.strip()
    return None


def walked_area(s: Any) -> float:
    ok = np.isfinite(s.x) & np.isfinite(s.y)
    lane = None if s.lane is None else np.asarray(s.lane, dtype=np.float64)
    if lane is not None:
        ok &= np.isfinite(lane)
    spacing = lane_spacing(s)
    t = None if s.t is None else np.asarray(s.t, dtype=np.float64)[ok]
    lanes = lane_numbers(s.x[ok], s.y[ok], None if lane is None else lane[ok], t, spacing)
    lev = Levelled(x=s.x[ok], y=s.y[ok], value=s.value[ok], lane=lanes, t=t)
    return sum(r.length_m for r in lane_runs(lev)) * spacing


def _day(s: Any, path: Path) -> str:
    d = (s.metadata.get("date") or "").strip()
    if d:
        return d[:10]
    if s.t is not None:
        f = np.asarray(s.t, dtype=np.float64)
        f = f[np.isfinite(f)]
        if f.size and f.min() > 1e9:
            return dt.datetime.fromtimestamp(float(f.min()), dt.UTC).strftime("%Y-%m-%d")
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).strftime("%Y-%m-%d")


def collect(folder: Path, args: Any = None, *, warn: Any = None) -> list[SurveyDay]:
    """Every survey of ``folder`` with its team, day, walked area and targets."""
    from acquisition.maps.inputs import process

    warn = warn or (lambda m: print(m, file=sys.stderr))
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    lists = [p for p in files if p.suffix.lower() == ".csv" and _is_target_list(p)]
    surveys = [p for p in files if p not in lists
               and p.suffix.lower() in (".csv", ".h5", ".hdf5", ".txt", ".xyz", ".dat")]
    by_source = {src: p for p in lists if (src := _source_of(p))}
    out: list[SurveyDay] = []
    for p in progress(surveys, "daily log", unit="survey"):
        try:
            s = load_survey(str(p), args)
        except InputError as exc:
            warn(f"uxo daily: skipped {exc}")
            continue
        tl = by_source.get(p.name) or next(
            (q for q in lists if q.stem.startswith(p.stem) and q != p), None)
        if tl is not None:
            targets, src = read_target_list(tl, s.frame), tl.name
        else:
            targets, src = from_results(process(s, args).targets), "processed"
        out.append(SurveyDay(path=p, team=(s.metadata.get("team") or "").strip() or "unknown",
                             date=_day(s, p), area_m2=walked_area(s), targets=targets,
                             targets_from=src))
    if not out:
        raise InputError(f"{folder}: no survey file found (expected survey CSVs or "
                         "recordings, and target lists beside them)")
    return out


def daily_rows(days: list[SurveyDay]) -> list[LogRow]:
    rows: dict[tuple[str, str], LogRow] = {}
    for d in days:
        r = rows.setdefault((d.date, d.team), LogRow(date=d.date, team=d.team))
        r.surveys.append(d.path.name)
        r.area_m2 += d.area_m2
        r.signals += len(d.targets)
        for t in d.targets:
            r.by_class[t.size_class if t.size_class in CLASSES else "unclassified"] += 1
    return [rows[k] for k in sorted(rows)]


def write_log(path: str | Path, rows: list[LogRow]) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(LOG_COLUMNS)
        for r in rows:
            w.writerow([r.date, r.team, len(r.surveys), f"{r.area_m2:.1f}",
                        f"{r.area_m2 / 1e4:.4f}", r.signals,
                        *(r.by_class.get(c, 0) for c in CLASSES),
                        r.by_class.get("unclassified", 0), ";".join(r.surveys)])
    return path
