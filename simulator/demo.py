"""``uxo demo``: the whole chain on the built-in simulator, end to end, in one command.

A simulated gradiometer cart walks a lane survey (scenario ``demo``: 10 m x
20 m, lanes 1 m apart, north-south, zig-zag) over buried objects in Quang
Tri's Earth field. The emulator writes the instrument's UXG byte stream into a
real pseudo-terminal; the acquisition service opens that tty through pyserial
with the ``gradline`` driver, runs the lane DSP, publishes on ZeroMQ and
records the raw trace to HDF5. A subscriber on the bus counts what arrived.
At the end the detected targets are printed beside the simulator's ground
truth with their errors, and the recording is reopened and checked.

`run_demo` is also what the end-to-end tests call, so the demo and the tests
exercise the same wiring.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from acquisition.cli_common import add_bus_arguments, bus_options_from_args, stop_on_signals
from acquisition.drivers import registry
from acquisition.events import Anomaly, StateChange, Target, latest_targets
from acquisition.service import AcquisitionService, ServiceConfig, ServiceSummary
from acquisition.subscriber import Subscriber
from simulator.emulators.gradline import FaultPlan, GradLineEmulator
from simulator.scenario import load_scenario
from simulator.scoring import MatchResult, match
from simulator.survey import SimulatedSurvey, simulate_survey

#: A reported target within this horizontal distance of a truth counts as found.
MATCH_GATE_M = 1.0


@dataclass
class DemoResult:
    survey: SimulatedSurvey
    summary: ServiceSummary
    match: MatchResult
    record_path: Path | None
    bus_counts: dict[str, int] = field(default_factory=dict)
    bus_gaps: int = 0
    bus_rejected: int = 0
    lines_sent: int = 0
    emulator_log: dict[str, Any] = field(default_factory=dict)

    @property
    def targets(self) -> list[Target]:
        return latest_targets(self.summary.targets)


class _BusListener(threading.Thread):
    """Counts what a real ZeroMQ subscriber receives, until the session stops."""

    def __init__(self, endpoint: str, **subscriber_options: Any) -> None:
        super().__init__(name="demo-subscriber", daemon=True)
        self.sub = Subscriber(endpoint, **subscriber_options)
        self.counts: dict[str, int] = {}
        self.done = threading.Event()
        self.stop_requested = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop_requested.is_set():
                msg = self.sub.recv(timeout_s=0.1)
                if msg is None:
                    continue
                self.counts[msg.kind] = self.counts.get(msg.kind, 0) + 1
                if msg.kind == "session_stop":
                    break
        finally:
            self.done.set()

    def close(self) -> None:
        self.stop_requested.set()
        self.join(5)
        self.sub.close()


def planned_lanes(sc: Any) -> list[list[float]]:
    """The scenario's lanes in walking order as ``[x0, y0, x1, y1]`` (session info
    key ``planned_lanes``; the live view draws them and checks coverage)."""
    a, sp = sc.area, sc.survey.lane_spacing_m
    out = []
    for i in range(sc.n_lanes):
        x = round(a.x0 + sp / 2 + i * sp, 6)
        ys = (a.y0, a.y0 + a.length) if i % 2 == 0 else (a.y0 + a.length, a.y0)
        out.append([x, ys[0], x, ys[1]])
    return out


def run_demo(
    scenario: str = "demo",
    *,
    speed: float = 20.0,
    out_dir: str | Path | None = None,
    seed: int | None = None,
    faults: FaultPlan | None = None,
    publish: str | None = None,
    on_event: Any = None,
    bus_options: dict[str, Any] | None = None,
    listener_options: dict[str, Any] | None = None,
    insecure: bool = False,
) -> DemoResult:
    """Run simulator -> pty -> service -> bus + HDF5; return what happened."""
    sc = load_scenario(scenario, seed=seed)
    survey = simulate_survey(sc)
    emulator = GradLineEmulator(survey, speed=speed, faults=faults)
    tmp = None
    if publish is None:
        tmp = tempfile.TemporaryDirectory(prefix="uxo-demo-")
        publish = f"ipc://{tmp.name}/bus"
    config = ServiceConfig(publish=publish, stall_s=5.0, idle_exit_s=30.0,
                           provenance={"scenario": sc.name, "scenario_seed": sc.seed,
                                       "simulated": True,
                                       "planned_lanes": planned_lanes(sc)},
                           bus_options=dict(bus_options or {}), insecure=insecure)
    config.earth_field = sc.field
    record_path = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        record_path = Path(out_dir) / f"uxo-demo-{config.session}.h5"
        config.record = str(record_path)
    driver = registry.create(
        "gradline", emulator.path, stream_id="grad0", block_size=100,
        kind=sc.sensor.kind, sensor_height_m=sc.sensor.height_m,
        sensor_separation_m=sc.sensor.separation_m, rate_hz=sc.survey.rate_hz,
        serial="SIM0001",
    )
    listener = _BusListener(publish, **(listener_options or {}))
    listener.start()
    service: AcquisitionService

    started = threading.Event()

    def watch(ev: Anomaly | Target | StateChange) -> None:
        # Start the device once the service has the port open, so no byte is
        # written before anybody listens.
        if isinstance(ev, StateChange) and ev.state == "connected" and not started.is_set():
            started.set()
            threading.Thread(target=drive_device, name="demo-device", daemon=True).start()
        if on_event is not None:
            on_event(ev)

    def drive_device() -> None:
        # ZeroMQ subscriptions take a moment to arrive; the demo's own listener
        # should see the whole session, so wait for it (bounded) first.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            pub = service.publisher
            if pub is not None and pub.subscriptions > 0:
                break
            time.sleep(0.01)
        emulator.start()
        emulator.wait()
        emulator.drain(10.0)
        service.stop()

    service = AcquisitionService(driver, config, on_event=watch)
    try:
        summary = service.run()
    finally:
        emulator.close()
        listener.done.wait(3.0)
        listener.close()
        if tmp is not None:
            tmp.cleanup()
    truth = np.array([[t.x, t.y, t.depth] for t in survey.truth]).reshape(-1, 3)
    found = latest_targets(summary.targets)
    reports = np.array([[t.x, t.y, t.depth] for t in found]).reshape(-1, 3)
    return DemoResult(
        survey=survey, summary=summary, match=match(truth, reports, gate_m=MATCH_GATE_M),
        record_path=record_path, bus_counts=dict(listener.counts),
        bus_gaps=sum(listener.sub.gaps.values()), bus_rejected=listener.sub.rejected,
        lines_sent=emulator.log.lines_sent, emulator_log=emulator.log.to_dict(),
    )


def print_report(res: DemoResult, out: TextIO | None = None) -> None:
    # Resolved at call time: a default of sys.stdout would keep the stream of
    # the moment of import (a closed one, after a test's capture).
    out = sys.stdout if out is None else out
    s = res.survey
    w = out.write
    w(f"\nsimulated {s.n} samples over {len(set(s.lane.tolist()))} lanes; "
      f"service received {res.summary.samples} samples in {res.summary.blocks} blocks\n")
    w(f"bus: {sum(res.bus_counts.values())} messages "
      f"({', '.join(f'{k} {v}' for k, v in sorted(res.bus_counts.items()))}), "
      f"{res.bus_gaps} sequence gaps, {res.bus_rejected} rejected\n\n")
    found = res.targets
    w(f"{'truth':<22} {'x':>6} {'y':>6} {'depth':>6} {'moment':>7} | "
      f"{'found x':>7} {'y':>6} {'depth':>6} {'moment':>7} {'class':<16} | "
      f"{'dxy m':>6} {'ddepth':>7}\n")
    matched = {p.truth_index: p for p in res.match.pairs}
    for i, t in enumerate(s.truth):
        left = (f"{t.name[:22]:<22} {t.x:6.2f} {t.y:6.2f} {t.depth:6.2f} "
                f"{t.moment_abs:7.3g} | ")
        p = matched.get(i)
        if p is None:
            note = "" if t.detectable else " (below 8x noise)"
            w(left + f"{'not found' + note:<56}|\n")
            continue
        f = found[p.report_index]
        w(left + f"{f.x:7.2f} {f.y:6.2f} {f.depth:6.2f} {f.moment_abs:7.3g} "
          f"{f.size_class:<16} | {p.horizontal_error_m:6.2f} {p.depth_error_m:+7.2f}\n")
    for j in res.match.false_picks:
        f = found[j]
        w(f"{'(no truth: false pick)':<22} {'':>6} {'':>6} {'':>6} {'':>7} | "
          f"{f.x:7.2f} {f.y:6.2f} {f.depth:6.2f} {f.moment_abs:7.3g} {f.size_class:<16} |\n")
    det = [i for i, t in enumerate(s.truth) if t.detectable]
    errs = res.match.horizontal_errors
    w(f"\nfound {len(res.match.pairs)} of {len(s.truth)} targets "
      f"(recall of detectable ones: {res.match.recall(det):.0%}), "
      f"{len(res.match.false_picks)} false picks")
    if len(errs):
        w(f"; horizontal error median {np.median(errs):.2f} m, max {errs.max():.2f} m")
    w("\n")
    if res.record_path is not None:
        w(f"recording: {res.record_path}  (inspect with: uxo inspect {res.record_path})\n")
    if res.summary.recorder_error:
        w(f"recorder error: {res.summary.recorder_error}\n")


def register_demo(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo", help="run simulator -> pty -> service -> ZeroMQ + HDF5 end to end",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="demo", help="bundled scenario name or TOML file")
    p.add_argument("--speed", type=float, default=20.0,
                   help="simulated walking speed-up, x real time (default 20)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default="uxo-demo-out", help="directory for the HDF5 recording")
    p.add_argument("--publish", default=None,
                   help="ZeroMQ endpoint to bind (default: a private ipc socket); "
                        "e.g. tcp://127.0.0.1:5556 to watch with `uxo tail`")
    p.add_argument("--view", metavar="[HOST:]PORT",
                   help="serve the operator's live view on [HOST:]PORT (default host "
                        "127.0.0.1); it keeps serving after the survey until Ctrl-C")
    add_bus_arguments(p, publisher=True)
    p.set_defaults(func=_cmd_demo)
    return p


def _cmd_demo(args: argparse.Namespace) -> int:
    print(f"uxo demo: scenario {args.scenario!r}, walking at {args.speed:g}x real time ...",
          flush=True)

    def show(ev: Anomaly | Target | StateChange) -> None:
        if isinstance(ev, Anomaly):
            print(f"  anomaly  lane {ev.lane:2d} at x={ev.x:5.2f} y={ev.y:5.2f} "
                  f"{ev.amplitude_nT:+8.1f} nT", flush=True)
        elif isinstance(ev, Target):
            print(f"  target   #{ev.target_id} x={ev.x:5.2f} y={ev.y:5.2f} "
                  f"depth={ev.depth:4.2f} m moment={ev.moment_abs:.3g} A m2", flush=True)
        elif ev.state not in ("connecting",):
            print(f"  state    {ev.state}: {ev.reason}", flush=True)

    bus: dict[str, Any] = {}
    listen: dict[str, Any] = {}
    try:
        # The default bus is a private ipc socket: nothing to refuse there.
        bus = bus_options_from_args(args, bind=args.publish or "ipc://")
        if bus:
            # The demo's own listener (and its view) are clients of the same key directory.
            listen = {"bus_keys": args.bus_keys}
    except ValueError as exc:
        print(f"uxo demo: {exc}", file=sys.stderr)
        return 2
    view = None
    publish = args.publish
    if args.view:
        from acquisition.view.cli import serve_for_service

        try:
            view, publish = serve_for_service(publish, args.view, subscriber_options=listen)
        except (ValueError, OSError, RuntimeError) as exc:
            print(f"uxo demo: {exc}", file=sys.stderr)
            return 2
    try:
        res = run_demo(args.scenario, speed=args.speed, out_dir=args.out, seed=args.seed,
                       publish=publish, on_event=show, bus_options=bus,
                       listener_options=listen, insecure=args.insecure)
        print_report(res)
        if view is not None:
            # Ctrl-C and SIGTERM end the serving cleanly, even when started in the background.
            stop_on_signals(view.interrupt)
            print(f"\nthe live view keeps serving at {view.url} ; Ctrl-C to stop", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                view.wait()
    finally:
        if view is not None:
            view.stop()
    return 0
