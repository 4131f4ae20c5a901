"""``uxo record``, ``uxo inspect``, ``uxo verify`` and ``uxo export`` sub-commands.

Registered through the ``uxo.commands`` entry points; heavy imports (h5py,
zmq) happen only when a command runs, so ``uxo --help`` stays fast.

Exit codes: ``verify`` 0 intact, 1 changed or broken, 2 unreadable; the other
commands 0 on success, 2 when the input cannot be read or used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from acquisition.cli_common import add_bus_arguments


def _fmt_ns(ns: int) -> str:
    if not ns:
        return "-"
    ms = ns % 10**9 // 10**6
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns / 1e9)) + f".{ms:03d}Z"


def _parse_meta(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"--meta expects KEY=VALUE, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


# --- record ------------------------------------------------------------------------------
def register_record(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record a publisher's streams and events to HDF5",
                       description="Subscribe to ENDPOINT and archive every stream, event "
                                   "and gap seen into DIR (SWMR HDF5, rotated).")
    p.add_argument("endpoint", help="publisher endpoint, e.g. tcp://192.168.1.10:5556")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the files")
    p.add_argument("--session", help="session id (default: the publisher's)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--until-stop", action="store_true",
                   help="stop when the publisher's session stops")
    p.add_argument("--flush", type=float, default=1.0, metavar="S",
                   help="flush interval (the most a crash can lose), default 1 s")
    p.add_argument("--rotate-mb", type=float, metavar="MB", help="start a new file past MB")
    p.add_argument("--rotate-s", type=float, metavar="S", help="start a new file every S s")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE",
                   help="operator/site metadata recorded as provenance, repeatable")
    p.add_argument("--server-key", help="publisher's CURVE public key (z85)")
    p.add_argument("--max-streams", type=int, default=16, metavar="N",
                   help="record at most N streams; blocks of others are dropped and counted")
    p.add_argument("--hold-mb", type=float, default=64.0, metavar="MB",
                   help="most held per stream waiting for its descriptor (default 64)")
    p.add_argument("--hold-total-mb", type=float, default=256.0, metavar="MB",
                   help="most held in total waiting for descriptors (default 256)")
    add_bus_arguments(p)
    p.set_defaults(func=_cmd_record)


def _cmd_record(args: argparse.Namespace) -> int:
    import threading

    from acquisition.cli_common import bus_options_from_args, stop_on_signals
    from recorder.subscriber_recorder import record

    try:
        opts: dict[str, Any] = bus_options_from_args(args)
    except ValueError as exc:
        print(f"uxo record: {exc}", file=sys.stderr)
        return 2
    if args.server_key and not opts:
        opts["curve_server_key"] = args.server_key
    if args.max_streams < 1 or args.hold_mb <= 0 or args.hold_total_mb <= 0:
        print("uxo record: --max-streams, --hold-mb and --hold-total-mb must be positive",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    # SIGTERM/SIGINT end the recording cleanly: file closed, summary printed.
    stop_on_signals(stop.set)
    s = record(args.endpoint, args.out, session=args.session, provenance=_parse_meta(args.meta),
               duration_s=args.duration, until_session_stop=args.until_stop, stop=stop,
               flush_interval_s=args.flush,
               rotate_bytes=int(args.rotate_mb * 1e6) if args.rotate_mb else None,
               rotate_s=args.rotate_s, max_streams=args.max_streams,
               hold_bytes=int(args.hold_mb * 1e6), hold_bytes_total=int(args.hold_total_mb * 1e6),
               **opts)
    for f in s.files:
        print(f"recorded: {f}")
    print(f"{s.blocks} blocks, {s.samples} samples, {s.events} events, "
          f"{s.wire_gaps} wire gaps ({s.missing_messages} messages lost), "
          f"{s.rejected} rejected" + (f", {s.wire_resets} seq resets" if s.wire_resets else ""),
          flush=True)
    if s.drops:
        print(f"dropped: {s.drops}", flush=True)
    for e in s.errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if s.errors else 0


# --- inspect ------------------------------------------------------------------------------
def summarise(rec: Any, *, integrity: bool = True) -> dict[str, Any]:
    """A JSON-able summary of a recording (what ``uxo inspect`` prints)."""
    streams = {}
    for sid, s in rec.streams.items():
        b = s.blocks
        n = int(b["n"].sum()) if len(b) else 0
        t_first = int(b["t0_ns"][0]) if len(b) else 0
        t_end = (int(b["t0_ns"][-1]) + round(int(b["n"][-1]) * 1e9 / float(b["rate_hz"][-1]))
                 if len(b) else 0)
        gaps = s.gaps
        streams[sid] = {
            "instrument": s.descriptor.instrument,
            "serial": s.descriptor.serial,
            "driver": s.descriptor.driver,
            "rate_hz": s.descriptor.rate_hz,
            "channels": list(s.descriptor.channel_names),
            "units": [c.units for c in s.descriptor.channels],
            "samples": n,
            "blocks": len(b),
            "start_wall_ns": t_first,
            "duration_s": (t_end - t_first) / 1e9 if len(b) else 0.0,
            "gaps": len(gaps),
            "missing_samples": int(gaps["n_missing"][gaps["n_missing"] > 0].sum()),
            "positions": s.has_positions,
            "uncommitted_rows": s.uncommitted_rows,
        }
    kinds: dict[str, int] = {}
    for e in rec.events:
        kinds[e.get("kind", "?")] = kinds.get(e.get("kind", "?"), 0) + 1
    out: dict[str, Any] = {
        "session": rec.session,
        "files": [str(p) for p in rec.paths],
        "status": rec.status,
        "provenance": rec.attrs,
        "streams": streams,
        "events": kinds,
        "problems": list(rec.problems),
    }
    if integrity:
        from recorder.integrity import verify_files

        rep = verify_files(rec.paths)
        out["integrity"] = {"ok": rep.ok, "changed": [c.describe() for c in rep.changed],
                            "problems": rep.problems}
    return out


def _print_summary(s: dict[str, Any]) -> None:
    st = s["status"]
    print(f"session {s['session']}: {len(s['files'])} file(s), state {st['state']}, "
          f"last flush {_fmt_ns(st['last_flush_wall_ns'])}, "
          f"stopped {_fmt_ns(st['stopped_wall_ns'])}")
    for f in s["files"]:
        print(f"  file {f}")
    prov = s["provenance"]
    for k in sorted(prov):
        print(f"  {k}: {prov[k]}")
    for sid, d in s["streams"].items():
        print(f"stream {sid}: {d['instrument']} #{d['serial']} ({d['driver']}), "
              f"{d['rate_hz']:g} Hz, channels {', '.join(d['channels'])}")
        print(f"  {d['samples']} samples in {d['blocks']} blocks, {d['duration_s']:.3f} s from "
              f"{_fmt_ns(d['start_wall_ns'])}; {d['gaps']} gap(s), "
              f"{d['missing_samples']} samples missing"
              + ("" if not d["uncommitted_rows"] else
                 f"; {d['uncommitted_rows']} rows after the last chain link (not shown)"))
    ev = ", ".join(f"{v} {k}" for k, v in sorted(s["events"].items())) or "none"
    print(f"events: {ev}")
    for p in s["problems"]:
        print(f"problem: {p}")
    if "integrity" in s:
        i = s["integrity"]
        print("integrity: " + ("intact" if i["ok"] else "CHANGED OR BROKEN"))
        for line in i["changed"] + i["problems"]:
            print(f"  {line}")


def register_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="summarise a recording",
                       description="Streams, duration, samples, gaps, events and integrity "
                                   "of a recording (a file, or a directory of one session).")
    p.add_argument("file", help="recording file or session directory")
    p.add_argument("--follow", action="store_true",
                   help="keep reading a file that is being written; one line per second")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--max-updates", type=int, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_inspect)


def _open_or_report(open_recording: Any, path: str) -> Any:
    """Open a recording, or say on stderr why not and return None."""
    try:
        return open_recording(path)
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return None


def _cmd_inspect(args: argparse.Namespace) -> int:
    from recorder.reader import RecordingError, open_recording

    rec = _open_or_report(open_recording, args.file)
    if rec is None:
        return 2
    with rec:
        if not args.follow:
            try:
                s = summarise(rec)
            except (RecordingError, OSError) as exc:
                print(f"cannot read {args.file}: {exc}", file=sys.stderr)
                return 2
            if args.json:
                print(json.dumps(s, indent=2, default=str))
            else:
                _print_summary(s)
            return 0
        updates = 0
        try:
            while True:
                rec.refresh()
                s = summarise(rec, integrity=False)
                if args.json:
                    print(json.dumps(s, default=str), flush=True)
                else:
                    parts = [f"{sid}: {d['samples']} samples, {d['gaps']} gaps"
                             for sid, d in s["streams"].items()]
                    print(f"{_fmt_ns(time.time_ns())} [{s['status']['state']}] "
                          + "; ".join(parts) + f"; events {sum(s['events'].values())}",
                          flush=True)
                updates += 1
                if s["status"]["state"] != "writing (or crashed)":
                    return 0
                if args.max_updates is not None and updates >= args.max_updates:
                    return 0
                time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


# --- verify -------------------------------------------------------------------------------
def register_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check a recording's raw data against its SHA-256 chain",
                       description="Recompute the SHA-256 chain. Exit 0: intact; 1: data "
                                   "changed or chain broken; 2: unreadable.")
    p.add_argument("file", help="recording file, or a directory of one session")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_verify)


def _cmd_verify(args: argparse.Namespace) -> int:
    from recorder.integrity import verify_files
    from recorder.reader import session_files

    path = Path(args.file)
    try:
        files = session_files(path) if path.is_dir() else [path]
        if not files:
            raise OSError("no recording files")
        rep = verify_files(files)
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
    else:
        for c in rep.chains:
            print(f"{c.name}: {c.links} links, {c.rows} rows, head {c.head}"
                  + (f", {c.uncommitted_rows} rows after the last link" if c.uncommitted_rows
                     else ""))
        for ch in rep.changed:
            print(f"CHANGED {ch.describe()}")
        for p in rep.problems:
            print(f"PROBLEM {p}")
        print(f"{args.file}: " + ("intact" if rep.ok else "NOT INTACT"))
    return 0 if rep.ok else 1


# --- export -------------------------------------------------------------------------------
def register_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a recording as a survey CSV",
                       description="Write a recorded stream as the survey CSV "
                                   "(# uxo-survey v1) of docs/formats.")
    p.add_argument("file", help="recording file or session directory")
    p.add_argument("--csv", required=True, metavar="OUT", help="output file, or - for stdout")
    p.add_argument("--stream", help="stream to export (default: the one with positions)")
    p.add_argument("--channel", help="channel to export (default: the only one)")
    p.add_argument("--accept-damaged", action="store_true",
                   help="export even when the integrity chain does not verify (NOT INTACT); "
                        "the CSV then says so in its metadata")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from acquisition.outfile import OutputError, open_output
    from recorder.export import ExportError, write_survey_csv
    from recorder.integrity import not_intact
    from recorder.reader import RecordingError, open_recording

    rec = _open_or_report(open_recording, args.file)
    if rec is None:
        return 2
    with rec:
        damage = not_intact(rec.paths)
        if damage:
            print(f"{args.file}: {damage}", file=sys.stderr)
            if not args.accept_damaged:
                print("not exported (--accept-damaged exports it anyway)", file=sys.stderr)
                return 1
            rec.attrs["integrity"] = damage
        try:
            if args.csv == "-":
                rep = write_survey_csv(rec, sys.stdout, stream=args.stream, channel=args.channel)
            else:
                with open_output(args.csv, newline="") as f:
                    rep = write_survey_csv(rec, f, stream=args.stream, channel=args.channel)
        except (ExportError, RecordingError, OutputError, KeyError) as exc:
            print(f"cannot export: {exc}", file=sys.stderr)
            return 2
    print(f"exported {rep.rows} rows of {rep.stream} ({', '.join(rep.channels)})"
          + (f", skipped {rep.skipped} rows without position or value" if rep.skipped else ""),
          file=sys.stderr)
    return 0
