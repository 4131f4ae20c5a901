"""Probe logs: reading borehole CSV files and conditioning each hole's log.

A `HoleLog` is what came off the winch: per-sample depths (lower sensor,
metres below ground, as counted), readings (axial gradient, or bx,by,bz) and
optionally times. `condition()` turns it into a `ProcessedLog` on a regular
depth grid:

1. depth registration: ``depth = scale * counted + offset`` (winch encoder
   calibration; defaults 1 and 0);
2. travel direction: logs are taken pulling up; a log run downwards is
   flagged ``logged_down`` and used; steps against the travel direction
   ("depths going backwards") are flagged ``depth_reversal`` with their
   depth ranges, and their samples kept (they re-measure the same depths);
3. speed check: when times are known, stretches where the probe moved more
   than ``max_sample_spacing_m`` between samples are flagged ``too_fast``;
4. offset and drift: a robust (biweight) low-order polynomial in time (or in
   sample order) is removed, so anomalies do not pull the baseline;
5. binning to ``bin_m`` (mean of the samples in each bin, at their mean depth);
   empty stretches longer than ``gap_m`` are gaps (flag ``gap``), never
   interpolated.

Nothing is dropped silently: each flag comes with a message in ``issues``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.errors import UxoValueError
from acquisition.forward import DEFAULT_SEPARATION_M
from acquisition.outfile import open_output
from acquisition.validate import DEPTH_RANGE_M, POSITION_LIMIT_M, READING_LIMIT_NT

VECTOR_COLUMNS = ("bx", "by", "bz")


class BoreholeFormatError(UxoValueError):
    """A borehole CSV that cannot be read (missing columns, too many bad rows)."""


@dataclass(slots=True)
class HoleLog:
    """One hole's raw probe log (depth as counted, readings in nT)."""

    hole: str
    x: float
    y: float
    depth: np.ndarray
    values: np.ndarray  # (n,) gradient or (n, 3) vector
    kind: str = "gradient"
    t: np.ndarray | None = None  # seconds, optional
    separation: float = DEFAULT_SEPARATION_M
    issues: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.depth = np.asarray(self.depth, dtype=float).reshape(-1)
        self.values = np.asarray(self.values, dtype=float)
        if self.kind not in ("gradient", "vector"):
            raise ValueError(f"kind must be gradient or vector, got {self.kind!r}")
        want = (len(self.depth),) if self.kind == "gradient" else (len(self.depth), 3)
        if self.values.shape != want:
            raise ValueError(f"values shape {self.values.shape} does not match {want}")
        if self.t is not None:
            self.t = np.asarray(self.t, dtype=float).reshape(-1)
            if len(self.t) != len(self.depth):
                raise ValueError("t and depth lengths differ")


@dataclass(slots=True)
class LogConfig:
    """How logs are conditioned (all lengths in metres)."""

    bin_m: float = 0.05
    gap_m: float = 0.2
    depth_scale: float = 1.0
    depth_offset_m: float = 0.0
    #: Per-hole (scale, offset) overrides of the depth registration.
    depth_registration: dict[str, tuple[float, float]] = field(default_factory=dict)
    drift_degree: int = 1
    #: Samples this close (in depth) to a first-pass anomaly do not set the baseline.
    anomaly_margin_m: float = 1.5
    max_sample_spacing_m: float = 0.05
    #: Steps against the travel direction smaller than this are encoder jitter.
    reversal_tolerance_m: float = 0.02


@dataclass(slots=True)
class ProcessedLog:
    """A conditioned log on a regular depth grid (NaN where no samples)."""

    hole: str
    x: float
    y: float
    kind: str
    separation: float
    depth: np.ndarray  # (m,) mean depth of each bin's samples (bin centre if empty)
    values: np.ndarray  # (m,) or (m, 3), NaN in empty bins
    counts: np.ndarray  # (m,) samples per bin
    sigma: float  # noise of one binned value (nT), per component for vector
    sigma_sample: float  # noise of one raw sample (nT)
    top: float
    bottom: float
    direction: str  # "up", "down" or "none"
    gaps: list[tuple[float, float]] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    issues: list[str] = field(default_factory=list)
    offset_nT: float = 0.0
    drift_nT: float = 0.0

    @property
    def valid(self) -> np.ndarray:
        return self.counts > 0

    def covered(self, d0: float, d1: float) -> bool:
        """True when [d0, d1] lies in the logged range and touches no gap."""
        if d0 < self.top - 1e-9 or d1 > self.bottom + 1e-9:
            return False
        return all(g1 <= d0 or g0 >= d1 for g0, g1 in self.gaps)


# --------------------------------------------------------------------------- CSV


@dataclass(slots=True)
class BoreholeFile:
    metadata: dict[str, str]
    logs: list[HoleLog]
    rejects: list[tuple[int, str]]
    kind: str
    n_rows: int


def _num(tok: str) -> float:
    v = float(tok.strip())
    if not math.isfinite(v):
        raise ValueError("non-finite")
    return v


def _out_of_bounds(rec: tuple[float, ...], n_values: int) -> str:
    """Why a parsed row (x, y, depth, values..., t) is outside physical bounds, or ''."""
    x, y, depth = rec[:3]
    if abs(x) > POSITION_LIMIT_M or abs(y) > POSITION_LIMIT_M:
        return f"x/y ({x:g}, {y:g}) beyond +-{POSITION_LIMIT_M:g} m"
    if not DEPTH_RANGE_M[0] <= depth <= DEPTH_RANGE_M[1]:
        return f"depth {depth:g} m outside {DEPTH_RANGE_M[0]:g}..{DEPTH_RANGE_M[1]:g} m"
    if any(abs(v) > READING_LIMIT_NT for v in rec[3:3 + n_values]):
        return f"reading beyond +-{READING_LIMIT_NT:g} nT"
    return ""


def read_borehole_csv(source: str | os.PathLike[str] | io.TextIOBase, *,
                      separation: float | None = None, max_bad_fraction: float = 0.2,
                      collar_tolerance_m: float = 0.05) -> BoreholeFile:
    """Read a ``# uxo-borehole v1`` CSV (docs/formats.md) into per-hole raw logs.

    ``source`` is a path or an open text stream. Bad rows (wrong field count,
    non-numbers, empty hole id) are skipped and listed in ``rejects`` with line
    numbers; more than ``max_bad_fraction`` bad rows raise `BoreholeFormatError`.
    ``separation`` overrides the file's ``sensor_separation_m``.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8", errors="replace", newline="") as fh:
            text = fh.read()
    else:
        text = source.read()
    # A UTF-8 byte-order mark (spreadsheet exports write one) is not part of
    # the first line: left there, it turns '# uxo-borehole' or 'hole' into
    # '\ufeff# ...' and the header is not found.
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    metadata: dict[str, str] = {}
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        body = lines[i].lstrip("#").strip()
        if ":" in body:
            k, v = body.split(":", 1)
            metadata[k.strip()] = v.strip()
        elif body:
            metadata.setdefault("format", body)
        i += 1
    if i >= len(lines):
        raise BoreholeFormatError("no header row")
    header_line = i + 1
    header = [h.strip().lower() for h in next(csv.reader([lines[i]]))]
    col = {h: j for j, h in enumerate(header)}
    for req in ("hole", "x", "y", "depth"):
        if req not in col:
            raise BoreholeFormatError(f"missing column {req!r} (header: {header})")
    declared = metadata.get("kind", "").strip().lower()
    if "value" in col and declared != "vector":
        kind = "gradient"
    elif all(c in col for c in VECTOR_COLUMNS):
        kind = "vector"
    else:
        raise BoreholeFormatError("need a 'value' column or 'bx,by,bz' columns")
    if declared and declared not in ("gradient", "vector"):
        raise BoreholeFormatError(f"unknown kind {declared!r}")
    sep = separation
    if sep is None:
        try:
            sep = float(metadata.get("sensor_separation_m", DEFAULT_SEPARATION_M))
        except ValueError:
            raise BoreholeFormatError("bad sensor_separation_m") from None
    if not (sep > 0 and math.isfinite(sep)):
        raise BoreholeFormatError(f"sensor separation must be positive, got {sep}")
    vcols = ["value"] if kind == "gradient" else list(VECTOR_COLUMNS)
    has_t = "t" in col
    rows: dict[str, list[tuple[float, ...]]] = {}
    rejects: list[tuple[int, str]] = []
    n_rows = 0
    for lineno, fields in enumerate(csv.reader(lines[i + 1:]), start=header_line + 1):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if fields[0].startswith("#"):
            continue
        n_rows += 1
        if len(fields) != len(header):
            rejects.append((lineno, f"{len(fields)} fields, header has {len(header)}"))
            continue
        hole = fields[col["hole"]].strip()
        if not hole:
            rejects.append((lineno, "empty hole id"))
            continue
        try:
            rec = (_num(fields[col["x"]]), _num(fields[col["y"]]), _num(fields[col["depth"]]),
                   *(_num(fields[col[c]]) for c in vcols),
                   _num(fields[col["t"]]) if has_t else math.nan)
        except ValueError:
            rejects.append((lineno, "not a number"))
            continue
        why = _out_of_bounds(rec, len(vcols))
        if why:
            rejects.append((lineno, why))
            continue
        rows.setdefault(hole, []).append(rec)
    if n_rows and len(rejects) > max_bad_fraction * n_rows:
        raise BoreholeFormatError(
            f"{len(rejects)} of {n_rows} rows are bad (limit {max_bad_fraction:.0%}); "
            f"first: line {rejects[0][0]}: {rejects[0][1]}")
    logs: list[HoleLog] = []
    for hole, recs in rows.items():
        a = np.array(recs, dtype=float)
        xs, ys = a[:, 0], a[:, 1]
        x, y = float(np.median(xs)), float(np.median(ys))
        issues: list[str] = []
        flags: set[str] = set()
        spread = float(np.max(np.hypot(xs - x, ys - y)))
        if spread > collar_tolerance_m:
            flags.add("collar_moves")
            issues.append(f"hole {hole}: collar x,y vary by up to {spread:.2f} m; using the "
                          f"median ({x:.2f}, {y:.2f})")
        values = a[:, 3] if kind == "gradient" else a[:, 3:6]
        t = a[:, -1] if has_t and np.all(np.isfinite(a[:, -1])) else None
        logs.append(HoleLog(hole, x, y, a[:, 2], values, kind=kind, t=t, separation=float(sep),
                            issues=issues, flags=flags))
    return BoreholeFile(metadata=metadata, logs=logs, rejects=rejects, kind=kind, n_rows=n_rows)


def write_borehole_csv(path: str | os.PathLike[str], logs: Iterable[HoleLog],
                       metadata: dict[str, Any] | None = None) -> None:
    """Write raw logs as a ``# uxo-borehole v1`` file (the reader's inverse)."""
    logs = list(logs)
    kind = logs[0].kind if logs else "gradient"
    has_t = bool(logs) and all(lg.t is not None for lg in logs)
    with open_output(path, newline="") as fh:
        fh.write("# uxo-borehole v1\n")
        md = {"kind": kind, "sensor_separation_m": logs[0].separation if logs
              else DEFAULT_SEPARATION_M}
        md.update(metadata or {})
        for k, v in md.items():
            fh.write(f"# {k}: {v}\n")
        cols = ["hole", "x", "y", "depth"] + (["t"] if has_t else [])
        cols += ["value"] if kind == "gradient" else list(VECTOR_COLUMNS)
        fh.write(",".join(cols) + "\n")
        for lg in logs:
            vals = lg.values.reshape(len(lg.depth), -1)
            for j in range(len(lg.depth)):
                parts = [lg.hole, f"{lg.x:.3f}", f"{lg.y:.3f}", f"{lg.depth[j]:.4f}"]
                if has_t and lg.t is not None:
                    parts.append(f"{lg.t[j]:.3f}")
                parts += [f"{v:.4f}" for v in vals[j]]
                fh.write(",".join(parts) + "\n")


# ------------------------------------------------------------------ conditioning


def _ranges(mask: np.ndarray, depth: np.ndarray) -> list[tuple[float, float]]:
    """Depth ranges of the True runs of ``mask``."""
    out: list[tuple[float, float]] = []
    if not np.any(mask):
        return out
    idx = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    for a, b in zip(idx[::2], idx[1::2], strict=True):
        d = depth[a:b]
        out.append((float(np.min(d)), float(np.max(d))))
    return out


def _fmt_ranges(r: list[tuple[float, float]], limit: int = 5) -> str:
    s = ", ".join(f"{a:.2f}-{b:.2f} m" for a, b in r[:limit])
    return s + (f" and {len(r) - limit} more" if len(r) > limit else "")


def robust_polyfit(x: np.ndarray, y: np.ndarray, degree: int, iters: int = 10) -> np.ndarray:
    """Tukey-biweight polynomial fit: anomalies do not pull the baseline."""
    if len(x) <= degree + 1:
        return np.polyfit(x, y, 0) if len(x) else np.zeros(1)
    xs = (x - x.mean()) / (np.ptp(x) or 1.0)
    w = np.ones_like(y)
    coef = np.polyfit(xs, y, degree)
    for _ in range(iters):
        r = y - np.polyval(coef, xs)
        s = 1.4826 * np.median(np.abs(r - np.median(r)))
        if not s > 0:
            break
        u = r / (4.685 * s)
        w = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
        if np.count_nonzero(w) <= degree + 1:
            break
        coef = np.polyfit(xs, y, degree, w=np.sqrt(w))
    return np.polyval(coef, xs)


def _noise(v: np.ndarray) -> float:
    """White-noise sigma from the MAD of second differences.

    Second differences cancel the smooth tails of anomalies far better than
    first differences, so a log dominated by a strong nearby object still
    gives its true noise (var of v[i-1] - 2 v[i] + v[i+1] is 6 sigma^2).
    """
    v = v[np.isfinite(v)]
    if len(v) < 4:
        return math.nan
    d = v[:-2] - 2.0 * v[1:-1] + v[2:]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(6.0))


def _baseline(tt: np.ndarray, depth: np.ndarray, vals: np.ndarray, cfg: LogConfig
              ) -> np.ndarray:
    """Offset and drift of each component, fitted away from the anomalies.

    The biweight alone lets the long tails of a strong anomaly tilt a drift
    line (biasing distances by several percent), so anomalies found on a
    first pass are masked with a margin and the baseline refitted on the
    rest; when too little is left, only a constant offset is fitted.
    """
    out = np.empty_like(vals)
    for c in range(vals.shape[1]):
        y = vals[:, c]
        first = robust_polyfit(tt, y, cfg.drift_degree)
        r = y - first
        noise = _noise(r)
        order = np.argsort(depth)
        mask = np.zeros(len(y), dtype=bool)
        if noise > 0:
            w = max(1, min(25, len(y) // 20))
            sm = np.convolve(r[order], np.ones(w) / w, mode="same")
            hot = np.abs(sm) > 4.0 * noise / math.sqrt(w)
            if np.any(hot):
                hd = depth[order][hot]
                near = np.min(np.abs(depth[:, None] - hd[None, :]), axis=1) if len(hd) < 4000 \
                    else np.zeros(len(y))
                mask = near < cfg.anomaly_margin_m
        keep = ~mask
        span = np.ptp(tt[keep]) if np.count_nonzero(keep) > 1 else 0.0
        if np.count_nonzero(keep) >= 0.3 * len(y) and span >= 0.3 * np.ptp(tt) and \
                cfg.drift_degree > 0:
            xs_mean, xs_ptp = tt[keep].mean(), (np.ptp(tt[keep]) or 1.0)
            coef = np.polyfit((tt[keep] - xs_mean) / xs_ptp, y[keep], cfg.drift_degree)
            out[:, c] = np.polyval(coef, (tt - xs_mean) / xs_ptp)
        elif np.any(keep):
            out[:, c] = float(np.median(y[keep]))
        else:
            out[:, c] = float(np.median(y))
    return out


def condition(log: HoleLog, config: LogConfig | None = None) -> ProcessedLog:
    """Register depths, check travel and speed, remove offset and drift, bin by depth."""
    cfg = config or LogConfig()
    issues = list(log.issues)
    flags = set(log.flags)
    scale, offset = cfg.depth_registration.get(log.hole, (cfg.depth_scale, cfg.depth_offset_m))
    depth = scale * log.depth + offset
    vals = log.values.reshape(len(depth), -1).copy()
    t = None if log.t is None else log.t.copy()
    ok = np.isfinite(depth) & np.all(np.isfinite(vals), axis=1)
    if t is not None:
        ok &= np.isfinite(t)
    if not np.all(ok):
        issues.append(f"hole {log.hole}: {np.count_nonzero(~ok)} samples with non-finite "
                      "depth or value ignored")
        flags.add("bad_samples")
    depth, vals = depth[ok], vals[ok]
    t = None if t is None else t[ok]
    ncomp = vals.shape[1]
    if len(depth) < 5:
        flags.add("short_log")
        issues.append(f"hole {log.hole}: only {len(depth)} usable samples")
        empty = np.full((0, ncomp), np.nan)
        return ProcessedLog(log.hole, log.x, log.y, log.kind, log.separation, np.zeros(0),
                            empty if log.kind == "vector" else np.zeros(0), np.zeros(0, int),
                            math.nan, math.nan, math.nan, math.nan, "none", [], flags, issues)
    if t is not None and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        depth, vals, t = depth[order], vals[order], t[order]
        issues.append(f"hole {log.hole}: samples out of time order were sorted by time")
        flags.add("time_disorder")

    # Travel direction: the sign of the net depth change; logs go pulling up.
    net = depth[-1] - depth[0]
    direction = "up" if net < 0 else ("down" if net > 0 else "none")
    if direction == "down":
        flags.add("logged_down")
        issues.append(f"hole {log.hole}: logged going down (procedure: pull up); data used")
    step = np.diff(depth)
    sgn = -1.0 if direction == "up" else 1.0
    # Backwards = behind the farthest point reached so far (not per step:
    # a slow slip back is many small steps).
    progress = sgn * depth
    back = progress < np.maximum.accumulate(progress) - cfg.reversal_tolerance_m
    if np.any(back):
        flags.add("depth_reversal")
        issues.append(f"hole {log.hole}: depth went backwards {np.count_nonzero(back)} times "
                      f"at {_fmt_ranges(_ranges(back, depth))}; samples kept and binned")

    # Speed check: sample spacing along the hole must resolve the narrowest
    # anomalies (an object close to the hole gives features ~0.3 m wide).
    if t is not None and len(t) > 2:
        dt = np.diff(t)
        spacing = np.abs(step)
        fast = np.concatenate([[False], (spacing > cfg.max_sample_spacing_m) & (dt > 0)
                               & (dt < 5 * max(np.median(dt), 1e-9))])
        if np.count_nonzero(fast) > 0.05 * len(fast):
            rate = 1.0 / max(float(np.median(dt)), 1e-9)
            flags.add("too_fast")
            issues.append(
                f"hole {log.hole}: probe too fast for {rate:.3g} Hz sampling at "
                f"{_fmt_ranges(_ranges(fast, depth))} (keep under "
                f"{cfg.max_sample_spacing_m * rate:.2f} m/s)")

    # Offset and drift: robust polynomial in time (sample order when no times).
    tt = t if t is not None else np.arange(len(depth), dtype=float)
    base = _baseline(tt, depth, vals, cfg)
    vals = vals - base
    offset_nT = float(np.median(base[:, -1]))
    drift_nT = float(np.ptp(base[:, -1]))

    # Bin by depth on a fixed grid anchored at 0 so holes share bin edges.
    b = cfg.bin_m
    lo, hi = math.floor(depth.min() / b), math.ceil(depth.max() / b)
    if hi <= lo:
        hi = lo + 1
    nb = hi - lo
    idx = np.clip(np.floor(depth / b).astype(int) - lo, 0, nb - 1)
    counts = np.bincount(idx, minlength=nb)
    dsum = np.bincount(idx, weights=depth, minlength=nb)
    centres = (np.arange(nb) + lo + 0.5) * b
    with np.errstate(invalid="ignore", divide="ignore"):
        bdepth = np.where(counts > 0, dsum / np.maximum(counts, 1), centres)
        bvals = np.column_stack([
            np.bincount(idx, weights=vals[:, c], minlength=nb) / counts for c in range(ncomp)])
    bvals[counts == 0] = np.nan
    # Gaps: depth jumps between consecutive samples (in travel order) or empty
    # runs longer than gap_m.
    gaps: list[tuple[float, float]] = []
    srt = np.sort(depth)
    jumps = np.flatnonzero(np.diff(srt) > cfg.gap_m)
    for j in jumps:
        gaps.append((float(srt[j]), float(srt[j + 1])))
    if gaps:
        flags.add("gap")
        issues.append(f"hole {log.hole}: {len(gaps)} gap(s) in the log at "
                      f"{_fmt_ranges(gaps)}; not interpolated")
    sigma_sample = float(np.nanmax([_noise(vals[:, c]) for c in range(ncomp)]))
    # Binned noise from the raw-sample noise: raw samples are dense enough for
    # second differences to ignore even strong nearby anomalies, bins are not.
    per_bin = float(np.median(counts[counts > 0])) if np.any(counts > 0) else 1.0
    sigma = sigma_sample / math.sqrt(max(per_bin, 1.0)) if sigma_sample > 0 else math.nan
    if not (sigma > 0):
        sig = [_noise(bvals[:, c]) for c in range(ncomp)]
        sigma = float(np.nanmax(sig)) if np.any(np.isfinite(sig)) else math.nan
    if not (sigma > 0):
        sigma = 1e-3  # noise-free input (synthetic): keep thresholds finite
    out_vals = bvals[:, 0] if log.kind == "gradient" else bvals
    return ProcessedLog(log.hole, log.x, log.y, log.kind, log.separation, bdepth, out_vals,
                        counts, sigma, sigma_sample, float(depth.min()), float(depth.max()),
                        direction, gaps, flags, issues, offset_nT, drift_nT)
