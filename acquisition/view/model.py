"""Page state of the live view, built from bus messages: bounded and decimated.

`ViewModel.ingest` takes one decoded bus `Message` and returns the updates
to send to every page (plain JSON-able dicts); `snapshot` is what a page that
joins late receives; `health` is the periodic status (instrument state, GNSS,
clock, counters, recording, "bus silent"). No sockets, threads or files here,
so every rule can be checked by hand in a unit test.

Memory stays flat however long the walk: the trace keeps the last
``trace_s`` seconds at most ``trace_hz`` points per second; the lane map keeps
one value per grid cell (the levelled value of largest magnitude), and when
the cells pass ``max_cells`` the grid is coarsened (cell size doubled, cells
merged), so the map is bounded by ``max_cells`` whatever the walked distance;
anomalies and targets are capped.

"Levelled" here is a display levelling: each channel minus the median of its
last ``trace_s`` seconds, so lane offsets and drift do not swamp the colours.
It is not the DSP's lane levelling (acquisition.dsp), which needs whole lanes.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.events import size_class
from acquisition.messages import Message
from acquisition.tail import _jsonable  # the one NaN-to-null JSON cleaner

#: No heartbeat for this long: the page says "bus silent".
SILENT_S = 3.0
#: A walked point this close to a planned lane covers it.
COVER_RADIUS_M = 0.5
#: State events that say how the instrument's connection is; the others
#: (recorder_error, slow_positions, ...) are shown as notices.
CONNECTION_STATES = frozenset({"connecting", "connected", "stalled", "reconnecting", "closed"})
MAX_NOTICES = 20
#: Largest grid the coverage check builds (cells).
MAX_COVER_GRID = 2_000_000
#: Heartbeat counters the page shows per stream.
SHOWN_COUNTERS = ("frames_ok", "frames_rejected", "gaps", "reconnects", "stalls", "resyncs",
                  "samples", "queue_depth")


def _f(v: Any) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _fmt(v: Any, spec: str = ".2f") -> str:
    x = _f(v)
    return "?" if x is None else format(x, spec)


def target_row(t: dict[str, Any]) -> dict[str, Any]:
    """A target as the table shows it: text cells, formatted once, here."""
    sd = _f(t.get("sigma_depth"))
    depth = _fmt(t.get("depth")) + (f" ± {sd:.2f}" if sd is not None else "")
    moment = t.get("moment_abs")
    if _f(moment) is None and isinstance(t.get("moment"), list):
        m = [_f(c) for c in t["moment"]]
        fm = [c for c in m if c is not None]
        moment = math.sqrt(sum(c * c for c in fm)) if len(fm) == len(m) else None
    cls = t.get("size_class")
    if not isinstance(cls, str) or not cls:
        cls = size_class(mv) if (mv := _f(moment)) is not None else "unknown"
    flags = f if isinstance(f := t.get("flags"), list) else []
    return {
        "id": t.get("target_id"),
        "stream": str(t.get("stream_id", "")),
        "x": _f(t.get("x")),
        "y": _f(t.get("y")),
        "cells": [
            str(t.get("target_id")),
            _fmt(t.get("x")),
            _fmt(t.get("y")),
            depth,
            str(cls),
            _fmt(moment, ".3g"),
            _fmt(t.get("quality")),
            ",".join(str(f) for f in flags),
        ],
        "revision": t.get("revision", 0),
    }


def planned_lanes(info: dict[str, Any]) -> list[tuple[float, float, float, float]]:
    """``planned_lanes`` of a session's info: ``[[x0, y0, x1, y1], ...]`` (or that as
    a JSON string); anything else gives no lanes."""
    raw = info.get("planned_lanes")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    out: list[tuple[float, float, float, float]] = []
    if isinstance(raw, list):
        for lane in raw[:1000]:
            if isinstance(lane, list) and len(lane) == 4:
                x0, y0, x1, y1 = (_f(v) for v in lane)
                if x0 is not None and y0 is not None and x1 is not None and y1 is not None:
                    out.append((x0, y0, x1, y1))
    return out


@dataclass
class _Trace:
    """Last ``trace_s`` seconds of one stream's channels, raw values."""

    t: np.ndarray = field(default_factory=lambda: np.empty(0))
    v: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    def add(self, t: np.ndarray, v: np.ndarray, keep_s: float) -> None:
        if self.v.shape[1:] != v.shape[1:]:
            self.t, self.v = np.empty(0), np.empty((0, v.shape[1]))
        self.t = np.concatenate([self.t, t])
        self.v = np.concatenate([self.v, v])
        keep = self.t >= self.t[-1] - keep_s if self.t.size else slice(None)
        self.t, self.v = self.t[keep], self.v[keep]

    def background(self) -> np.ndarray:
        """Per-channel median: what the display levelling subtracts."""
        if not self.t.size:
            return np.zeros(self.v.shape[1])
        with np.errstate(all="ignore"):
            bg = np.nanmedian(self.v, axis=0) if np.isfinite(self.v).any() else None
        return np.zeros(self.v.shape[1]) if bg is None else np.nan_to_num(bg)


def _points(v: np.ndarray) -> list[list[float | None]]:
    """Columns of a (n, ch) array as JSON lists, NaN as None, 4 significant digits."""
    out = []
    for col in v.T:
        out.append([float(f"{x:.4g}") if math.isfinite(x) else None for x in col.tolist()])
    return out


class ViewModel:
    """Everything the page shows, kept bounded; see the module docstring."""

    def __init__(self, *, trace_s: float = 30.0, trace_hz: float = 25.0,
                 cell_m: float = 0.25, max_cells: int = 20000, max_anomalies: int = 200,
                 max_targets: int = 2000, silent_s: float = SILENT_S) -> None:
        self.trace_s = trace_s
        self.trace_hz = trace_hz
        self.cell_m0 = cell_m
        self.max_cells = max_cells
        self.max_anomalies = max_anomalies
        self.max_targets = max_targets
        self.silent_s = silent_s
        self.reset_session("", {})
        self.started_mono_ns: int | None = None

    # --- session ------------------------------------------------------------------
    def reset_session(self, session: str, info: dict[str, Any]) -> None:
        self.session = session
        self.info = dict(info)
        self.stopped = False
        self.descriptors: dict[str, dict[str, Any]] = {}
        self.traces: dict[str, _Trace] = {}
        self.cell_m = self.cell_m0
        #: (ix, iy) -> levelled value of largest magnitude seen in the cell.
        self.cells: dict[tuple[int, int], float] = {}
        self.here: dict[str, tuple[float, float]] = {}
        self.anomalies: deque[dict[str, Any]] = deque(maxlen=self.max_anomalies)
        self.targets: dict[int, dict[str, Any]] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.notices: deque[dict[str, Any]] = deque(maxlen=MAX_NOTICES)
        self.counters: dict[str, dict[str, Any]] = {}
        self.gnss: dict[str, Any] = {}
        self.last_heartbeat_mono_ns: int | None = None
        self.lanes = planned_lanes(self.info)
        self._cells_dirty = True
        self._gaps: dict[str, Any] = {"known": bool(self.lanes), "segments": [], "gap_m": 0.0}

    # --- bus messages ----------------------------------------------------------------
    def ingest(self, msg: Message, now_mono_ns: int,
               now_wall_ns: int | None = None) -> list[dict[str, Any]]:
        """Apply one message; return the updates every page must get (maybe none),
        as plain JSON values (NaN and infinities as null). Anomalies carry the
        bus message's ``sent_ns`` and, when given, the view's ``seen_ns``
        (wall clock), so a page can tell where its wait came from."""
        updates = self._ingest(msg, now_mono_ns)
        if now_wall_ns is not None:
            for u in updates:
                if u["type"] == "anomaly":
                    u["anomaly"] = {**u["anomaly"], "seen_ns": now_wall_ns}
        return [_jsonable(u, False) for u in updates]

    def _ingest(self, msg: Message, now_mono_ns: int) -> list[dict[str, Any]]:
        if self.started_mono_ns is None:
            self.started_mono_ns = now_mono_ns
        h = msg.header
        kind = msg.kind
        session = str(h.get("session", ""))
        sent = h.get("t_ns")
        out: list[dict[str, Any]] = []
        if kind == "session_start" and (session != self.session or self.stopped):
            # A new run (a restarted service): the page starts afresh.
            self.reset_session(session, dict(h.get("info") or {}))
            out.append({"type": "reset", "snapshot": self.snapshot(now_mono_ns)})
            return out
        if session and session != self.session and kind != "session_stop":
            # Data of a session we never saw start (joined late): adopt it.
            self.reset_session(session, {})
            out.append({"type": "reset", "snapshot": self.snapshot(now_mono_ns)})
        if kind == "session_stop":
            if session == self.session:
                self.stopped = True
                out.append({"type": "session", "session": session, "stopped": True,
                            "info": dict(h.get("info") or {})})
        elif kind == "descriptor":
            self.descriptors[msg.stream] = dict(h["descriptor"])
            out.append({"type": "descriptor", "stream": msg.stream,
                        "descriptor": self.descriptors[msg.stream]})
        elif kind == "block":
            out += self._block(msg)
        elif kind == "anomaly":
            a = {k: (_f(v) if isinstance(v, float) else v) for k, v in h["anomaly"].items()}
            a["sent_ns"] = sent
            self.anomalies.append(a)
            out.append({"type": "anomaly", "anomaly": a})
        elif kind == "target":
            t = h["target"]
            tid = t["target_id"]
            old = self.targets.get(tid)
            if old is None or t.get("revision", 0) >= old.get("revision", 0):
                row = target_row(t)
                row["sent_ns"] = sent
                self.targets[tid] = row
                while len(self.targets) > self.max_targets:
                    self.targets.pop(next(iter(self.targets)))
                out.append({"type": "target", "target": row})
        elif kind == "state":
            s = dict(h["state"])
            s["sent_ns"] = sent
            s["stream_id"] = str(s.get("stream_id") or msg.stream)
            if s.get("state") in CONNECTION_STATES:
                self.states[s["stream_id"]] = s
                out.append({"type": "state", "state": s})
            else:
                # recorder_error, slow_positions...: news, not the instrument's state.
                self.notices.append(s)
                out.append({"type": "notice", "notice": s})
        elif kind == "heartbeat":
            self.last_heartbeat_mono_ns = now_mono_ns
            extras = {k: v for k, v in h.items()
                      if k not in ("v", "kind", "session", "stream", "seq", "t_ns", "arrays")}
            c = dict(h["counters"])
            c.update({k: v for k, v in extras.items() if k not in ("counters",)})
            self.counters[msg.stream] = c
        return out

    def _block(self, msg: Message) -> list[dict[str, Any]]:
        h = msg.header
        data = msg.arrays.get("data")
        if data is None or data.ndim != 2 or data.shape[0] == 0:
            return []
        stream = msg.stream
        desc = self.descriptors.get(stream, {})
        names = [str(c.get("name", "")) for c in desc.get("channels", []) if isinstance(c, dict)]
        rate = float(h["rate_hz"])
        dec = int(h.get("decimation", 1))
        n = data.shape[0]
        t = (int(h["t0_ns"]) + np.arange(n) * (1e9 / rate)) / 1e9
        if "fix" in names and data.shape[1] == len(names):
            self._gnss(stream, names, data, int(h.get("host_wall_ns", 0)))
            return []
        vals = data.astype(np.float64, copy=False)
        # Keep samples whose absolute index falls on the trace's own grid, so
        # every page and every block decimate alike.
        stride = max(1, round(rate / self.trace_hz))
        idx = int(h["first_index"]) // dec + np.arange(n)
        keep = idx % stride == 0
        tr = self.traces.setdefault(stream, _Trace())
        tr.add(t[keep], vals[keep], self.trace_s)
        bg = tr.background()
        lev = vals - bg
        out: list[dict[str, Any]] = []
        if keep.any():
            out.append({"type": "trace", "stream": stream, "t": t[keep].round(3).tolist(),
                        "v": _points(lev[keep]), "sent_ns": h.get("t_ns")})
        pos = msg.arrays.get("positions")
        if pos is not None and pos.ndim == 2 and pos.shape[0] == n and pos.shape[1] >= 2:
            out += self._cells(stream, pos[:, :2].astype(np.float64), lev[:, 0])
        return out

    def _gnss(self, stream: str, names: list[str], data: np.ndarray, wall_ns: int) -> None:
        last = data[-1]
        g = {"stream": stream, "wall_ns": wall_ns}
        for name in ("fix", "sats", "hdop"):
            g[name] = _f(float(last[names.index(name)])) if name in names else None
        self.gnss = g

    def _cells(self, stream: str, pos: np.ndarray, v: np.ndarray) -> list[dict[str, Any]]:
        ok = np.isfinite(pos).all(axis=1) & np.isfinite(v)
        if not ok.any():
            return []
        p, v = pos[ok], v[ok]
        self.here[stream] = (float(p[-1, 0]), float(p[-1, 1]))
        ij = np.floor(p / self.cell_m).astype(np.int64)
        changed: dict[tuple[int, int], float] = {}
        for (i, j), x in zip(ij.tolist(), v.tolist(), strict=True):
            key = (i, j)
            old = self.cells.get(key)
            if old is None or abs(x) > abs(old):
                self.cells[key] = x
                changed[key] = x
        here = {"stream": stream, "x": self.here[stream][0], "y": self.here[stream][1]}
        if changed:
            self._cells_dirty = True
        if len(self.cells) > self.max_cells:
            self._coarsen()
            return [{"type": "cells", "reset": True, "cell_m": self.cell_m,
                     "cells": self._cell_list(self.cells), "here": here}]
        return [{"type": "cells", "reset": False, "cell_m": self.cell_m,
                 "cells": self._cell_list(changed), "here": here}]

    def _coarsen(self) -> None:
        while len(self.cells) > self.max_cells:
            self.cell_m *= 2
            merged: dict[tuple[int, int], float] = {}
            for (i, j), x in self.cells.items():
                key = (i // 2, j // 2)
                old = merged.get(key)
                if old is None or abs(x) > abs(old):
                    merged[key] = x
            self.cells = merged

    @staticmethod
    def _cell_list(cells: dict[tuple[int, int], float]) -> list[list[float]]:
        return [[i, j, float(f"{x:.4g}")] for (i, j), x in cells.items()]

    # --- coverage ----------------------------------------------------------------------
    def coverage(self) -> dict[str, Any]:
        """Gaps along the planned lanes: uncovered stretches of lanes already passed,
        and uncovered stretches between walked parts of the lane being walked."""
        if not self.lanes or not self._cells_dirty:
            return self._gaps
        self._cells_dirty = False
        step = min(self.cell_m, 0.25)
        pts, lane_of = [], []
        for li, (x0, y0, x1, y1) in enumerate(self.lanes):
            k = max(2, min(4000, int(math.hypot(x1 - x0, y1 - y0) / step) + 1))
            s = np.linspace(0.0, 1.0, k)
            pts.append(np.column_stack([x0 + s * (x1 - x0), y0 + s * (y1 - y0)]))
            lane_of.append(np.full(k, li))
        p = np.concatenate(pts)
        covered = self._near_walked(p)
        lane_idx = np.concatenate(lane_of)
        started = [bool(covered[lane_idx == li].any()) for li in range(len(self.lanes))]
        last_started = max((i for i, st in enumerate(started) if st), default=-1)
        segments: list[list[float]] = []
        gap_m = 0.0
        for li in range(last_started + 1):
            cov = covered[lane_idx == li]
            lp = p[lane_idx == li]
            lo, hi = 0, cov.size
            if li == last_started:
                # The lane being walked: only holes between walked parts.
                walked = np.flatnonzero(cov)
                lo, hi = int(walked[0]), int(walked[-1]) + 1
            # Runs of uncovered points within [lo, hi).
            bad = np.concatenate([[False], ~cov[lo:hi], [False]]).astype(np.int8)
            starts = np.flatnonzero(np.diff(bad) == 1) + lo
            stops = np.flatnonzero(np.diff(bad) == -1) + lo
            for i, j in zip(starts.tolist(), stops.tolist(), strict=True):
                a, b = lp[max(i - 1, 0)], lp[min(j, cov.size - 1)]
                seg_len = float(np.hypot(*(b - a)))
                if seg_len >= self.cell_m:
                    segments.append([round(float(v), 3) for v in (*a, *b)])
                    gap_m += seg_len
        self._gaps = {"known": True, "segments": segments[:500], "gap_m": round(gap_m, 2)}
        return self._gaps

    def _near_walked(self, p: np.ndarray) -> np.ndarray:
        """For each point, is a walked cell within `COVER_RADIUS_M` (square window)?"""
        if not self.cells:
            return np.zeros(len(p), dtype=bool)
        from scipy.ndimage import maximum_filter

        # A plan far larger than the walked map is checked on a coarser grid,
        # so the check stays bounded (at most MAX_COVER_GRID cells).
        span = (p.max(axis=0) - p.min(axis=0)) / self.cell_m + 1
        f = max(1, math.ceil(math.sqrt(float(np.prod(span)) / MAX_COVER_GRID)))
        cell = self.cell_m * f
        r = max(1, math.ceil(COVER_RADIUS_M / cell))
        ij = np.floor(p / cell).astype(np.int64)
        lo = ij.min(axis=0) - r
        shape = ij.max(axis=0) - lo + r + 1
        keys = np.array(list(self.cells), dtype=np.int64).reshape(-1, 2) // f - lo
        inside = ((keys >= 0) & (keys < shape)).all(axis=1)
        grid = np.zeros(tuple(shape.tolist()), dtype=np.uint8)
        grid[keys[inside, 0], keys[inside, 1]] = 1
        near = maximum_filter(grid, size=2 * r + 1, mode="constant")
        q = ij - lo
        return near[q[:, 0], q[:, 1]].astype(bool)

    # --- status --------------------------------------------------------------------------
    def health(self, now_mono_ns: int, now_wall_ns: int,
               bus: dict[str, Any] | None = None) -> dict[str, Any]:
        """Periodic status: per-stream state and counters, GNSS, clock, recording, silence."""
        last = self.last_heartbeat_mono_ns
        since = last if last is not None else self.started_mono_ns
        age = None if since is None else (now_mono_ns - since) / 1e9
        streams = {}
        for sid in sorted(set(self.counters) | set(self.states) | set(self.descriptors)):
            c = self.counters.get(sid, {})
            st = self.states.get(sid, {})
            streams[sid] = {
                "state": st.get("state") or c.get("state") or "unknown",
                "reason": st.get("reason", ""),
                "counters": {k: c[k] for k in SHOWN_COUNTERS if k in c},
                "clock_offset_ms": (None if _f(c.get("clock_offset_ns")) is None
                                    else round(c["clock_offset_ns"] / 1e6, 2)),
                "threshold_nT": _f(c.get("threshold_nT")),
                "recording": c.get("recording") if isinstance(c.get("recording"), dict)
                else None,
                "recorder": c.get("recorder"),
            }
        gnss = dict(self.gnss)
        if gnss.get("wall_ns"):
            gnss["age_s"] = round((now_wall_ns - int(gnss["wall_ns"])) / 1e9, 1)
        rejected = sum(int(s["counters"].get("frames_rejected", 0) or 0)
                       for s in streams.values())
        return _jsonable({
            "type": "health",
            "session": self.session,
            "stopped": self.stopped,
            "streams": streams,
            "gnss": gnss or None,
            "heartbeat_age_s": None if age is None else round(age, 1),
            "bus_silent": age is not None and age > self.silent_s,
            "frames_rejected": rejected,
            "bus": bus or {},
            "coverage": self.coverage(),
        }, False)

    def snapshot(self, now_mono_ns: int) -> dict[str, Any]:
        """The session so far, for a page that joins (or re-joins) now."""
        traces = {}
        for sid, tr in self.traces.items():
            if tr.t.size:
                traces[sid] = {"t": tr.t.round(3).tolist(),
                               "v": _points(tr.v - tr.background())}
        return _jsonable({
            "type": "snapshot",
            "session": self.session,
            "info": self.info,
            "stopped": self.stopped,
            "descriptors": self.descriptors,
            "traces": traces,
            "trace_s": self.trace_s,
            "cell_m": self.cell_m,
            "cells": self._cell_list(self.cells),
            "here": [{"stream": s, "x": x, "y": y} for s, (x, y) in self.here.items()],
            "lanes": [list(lane) for lane in self.lanes],
            "anomalies": list(self.anomalies),
            "targets": sorted(self.targets.values(), key=lambda r: (r["stream"], r["id"])),
            "states": list(self.states.values()),
            "notices": list(self.notices),
        }, False)
