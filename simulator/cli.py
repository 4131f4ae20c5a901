"""``uxo simulate``: make a survey from a scenario, as CSV files or live on a pty.

    uxo simulate --scenario demo --survey-csv s.csv --truth-csv t.csv
    uxo simulate --scenario demo --pty --speed 5 --faults garbage,truncate
    uxo simulate --scenario demo --pty --protocol nmea

With ``--pty`` the first line on stdout is ``tty: /dev/pts/N`` (the path a
reader opens; a new ``tty:`` line follows whenever the device reappears after
a hang-up), then the survey is streamed in the line protocol ``--protocol``
names (default the UXG cart, ``gradline``; any of gradline, g882, gsm19, fga,
fgm3d, nmea, lineproto, borehole). stderr says which driver, with which
options, reads it. The command
exits when everything has been sent and read (or after ``--linger`` seconds),
printing ``sent: {...}`` counts. Without ``--pty`` it writes the CSV files
asked for and prints the ground truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from simulator.emulators.base import FAULT_NAMES, FaultPlan
from simulator.emulators.devices import DEVICES, make_emulator, script_for
from simulator.scenario import ScenarioError, bundled_scenarios, load_scenario
from simulator.survey import simulate_survey


def register_simulate(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``simulate`` sub-command to an argparse sub-parsers object."""
    p = subparsers.add_parser(
        "simulate", help="simulate a survey (CSV files, or live on a pseudo-terminal)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="demo",
                   help=f"scenario file or bundled name ({', '.join(bundled_scenarios())})")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--pty", action="store_true",
                   help="stream the survey on a pseudo-terminal (prints 'tty: PATH' first)")
    p.add_argument("--protocol", choices=tuple(DEVICES), default="gradline",
                   help="instrument protocol to speak with --pty (default gradline)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="x real time for --pty (0 = as fast as possible; default 1)")
    p.add_argument("--faults", default="",
                   help=f"comma list of faults to inject: {','.join(FAULT_NAMES)}")
    p.add_argument("--fault-rate", type=float, default=0.01,
                   help="probability per line of each line fault (default 0.01)")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--reappear", choices=("new", "same", "never"), default="new",
                   help="after a hang-up the device reappears on a new path, the same "
                        "path (a symlink, see --link) or never")
    p.add_argument("--link", default=None,
                   help="keep a symlink at this path pointing to the current pty")
    p.add_argument("--no-banner", action="store_true", help="do not send the banner line")
    p.add_argument("--wait-start", action="store_true",
                   help="with --pty, send nothing until the reader writes any byte")
    p.add_argument("--linger", type=float, default=10.0,
                   help="with --pty, seconds to wait for a reader to take the last bytes")
    p.add_argument("--truth-csv", default=None, help="write the ground truth here")
    p.add_argument("--survey-csv", default=None, help="write the survey CSV (uxo-survey v1)")
    p.set_defaults(func=run_simulate)
    return p


def run_simulate(args: argparse.Namespace) -> int:
    try:
        sc = load_scenario(args.scenario, seed=args.seed)
    except ScenarioError as exc:
        print(f"uxo simulate: {exc}", file=sys.stderr)
        return 2
    survey = simulate_survey(sc)
    try:
        if args.survey_csv:
            survey.write_survey_csv(args.survey_csv)
        if args.truth_csv:
            survey.write_truth_csv(args.truth_csv)
    except OSError as exc:
        print(f"uxo simulate: cannot write: {exc}", file=sys.stderr)
        return 2
    if not args.pty:
        print(f"scenario {sc.name}: {survey.n} samples, {len(survey.truth)} targets")
        for t in survey.truth:
            print(f"  {t.id:3d} {t.kind:14s} x={t.x:8.3f} y={t.y:8.3f} depth={t.depth:6.2f} "
                  f"moment={t.moment_abs:8.3f} peak={t.peak_abs_nT:9.2f} nT"
                  f"{'' if t.detectable else '  (below 8x noise)'}  {t.name}")
        return 0
    try:
        protocol = getattr(args, "protocol", "gradline")
        script = script_for(protocol, survey)
        plan = (FaultPlan.from_names(args.faults, n_lines=script.n, rate=args.fault_rate,
                                     seed=args.fault_seed, reappear=args.reappear)
                if args.faults else FaultPlan(reappear=args.reappear))
        emu = make_emulator(protocol, survey, speed=args.speed, faults=plan,
                            banner=not args.no_banner, link_path=args.link,
                            wait_for_start=args.wait_start)
    except (ValueError, OSError) as exc:
        print(f"uxo simulate: {exc}", file=sys.stderr)
        return 2
    with emu:
        print(f"tty: {emu.path}", flush=True)
        print(f"uxo simulate: protocol {protocol}: read with driver {script.driver!r}, "
              f"options {json.dumps(script.driver_options)}", file=sys.stderr, flush=True)
        seen = emu.generation
        emu.start()
        try:
            while not emu.wait(0.2):
                if emu.generation != seen:
                    seen = emu.generation
                    print(f"tty: {emu.path}", flush=True)
            emu.drain(args.linger)
        except KeyboardInterrupt:
            emu.stop()
            print(f"sent: {json.dumps(emu.log.to_dict())}", flush=True)
            return 130
        if emu.error is not None:
            print(f"uxo simulate: emulator failed: {emu.error}", file=sys.stderr)
            return 1
        print(f"sent: {json.dumps(emu.log.to_dict())}", flush=True)
    return 0
