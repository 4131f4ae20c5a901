"""``uxo simulate``: CSV output, errors, and a live pty stream read by pyserial."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import serial

from acquisition.cli import main as sim_main
from acquisition.drivers.framing import LineFramer
from acquisition.drivers.gradline import parse_lines
from simulator.cli import register_simulate
from simulator.scenario import parse_scenario, resolve_scenario_path
from simulator.survey import read_truth_csv, simulate_survey

TINY = resolve_scenario_path("tiny").read_text()  # simulator/scenarios/tiny.toml


def test_register_sets_the_handler():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    register_simulate(sub)
    args = parser.parse_args(["simulate", "--scenario", "demo", "--pty", "--speed", "2",
                              "--faults", "garbage,truncate"])
    assert callable(args.func) and args.pty and args.speed == 2.0


def test_writes_survey_and_truth_csv(tmp_path, capsys):
    s, t = tmp_path / "s.csv", tmp_path / "t.csv"
    rc = sim_main(["simulate", "--scenario", "demo", "--survey-csv", str(s),
                   "--truth-csv", str(t)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "6 targets" in out and "aircraft_bomb" in out
    assert s.read_text().startswith("# uxo-survey v1\n")
    assert len(read_truth_csv(t)) == 6


def test_uxo_cli_has_the_simulate_command(tmp_path):
    from acquisition.cli import main as uxo_main

    t = tmp_path / "t.csv"
    assert uxo_main(["simulate", "--scenario", "demo", "--seed", "3", "--truth-csv",
                     str(t)]) == 0
    assert t.exists()


def test_bad_scenario_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[area]\nwidth = 3\nlength = 3\n[survey]\nsped = 1\n")
    assert sim_main(["simulate", "--scenario", str(bad)]) == 2
    assert "survey.sped" in capsys.readouterr().err


def test_pty_stream_is_read_by_pyserial(tmp_path):
    scen = tmp_path / "tiny.toml"
    scen.write_text(TINY)
    survey = simulate_survey(parse_scenario(TINY))
    proc = subprocess.Popen(
        [sys.executable, "-m", "acquisition.cli", "simulate", "--scenario", str(scen), "--pty",
         "--speed", "0", "--wait-start", "--faults", "checksum", "--fault-rate", "0.1"],
        stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("tty: /dev/pts/")
        port = serial.Serial(first[5:], timeout=0.2)
        port.write(b"START\r\n")
        framer = LineFramer()
        lines: list[bytes] = []
        end = time.monotonic() + 60  # safety net only
        while time.monotonic() < end:
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError):
                break  # the simulator exited (after the reader drained everything)
            lines += framer.feed(data)
            if not data and proc.poll() is not None:
                break
        port.close()
        rest = proc.stdout.read()
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait()
    assert proc.returncode == 0
    sent = json.loads(next(line for line in rest.splitlines()
                           if line.startswith("sent: "))[6:])
    parsed = parse_lines(lines)
    assert sent["lines_sent"] == survey.n
    assert sent["lines_bad_checksum"] > 0
    assert parsed.n == sent["lines_ok"]
    assert len(parsed.rejects) == sent["expected_rejects"]
    assert parsed.info["kind"] == "gradient"


def test_pty_stream_in_another_protocol(tmp_path):
    from acquisition.drivers.nmea import parse_lines as nmea_parse

    scen = tmp_path / "tiny.toml"
    scen.write_text(TINY)
    survey = simulate_survey(parse_scenario(TINY))
    proc = subprocess.Popen(
        [sys.executable, "-m", "acquisition.cli", "simulate", "--scenario", str(scen), "--pty",
         "--protocol", "nmea", "--speed", "0", "--wait-start", "--linger", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("tty: /dev/pts/")
        port = serial.Serial(first[5:], timeout=0.2)
        port.write(b"GO\r\n")
        framer = LineFramer()
        lines: list[bytes] = []
        end = time.monotonic() + 60  # safety net only
        while time.monotonic() < end:
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError):
                break
            lines += framer.feed(data)
            if not data and proc.poll() is not None:
                break
        port.close()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait()
    assert proc.returncode == 0
    assert "driver 'nmea'" in err and '"date": "2026-03-14"' in err
    parsed = nmea_parse(lines)
    assert parsed.rejects == [] and parsed.n == 2 * survey.n
    assert set(parsed.values[:, 9]) == {1.0, 2.0}  # GGA and RMC
