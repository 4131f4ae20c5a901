"""Streaming borehole processing: probe blocks in, ``anomaly`` and ``target`` events out.

While a probe is in a hole, each block is appended to that hole's log and the
log so far is conditioned and searched; an `Anomaly` is emitted once the
probe has been pulled ``guard_m`` above its peak and has left it (its extent
ends below the probe, or the signal in the last ``head_m`` logged has fallen
under ``complete_frac`` of the peak), so the peak will not change. The
event carries ``hole``, ``depth`` (source depth from the single-hole fit),
``amplitude_nT`` and, in ``width_m``, the single-hole distance estimate (m
from the hole; one hole gives distance, not direction; see docs/borehole.md).

When a hole ends (`end_hole`, a new hole id via `start_hole`, the probe
pulled above ``auto_end_depth_m``, or `finish`), the holes logged so far are
processed together and `Target` events are emitted. The update is
incremental (`batch.process_logs` with ``prior=`` and ``around=``): each log
is conditioned once, and only the neighbourhood the new hole can change (the
sources within ``update_radius_m`` of it and the holes within reach of
them) is solved again; the rest of the solution is held. `finish` (end of
the layer) consolidates: the whole layer solved at once, so the final list
is the batch `process_logs` result whatever the hole order. Events:
new targets with revision 0, targets that moved or changed with the next
revision and the same id (matched by position), so a subscriber can keep one
row per object; a target the new solution no longer holds gets a last
revision flagged ``withdrawn``.

Hole id and collar: ``hole``/``collar_x``/``collar_y`` options, else the
descriptor's geometry (``hole``, ``collar_x``, ``collar_y``), else
``collars={hole: (x, y)}``; a hole with no known collar is placed at (0, 0)
and flagged (its targets then carry ``no_collar``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from acquisition.borehole.batch import BoreholeConfig, BoreholeResult, process_logs
from acquisition.borehole.detect import channel, detect, fit_distance, smooth
from acquisition.borehole.logs import HoleLog, ProcessedLog, condition
from acquisition.events import Anomaly, Target
from acquisition.forward import DEFAULT_SEPARATION_M
from acquisition.geomag import QUANG_TRI, EarthField
from acquisition.types import SampleBlock, StreamDescriptor

#: Options of the live pipeline itself; every other option goes to `BoreholeConfig`.
LIVE_OPTIONS = frozenset({
    "sensor_separation_m", "separation", "collars", "guard_m", "complete_frac", "head_m",
    "live_step_m", "auto_end_depth_m", "hole", "collar_x", "collar_y"})


class BoreholePipeline:
    """Stateful per-stream processor (see module docstring)."""

    def __init__(self, descriptor: StreamDescriptor, field: EarthField = QUANG_TRI,
                 config: BoreholeConfig | dict[str, Any] | None = None, **options: Any) -> None:
        self.desc = descriptor
        self.field = field
        opts = dict(config) if isinstance(config, dict) else {}
        opts.update(options)
        self.cfg = config if isinstance(config, BoreholeConfig) else \
            BoreholeConfig.from_options({k: v for k, v in opts.items() if k not in LIVE_OPTIONS})
        self.cfg.stream_id = descriptor.stream_id
        g = descriptor.geometry
        self.separation = float(opts.get("sensor_separation_m", opts.get(
            "separation", g.get("sensor_separation_m", DEFAULT_SEPARATION_M))))
        names = descriptor.channel_names
        if "depth" not in names:
            raise ValueError(f"stream {descriptor.stream_id!r} has no depth channel")
        self.i_depth = names.index("depth")
        if all(c in names for c in ("bx", "by", "bz")):
            self.kind = "vector"
            self.i_vals: list[int] = [names.index(c) for c in ("bx", "by", "bz")]
        else:
            name = next((c for c in ("grad", "gradient", "value") if c in names), None)
            if name is None:
                raise ValueError(f"stream {descriptor.stream_id!r} has no reading channel")
            self.kind = "gradient"
            self.i_vals = [names.index(name)]
        self.collars: dict[str, tuple[float, float]] = {
            str(k): (float(v[0]), float(v[1])) for k, v in (opts.get("collars") or {}).items()}
        self.guard_m = float(opts.get("guard_m", 1.0))
        self.complete_frac = float(opts.get("complete_frac", 0.1))
        self.head_m = float(opts.get("head_m", 0.3))
        self.live_step_m = float(opts.get("live_step_m", 0.25))
        self.auto_end_depth_m = opts.get("auto_end_depth_m")
        self.logs: list[HoleLog] = []
        #: Conditioned logs (each conditioned once, when its hole ends) and the
        #: last solution: what each incremental update starts from.
        self.plogs: list[ProcessedLog] = []
        self.result: BoreholeResult | None = None
        #: Whether ``result`` is the whole layer solved at once (equals the batch).
        self._exact = True
        self._targets: dict[int, Target] = {}
        self._next_id = 1
        #: (hole, peak, top, bottom) of every anomaly event sent.
        self._emitted: list[tuple[str, float, float, float]] = []
        self._anomaly_id = 0
        self._cur: dict[str, Any] | None = None
        hole = str(opts.get("hole") or g.get("hole") or "")
        if hole:
            x = opts.get("collar_x", g.get("collar_x"))
            y = opts.get("collar_y", g.get("collar_y"))
            self.start_hole(hole, None if x is None else float(x), None if y is None else float(y))

    # ------------------------------------------------------------------ holes
    def start_hole(self, hole: str, x: float | None = None, y: float | None = None
                   ) -> list[Anomaly | Target]:
        """Begin a new hole (ending the current one, which returns its target events)."""
        out = self.end_hole() if self._cur is not None else []
        flags: set[str] = set()
        if x is None or y is None:
            if hole in self.collars:
                x, y = self.collars[hole]
            else:
                x, y = 0.0, 0.0
                flags.add("no_collar")
        self._cur = {"hole": hole, "x": float(x), "y": float(y), "depth": [], "vals": [],
                     "t": [], "flags": flags, "gaps": 0, "top_seen": False}
        return out

    def end_hole(self, consolidate: bool = False) -> list[Anomaly | Target]:
        """Close the current hole: final anomalies, then targets from all holes so far.

        The targets come from an incremental update around the new hole, or,
        with ``consolidate``, from the whole layer solved at once (`finish`).
        """
        if self._cur is None:
            return list(self.consolidate()) if consolidate else []
        out: list[Anomaly | Target] = list(self._live_anomalies(final=True))
        cur, self._cur = self._cur, None
        if sum(len(a) for a in cur["depth"]) >= 5:
            lg = HoleLog(cur["hole"], cur["x"], cur["y"], np.concatenate(cur["depth"]),
                         np.concatenate(cur["vals"]) if self.kind == "gradient"
                         else np.vstack(cur["vals"]), kind=self.kind,
                         t=np.concatenate(cur["t"]), separation=self.separation,
                         flags=set(cur["flags"]))
            if cur["gaps"]:
                lg.flags.add("gap")
                lg.issues.append(f"hole {cur['hole']}: {cur['gaps']} stream gap(s)")
            self.logs.append(lg)
            self.plogs.append(condition(lg, self.cfg.log))
            out.extend(self._update_targets(None if consolidate else (cur["x"], cur["y"])))
        elif consolidate:
            out.extend(self.consolidate())
        return out

    def consolidate(self) -> list[Target]:
        """Solve every hole logged so far at once (the batch result) and emit what changed.

        Incremental updates follow the path of the logging, so a body fitted
        as a line source (a bomb) can settle in a slightly different local
        optimum than the batch (measured: up to 0.15 m, within its stated
        uncertainty). The layer's final list must not depend on the hole
        order, so `finish` ends with this.
        """
        if not self.plogs or self._exact:
            return []
        return self._update_targets(None)

    # --------------------------------------------------------------- stream
    def process(self, block: SampleBlock) -> list[Anomaly | Target]:
        if self._cur is None:
            self.start_hole("hole1")
        assert self._cur is not None
        out: list[Anomaly | Target] = []
        d = block.data[:, self.i_depth].astype(float)
        v = block.data[:, self.i_vals].astype(float)
        t = block.times_ns().astype(float) / 1e9
        if block.flags & 1:  # BlockFlags.GAP: never interpolated, noted on the hole
            self._cur["gaps"] += 1
        self._cur["depth"].append(d)
        self._cur["vals"].append(v[:, 0] if self.kind == "gradient" else v)
        self._cur["t"].append(t)
        out.extend(self._live_anomalies(final=False))
        if self.auto_end_depth_m is not None and len(d) and \
                float(np.nanmin(d)) <= float(self.auto_end_depth_m):
            out.extend(self.end_hole())
        return out

    def finish(self) -> list[Anomaly | Target]:
        """End of the layer: close the current hole and consolidate (see `consolidate`)."""
        return self.end_hole(consolidate=True)

    # -------------------------------------------------------------- helpers
    def _live_anomalies(self, final: bool) -> list[Anomaly]:
        cur = self._cur
        if cur is None or sum(len(a) for a in cur["depth"]) < 20:
            return []
        depth = np.concatenate(cur["depth"])
        now = float(depth[-1])
        # Re-search the log only every live_step_m of travel: the conditioning
        # looks at the whole log so far, and blocks can be small.
        if not final and abs(now - cur.get("last_search", math.inf)) < self.live_step_m:
            return []
        cur["last_search"] = now
        vals = np.concatenate(cur["vals"]) if self.kind == "gradient" else np.vstack(cur["vals"])
        t = np.concatenate(cur["t"])
        pl = condition(HoleLog(cur["hole"], cur["x"], cur["y"], depth, vals, kind=self.kind,
                               t=t, separation=self.separation), self.cfg.log)
        if len(pl.depth) == 0:
            return []
        out: list[Anomaly] = []
        # Logged pulling up. An anomaly is complete once the probe is guard_m
        # above its peak and has left it: its extent ends below the probe, or
        # the signal where the probe is now has fallen under complete_frac of
        # the peak (the tails of a strong object stay above the detection
        # floor for metres, so waiting for the extent to close would hold
        # most events until the hole ends).
        w = max(1, round(self.cfg.detect.smooth_m / max(self.cfg.log.bin_m, 1e-6)))
        sm = np.abs(smooth(channel(pl), w))
        head = sm[pl.depth <= float(np.nanmin(pl.depth)) + self.head_m]
        level = float(np.nanmax(head)) if np.any(np.isfinite(head)) else math.inf
        for a in detect(pl, config=self.cfg.detect):
            left = a.depth_top > now + self.head_m or level < self.complete_frac * abs(
                a.amplitude_nT)
            if not final and not (now < a.depth_peak - self.guard_m and left):
                continue
            # Already sent: as the log grows, the same anomaly's peak can move
            # to another lobe, so its extent, not only its peak, identifies it.
            if any(h == cur["hole"] and (abs(dp - a.depth_peak) < 0.5
                                         or d0 - 0.1 <= a.depth_peak <= d1 + 0.1
                                         or a.depth_top <= dp <= a.depth_bottom)
                   for h, dp, d0, d1 in self._emitted):
                continue
            fit_distance(pl, a, config=self.cfg.detect)
            self._emitted.append((cur["hole"], a.depth_peak, a.depth_top, a.depth_bottom))
            self._anomaly_id += 1
            j = int(np.argmin(np.abs(depth - a.depth_peak)))
            out.append(Anomaly(
                stream_id=self.desc.stream_id, anomaly_id=self._anomaly_id, lane=-1,
                sample_index=j, t_ns=round(float(t[j]) * 1e9), x=cur["x"], y=cur["y"],
                amplitude_nT=float(a.amplitude_nT), polarity=1 if a.amplitude_nT >= 0 else -1,
                width_m=float(a.distance_m), depth=float(a.depth), hole=cur["hole"]))
        return out

    def _update_targets(self, around: tuple[float, float] | None) -> list[Target]:
        """Targets after a new hole (incremental around it) or for the whole layer (None)."""
        full = around is None or self.result is None
        if full:
            res = process_logs(self.plogs, self.field, self.cfg)
        else:
            res = process_logs(self.plogs, self.field, self.cfg, prior=self.result, around=around)
        self.result = res
        self._exact = full
        out: list[Target] = []
        used: set[int] = set()
        for t in res.targets:
            best, bd = None, math.inf
            for tid, old in self._targets.items():
                if tid in used:
                    continue
                dd = math.dist((old.x, old.y, old.depth), (t.x, t.y, t.depth))
                if dd < bd:
                    best, bd = tid, dd
            reach = 1.0
            if best is not None and "no_neighbours" in self._targets[best].flags:
                # A single-hole target sits at its hole: its object is up to
                # its distance away.
                reach = max(reach, 1.5 * self._targets[best].sigma_x)
            if best is not None and bd < reach:
                old = self._targets[best]
                used.add(best)
                new = _with(t, best, old.revision)
                if (bd > 0.02 or new.holes != old.holes or new.flags != old.flags
                        or abs(new.quality - old.quality) > 0.02):
                    new = _with(t, best, old.revision + 1)
                    out.append(new)
                self._targets[best] = new
            else:
                tid = self._next_id
                self._next_id += 1
                used.add(tid)
                new = _with(t, tid, 0)
                self._targets[tid] = new
                out.append(new)
        # Targets the new solution no longer holds (e.g. a single-hole estimate
        # now explained with the neighbours) are withdrawn, with one last revision.
        for tid in [tid for tid in self._targets if tid not in used]:
            old = self._targets.pop(tid)
            d = old.to_dict()
            d["revision"] = old.revision + 1
            d["flags"] = [*old.flags, "withdrawn"]
            d["quality"] = 0.0
            out.append(Target.from_dict(d))
        return out

    @property
    def targets(self) -> list[Target]:
        """The current estimate of every target (latest revision)."""
        return list(self._targets.values())


def _with(t: Target, tid: int, revision: int) -> Target:
    d = t.to_dict()
    d["target_id"] = tid
    d["revision"] = revision
    return Target.from_dict(d)
