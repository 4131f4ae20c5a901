"""UXG line-protocol emulator: a simulated gradiometer cart talking over a real pty.

The wire format (acquisition/drivers/gradline.py, docs/drivers.md) is written
here independently of the driver's own ``format_line``, so driver and emulator
check each other::

    $UXG,<count>,<t_s>,<x_m>,<y_m>,<value>*HH\\r\\n     HH = XOR of bytes between $ and *
    # model=UXG-SIM serial=SIM0001 rate=10 kind=gradient height=0.30 sep=0.65

`emissions` turns a simulated survey plus a `FaultPlan` into the exact byte
chunks a device would send (deterministic for the plan's seed). Every fault
is made so that it costs exactly one rejected line at the parser, which lets
tests compare counts exactly:

* ``garbage``: a burst of random bytes (never ``\\n``, ``$`` or ``#``) ended by
  CRLF, before a good line: one ``no_prefix`` reject;
* ``truncate``: the line cut before its ``*HH`` and ended by CRLF: one reject;
* ``bitflip``: one bit flipped between ``$`` and ``*`` (an XOR checksum always
  catches a single flipped bit; no flip can make a newline): one reject;
* ``checksum``: a wrong ``HH``: one reject;
* ``drop``: the line is not sent (the device counter jumps: a gap, no reject);
* ``stall``: nothing is sent for a while, then the backlog comes in a burst;
* ``hangup``: the pty vanishes (as a pulled USB cable), ``hangup_s`` of
  device time is lost, then the device reappears on a NEW pty path or on the
  SAME path (a stable symlink re-pointed to the new pty, like
  /dev/serial/by-id), or never.

`GradLineEmulator` writes the chunks to a `PtyPair` from a background thread,
paced by a monotonic clock at ``speed`` x real time (0 = as fast as possible),
batching writes when behind, and records what it really sent in a `SendLog`.

Note: pyserial flushes the input buffer when it opens a port, so bytes written
before a reader opened the path are gone. Open the reader first, then
`start()`, when every byte must be accounted for.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator.pty import PtyClosedError, PtyPair
from simulator.survey import SimulatedSurvey

FAULT_NAMES = ("garbage", "truncate", "bitflip", "checksum", "drop", "stall", "hangup")

#: Bytes a garbage burst never contains: they would start a line, a banner or end one.
_GARBAGE_FORBIDDEN = frozenset(b"\n$#")
_GARBAGE_ALPHABET = np.array([b for b in range(256) if b not in _GARBAGE_FORBIDDEN],
                             dtype=np.uint8)


# --------------------------------------------------------------------------- encoding
def xor_checksum(payload: bytes) -> int:
    """NMEA-style XOR of all payload bytes."""
    if not payload:
        return 0
    return int(np.bitwise_xor.reduce(np.frombuffer(payload, dtype=np.uint8)))


def encode_line(count: int, t_s: float, x: float, y: float, values: Iterable[float]) -> bytes:
    """One UXG sample line, CRLF-terminated. NaN position fields are sent empty."""
    xs = "" if math.isnan(x) else f"{x:.3f}"
    ys = "" if math.isnan(y) else f"{y:.3f}"
    vals = ",".join(f"{v:.3f}" for v in values)
    payload = f"UXG,{count:d},{t_s:.3f},{xs},{ys},{vals}".encode("ascii")
    return b"$%s*%02X\r\n" % (payload, xor_checksum(payload))


def banner_line(survey: SimulatedSurvey, *, model: str = "UXG-SIM",
                serial: str = "SIM0001") -> bytes:
    """``# key=value`` banner describing the instrument (sent at power-up)."""
    sc = survey.scenario
    words = [f"model={model}", f"serial={serial}", f"rate={sc.survey.rate_hz:g}",
             f"kind={sc.sensor.kind}", f"height={sc.sensor.height_m:.2f}"]
    if sc.sensor.kind == "gradient":
        words.append(f"sep={sc.sensor.separation_m:.2f}")
    return ("# " + " ".join(words) + "\r\n").encode("ascii")


# --------------------------------------------------------------------------- faults
@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Which faults to inject. Rates are probabilities per survey line.

    ``stalls`` are ``(line_number, seconds)``: wall-clock seconds of silence
    before that line. ``hangups`` are line numbers before which the device
    vanishes; ``hangup_s`` seconds of device time (``round(hangup_s * rate)``
    lines) are lost; the device stays away ``hangup_wall_s`` wall seconds
    (default ``hangup_s / speed``, 0.2 s when speed is 0) and then reappears
    as ``reappear`` says: ``new`` path, ``same`` path, or ``never``.
    """

    garbage: float = 0.0
    truncate: float = 0.0
    bitflip: float = 0.0
    checksum: float = 0.0
    drop: float = 0.0
    stalls: tuple[tuple[int, float], ...] = ()
    hangups: tuple[int, ...] = ()
    hangup_s: float = 1.0
    hangup_wall_s: float | None = None
    reappear: str = "new"
    garbage_max: int = 80
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("garbage", "truncate", "bitflip", "checksum", "drop"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fault rate {name} must be within 0..1, got {p}")
        if self.truncate + self.bitflip + self.checksum + self.drop > 1.0:
            raise ValueError("truncate + bitflip + checksum + drop rates must not exceed 1")
        if self.reappear not in ("new", "same", "never"):
            raise ValueError(f"reappear must be new, same or never, got {self.reappear!r}")
        if not 1 <= self.garbage_max <= 400:
            raise ValueError("garbage_max must be within 1..400 bytes")
        if self.hangup_s < 0 or any(s < 0 for _, s in self.stalls):
            raise ValueError("durations must be >= 0")

    @classmethod
    def from_names(cls, names: str | Iterable[str], *, n_lines: int, rate: float = 0.01,
                   seed: int = 0, reappear: str = "new") -> FaultPlan:
        """A preset from names (``"garbage,truncate,hangup"``): each line fault at ``rate``,
        one 2 s stall at a third of the survey, one 1 s hang-up at two thirds."""
        if isinstance(names, str):
            names = [w.strip() for w in names.split(",") if w.strip()]
        names = list(names)
        bad = [w for w in names if w not in FAULT_NAMES]
        if bad:
            raise ValueError(f"unknown fault {bad[0]!r}; choose from {', '.join(FAULT_NAMES)}")
        kw: dict[str, object] = {w: rate for w in names if w not in ("stall", "hangup")}
        if "stall" in names:
            kw["stalls"] = ((max(1, n_lines // 3), 2.0),)
        if "hangup" in names:
            kw["hangups"] = (max(1, (2 * n_lines) // 3),)
        return cls(seed=seed, reappear=reappear, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Emission:
    """One thing the device does: send bytes, stall, or hang up."""

    kind: str  # banner | line | garbage | stall | hangup | end
    due_s: float  # device time (s) when it is sent
    data: bytes = b""
    count: int = -1  # device counter of the line, for kind == "line"
    fault: str = ""  # "", truncate, bitflip, checksum (for lines)
    duration_s: float = 0.0  # stall length (wall s)
    lost: tuple[int, ...] = ()  # counters lost during a hang-up
    dropped: tuple[int, ...] = ()  # counters of dropped lines just before this line


def emissions(survey: SimulatedSurvey, faults: FaultPlan | None = None, *,
              banner: bool = True) -> Iterator[Emission]:
    """The byte chunks a UXG device would send for ``survey`` (deterministic)."""
    fp = faults or FaultPlan()
    rng = np.random.default_rng([fp.seed, 0x55584747])
    stalls = dict(fp.stalls)
    hangups = set(fp.hangups)
    rate = survey.rate_hz
    lost_per_hangup = round(fp.hangup_s * rate)
    ban = banner_line(survey) if banner else b""
    t = survey.t_s
    n = survey.n
    if ban:
        yield Emission("banner", float(t[0]) if n else 0.0, ban)
    cuts = np.cumsum([fp.drop, fp.truncate, fp.bitflip, fp.checksum])
    skip_until = -1
    dropped: list[int] = []
    for i in range(n):
        # Fixed draws per line so outcomes never shift the random sequence.
        u_garbage, u_kind = rng.random(2)
        g_len = int(rng.integers(1, fp.garbage_max + 1))
        r_pos, r_bit, r_cs = rng.random(3)
        due = float(t[i])
        count = int(survey.index[i])
        if i <= skip_until:
            continue
        if i in hangups:
            lost_idx = range(i, min(n, i + lost_per_hangup))
            yield Emission("hangup", due, lost=tuple(int(survey.index[j]) for j in lost_idx))
            skip_until = i + lost_per_hangup - 1
            if ban and fp.reappear != "never":
                yield Emission("banner", due, ban)
            if i <= skip_until:
                continue
        if i in stalls:
            yield Emission("stall", due, duration_s=float(stalls[i]))
        if u_garbage < fp.garbage:
            burst = rng.choice(_GARBAGE_ALPHABET, g_len).tobytes() + b"\r\n"
            yield Emission("garbage", due, burst)
        line = encode_line(count, due, float(survey.x_rec[i]), float(survey.y_rec[i]),
                           survey.values[i])
        kind_idx = int(np.searchsorted(cuts, u_kind, side="right"))
        if kind_idx == 0:  # drop
            dropped.append(count)
            continue
        fault = ""
        star = len(line) - 5  # position of '*' in b"...*HH\r\n"
        if kind_idx == 1:
            fault = "truncate"
            line = line[: 1 + int(r_pos * (star - 1))] + b"\r\n"
        elif kind_idx == 2:
            fault = "bitflip"
            pos = 1 + int(r_pos * (star - 1))
            flipped = line[pos] ^ (1 << int(r_bit * 8))
            line = line[:pos] + bytes([flipped]) + line[pos + 1:]
        elif kind_idx == 3:
            fault = "checksum"
            good = int(line[star + 1: star + 3], 16)
            bad = good ^ (1 + int(r_cs * 255))
            line = line[: star + 1] + b"%02X\r\n" % bad
        yield Emission("line", due, line, count=count, fault=fault, dropped=tuple(dropped))
        dropped = []
    if dropped:
        # Lines dropped at the very end still count as dropped.
        yield Emission("end", float(t[-1]), dropped=tuple(dropped))


@dataclass
class SendLog:
    """What the emulator really sent (counted after each successful write)."""

    lines_sent: int = 0  # survey lines written, intact or corrupted
    lines_ok: int = 0
    lines_corrupted: int = 0  # truncated + bitflipped + bad checksum
    lines_truncated: int = 0
    lines_bitflipped: int = 0
    lines_bad_checksum: int = 0
    lines_dropped: int = 0
    lines_lost_hangup: int = 0
    garbage_bursts: int = 0
    garbage_bytes: int = 0
    banners: int = 0
    stalls: int = 0
    hangups: int = 0
    bytes_sent: int = 0
    #: Device counters of the intact lines, in the order sent.
    ok_counts: list[int] = field(default_factory=list)
    #: Every pty path used (one more after each reappearance).
    paths: list[str] = field(default_factory=list)

    @property
    def expected_rejects(self) -> int:
        """Lines the parser must reject: each corrupted line and each garbage burst."""
        return self.lines_corrupted + self.garbage_bursts

    def record(self, em: Emission) -> None:
        self.bytes_sent += len(em.data)
        if em.kind == "banner":
            self.banners += 1
        elif em.kind == "garbage":
            self.garbage_bursts += 1
            self.garbage_bytes += len(em.data)
        elif em.kind == "stall":
            self.stalls += 1
        elif em.kind == "hangup":
            self.hangups += 1
            self.lines_lost_hangup += len(em.lost)
        elif em.kind == "end":
            self.lines_dropped += len(em.dropped)
        elif em.kind == "line":
            self.lines_dropped += len(em.dropped)
            self.lines_sent += 1
            if not em.fault:
                self.lines_ok += 1
                self.ok_counts.append(em.count)
                return
            self.lines_corrupted += 1
            if em.fault == "truncate":
                self.lines_truncated += 1
            elif em.fault == "bitflip":
                self.lines_bitflipped += 1
            elif em.fault == "checksum":
                self.lines_bad_checksum += 1

    def to_dict(self) -> dict[str, object]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "ok_counts"}
        d["expected_rejects"] = self.expected_rejects
        return d


# --------------------------------------------------------------------------- emulator
class GradLineEmulator:
    """Stream a simulated survey as UXG lines over a real pty, in a background thread.

    ``speed``: 1.0 = real time, 10 = ten times faster, 0 = as fast as possible.
    ``link_path``: keep a symlink there pointing at the current pty (created in
    a temp dir automatically when ``faults.reappear == "same"``).
    `path` is what a reader should open (the link if any, else the pty).
    ``on_reappear(path)`` is called from the writer thread after a hang-up, once
    the new pty exists and before anything is written to it (a reader opened
    there misses nothing; pyserial would flush bytes written before it opened).
    ``wait_for_start``: send nothing until the reader writes any byte (like an
    instrument that streams on command), so a reader that opens late misses nothing.
    """

    def __init__(self, survey: SimulatedSurvey, *, speed: float = 1.0,
                 faults: FaultPlan | None = None, banner: bool = True,
                 link_path: str | os.PathLike[str] | None = None,
                 on_reappear: Callable[[str], None] | None = None,
                 wait_for_start: bool = False) -> None:
        if not (speed >= 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.survey = survey
        self.speed = float(speed)
        self.faults = faults or FaultPlan()
        self.banner = banner
        self.log = SendLog()
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if link_path is None and self.faults.reappear == "same" and self.faults.hangups:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="uxo-sim-")
            link_path = Path(self._tmpdir.name) / "ttyUXG0"
        self.link_path: str | None = None if link_path is None else str(link_path)
        self.on_reappear = on_reappear
        self.wait_for_start = wait_for_start
        self._cond = threading.Condition()
        self._generation = 0
        self._pty: PtyPair | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._spare: PtyPair | None = None
        self._new_pty()
        self._announce()

    # --- paths -----------------------------------------------------------------------
    @property
    def tty_path(self) -> str | None:
        """The current pty's own path (``/dev/pts/N``), None while hung up."""
        p = self._pty
        return p.path if p is not None and p.is_open else None

    @property
    def path(self) -> str:
        """What a reader opens: the stable link if any, else the current (or last) pty."""
        return self.link_path or self.log.paths[-1]

    @property
    def generation(self) -> int:
        """How many times the device has (re)appeared, starting at 1."""
        return self._generation

    def wait_for_generation(self, generation: int, timeout: float) -> str | None:
        """Wait until the device has appeared ``generation`` times; return its path."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._generation >= generation, timeout)
        return self.path if ok else None

    def _new_pty(self) -> None:
        pty, self._spare = (self._spare or PtyPair()), None
        if self.link_path:
            tmp = f"{self.link_path}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(pty.path, tmp)
            os.replace(tmp, self.link_path)  # atomic: readers never see a missing link
        with self._cond:
            self._pty = pty
            self.log.paths.append(pty.path)

    def _announce(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> GradLineEmulator:
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        self._thread = threading.Thread(target=self._run, name="uxg-emulator", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the survey to be fully sent; True if it was."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def drain(self, timeout: float) -> bool:
        """Wait until the reader has consumed every byte sent (or timeout)."""
        p = self._pty
        return True if p is None else p.drain(timeout, self._stop.is_set)

    def stop(self) -> None:
        """Stop sending (the pty stays open until `close`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        self.stop()
        for p in (self._pty, self._spare):
            if p is not None:
                p.close()
        if self.link_path:
            with contextlib.suppress(OSError):
                os.unlink(self.link_path)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> GradLineEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the writer thread -----------------------------------------------------------
    def _sleep_until(self, deadline: float) -> bool:
        """Sleep to a monotonic deadline; False if stopped meanwhile."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return not self._stop.is_set()
            if self._stop.wait(min(left, 0.5)):
                return False

    def _write(self, batch: list[Emission]) -> bool:
        if not batch:
            return True
        pty = self._pty
        if pty is None:
            return False
        data = b"".join(e.data for e in batch)
        try:
            n = pty.write(data, should_stop=self._stop.is_set)
        except PtyClosedError:
            return False
        # Record exactly the emissions that went out whole.
        done = 0
        for e in batch:
            done += len(e.data)
            if done > n:
                break
            self.log.record(e)
        batch.clear()
        return n == len(data)

    def _run(self) -> None:
        try:
            self._stream()
        except BaseException as exc:  # surfaced through .error; the thread must not die silently
            self.error = exc

    def _wait_command(self) -> bool:
        """Block until the reader sends something; False if stopped first."""
        while not self._stop.is_set():
            pty = self._pty
            if pty is None or pty.master_fd is None:
                return False
            got = pty.read_command(0.2)
            if got:
                return True
        return False

    def _stream(self) -> None:
        t_first = float(self.survey.t_s[0]) if self.survey.n else 0.0
        if self.wait_for_start and not self._wait_command():
            return
        wall0 = time.monotonic()
        batch: list[Emission] = []
        batch_bytes = 0
        for em in emissions(self.survey, self.faults, banner=self.banner):
            if self._stop.is_set():
                break
            if self.speed > 0:
                due = wall0 + (em.due_s - t_first) / self.speed
                if due > time.monotonic():
                    # Caught up: send what is pending, then wait for this one.
                    if not self._write(batch):
                        return
                    batch_bytes = 0
                    if not self._sleep_until(due):
                        return
            if em.kind == "stall":
                if not self._write(batch):
                    return
                batch_bytes = 0
                self.log.record(em)
                if not self._sleep_until(time.monotonic() + em.duration_s):
                    return
                continue
            if em.kind == "hangup":
                if not self._write(batch):
                    return
                batch_bytes = 0
                self._hangup(em)
                if self.faults.reappear == "never":
                    return
                if not self._away():
                    return
                self._new_pty()
                if self.on_reappear is not None:
                    self.on_reappear(self.path)
                self._announce()
                continue
            batch.append(em)
            batch_bytes += len(em.data)
            if batch_bytes >= 4096:
                if not self._write(batch):
                    return
                batch_bytes = 0
        self._write(batch)

    def _hangup(self, em: Emission) -> None:
        pty = self._pty
        if self.faults.reappear == "new":
            # Allocate the successor while the old pty still exists, so the kernel
            # cannot hand the same /dev/pts/N back: "new" really is a new path.
            self._spare = PtyPair()
        with self._cond:
            self._pty = None
        if pty is not None:
            pty.hangup()
        self.log.record(em)

    def _away(self) -> bool:
        fp = self.faults
        wall = fp.hangup_wall_s
        if wall is None:
            wall = fp.hangup_s / self.speed if self.speed > 0 else 0.2
        return self._sleep_until(time.monotonic() + wall)
