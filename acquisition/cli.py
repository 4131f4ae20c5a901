"""The ``uxo`` command: ``acquire`` here, every other sub-command from entry points.

Sub-commands are contributed through the ``uxo.commands`` entry-point group
(see pyproject.toml), so the simulator, recorder and any plug-in package add
commands without this module importing them. A plug-in that fails to load
is reported and skipped; the rest of the tool keeps working.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from importlib.metadata import entry_points

from acquisition import __version__
from acquisition.cli_common import (
    add_bus_arguments,
    add_field_arguments,
    bus_options_from_args,
    field_from_args,
    parse_options,
)
from acquisition.errors import UxoError

log = logging.getLogger("uxo")


def _register_acquire(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "acquire",
        help="run the acquisition service on a port",
        description="Read an instrument on a port URL, process, publish events and record.",
    )
    p.add_argument("--driver", required=True, help="driver name (see `uxo drivers`)")
    p.add_argument("--port", required=True,
                   help="port URL: /dev/ttyUSB0, hwgrep://VID:PID, socket://h:p, sim://demo")
    p.add_argument("--fallback-port", action="append", default=[],
                   help="URL to try when --port cannot be opened (e.g. hwgrep://0403:6001)")
    p.add_argument("--stream-id", help="stream name (default: driver name)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="driver option, repeatable (e.g. kind=total, rate_hz=10)")
    p.add_argument("--gnss-driver", metavar="NAME",
                   help="driver of a GNSS receiver giving positions by time (e.g. nmea)")
    p.add_argument("--gnss-port", metavar="URL", help="port URL of the GNSS receiver")
    p.add_argument("--gnss-opt", action="append", metavar="KEY=VALUE",
                   help="GNSS driver option, repeatable")
    p.add_argument("--publish", metavar="ENDPOINT", help="ZeroMQ endpoint to bind, "
                   "e.g. tcp://*:5556")
    p.add_argument("--record", metavar="FILE", help="HDF5 file to record to")
    p.add_argument("--session", help="session id (default: random)")
    p.add_argument("--no-process", action="store_true", help="acquire and record only")
    p.add_argument("--decimate", type=int, default=None, metavar="K",
                   help="publish every k-th sample of data blocks; 1 = full rate "
                        "(default: a preview of at most 50 samples/s per stream)")
    p.add_argument("--stall", type=float, default=3.0, help="stall watchdog, seconds")
    p.add_argument("--idle-exit", type=float, metavar="S",
                   help="stop when no data arrived for S seconds")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE",
                   help="operator/site metadata recorded as provenance, repeatable")
    p.add_argument("--view", metavar="[HOST:]PORT",
                   help="also serve the operator's live view (docs/view.md) on [HOST:]PORT")
    add_field_arguments(p)
    add_bus_arguments(p, publisher=True)
    p.set_defaults(func=_cmd_acquire)


def _cmd_acquire(args: argparse.Namespace) -> int:
    from acquisition.drivers import registry
    from acquisition.events import Anomaly, StateChange, Target
    from acquisition.service import AcquisitionService, ServiceConfig

    options = parse_options(args.opt)
    if args.stream_id:
        options["stream_id"] = args.stream_id
    if bool(args.gnss_driver) != bool(args.gnss_port):
        print("uxo acquire: --gnss-driver and --gnss-port go together", file=sys.stderr)
        return 2
    try:
        bus_options = bus_options_from_args(args, bind=args.publish) if args.publish else {}
        earth_field = field_from_args(args)
        driver = registry.create(args.driver, args.port, **options)
        gnss = None
        if args.gnss_driver:
            gnss = registry.create(args.gnss_driver, args.gnss_port,
                                   **{"stream_id": "gnss", **parse_options(args.gnss_opt)})
    except (LookupError, TypeError, ValueError) as exc:
        print(f"uxo acquire: {exc}", file=sys.stderr)
        return 2
    view = None
    if args.view:
        from acquisition.view.cli import serve_for_service

        try:
            # The view is a client of the service's own bus: with keys, it
            # authenticates from the same key directory.
            view, args.publish = serve_for_service(
                args.publish, args.view,
                subscriber_options={"bus_keys": args.bus_keys} if bus_options else None)
        except (ValueError, OSError, RuntimeError) as exc:
            print(f"uxo acquire: {exc}", file=sys.stderr)
            return 2
    config = ServiceConfig(
        publish=args.publish,
        record=args.record,
        earth_field=earth_field,
        process=not args.no_process,
        block_decimation=args.decimate,
        stall_s=args.stall,
        idle_exit_s=args.idle_exit,
        max_runtime_s=args.duration,
        provenance={f"meta_{k}": str(v) for k, v in parse_options(args.meta).items()},
        bus_options=bus_options,
        insecure=args.insecure,
    )
    if args.session:
        config.session = args.session

    def show(ev: Anomaly | Target | StateChange) -> None:
        if isinstance(ev, Target):
            print(f"target  #{ev.target_id} x={ev.x:.2f} y={ev.y:.2f} depth={ev.depth:.2f} m "
                  f"moment={ev.moment_abs:.3g} A m2 {ev.size_class} q={ev.quality:.2f}",
                  flush=True)
        elif isinstance(ev, Anomaly):
            print(f"anomaly lane {ev.lane} x={ev.x:.2f} y={ev.y:.2f} "
                  f"{ev.amplitude_nT:+.1f} nT", flush=True)
        else:
            print(f"state   {ev.state} {ev.reason}", flush=True)

    try:
        service = AcquisitionService(driver, config, gnss=gnss, on_event=show,
                                     runner_options={"fallback_urls": tuple(args.fallback_port)})
    except UxoError as exc:  # e.g. --record onto an existing file
        for d in (driver, gnss):
            if d is not None:
                d.close()
        print(f"uxo acquire: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C and SIGTERM ask the loop to stop between two blocks, so nothing is
    # interrupted half-written; a second Ctrl-C interrupts at once.
    def on_signal(signum: int, frame: object) -> None:
        if service.stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt
        service.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"session {config.session}: {args.driver} on {args.port}", flush=True)
    try:
        summary = service.run()
    finally:
        if view is not None:
            view.stop()
    print(f"stopped: {summary.samples} samples in {summary.blocks} blocks, "
          f"{len(summary.targets)} targets", flush=True)
    for f in summary.record_files:
        print(f"recorded: {f}")
    if summary.recorder_error:
        print(f"recorder error: {summary.recorder_error}", file=sys.stderr)
        return 1
    return 0


def _register_drivers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drivers", help="list the drivers that are installed")
    p.set_defaults(func=_cmd_drivers)


def _cmd_drivers(args: argparse.Namespace) -> int:
    from acquisition.drivers import registry

    for name in registry.available():
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uxo", description="UXO detector acquisition")
    parser.add_argument("--version", action="version", version=f"uxo {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register_acquire(sub)
    _register_drivers(sub)
    for ep in sorted(entry_points(group="uxo.commands"), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plug-in must not take the tool down
            log.warning("command %s unavailable: %s", ep.name, exc)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`uxo ... | head`): stop quietly as Unix tools do;
        # stdout goes to /dev/null so the interpreter's last flush cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer


if __name__ == "__main__":
    sys.exit(main())
