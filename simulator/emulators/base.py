"""Protocol-agnostic line-device emulator: encoded lines in, a misbehaving device on a pty out.

A `DeviceScript` says what a device sends: for each line its device sample
counter, the device time it is due and (lazily) its intact bytes, plus a
banner sent at power-up and after every reappearance, and a `LineCodec` that
knows how to damage one of its lines so that a correct parser must reject it.
`simulator.emulators.devices` builds scripts for every protocol from a
simulated survey.

`line_emissions` turns a script plus a `FaultPlan` into the exact byte chunks a
device would send (deterministic for the plan's seed). Every fault costs
exactly one rejected line at the parser, so tests can compare counts exactly:

* ``garbage``: a burst of random bytes (never ``\\n``, ``$`` or ``#``, and never
  something the protocol reads as a header) ended by CRLF, before a line;
* ``truncate``: the line cut short and ended by CRLF. Checksummed lines are cut
  before their ``*HH``; others before their last field separator, so a field
  is always missing (a cut inside the last number could still be a number);
* ``bitflip``: one flipped bit. Checksummed lines: any bit between ``$`` and
  ``*`` (an XOR checksum catches every single flip). Other lines: bit 6 of a
  byte below 0x40 (digit, sign, point, separator, quote, ``$``), which always
  gives a lower-case letter or ``{|}~`` that no numeric field accepts;
* ``checksum``: a wrong ``HH``; on protocols without a checksum the last byte
  of the line is replaced by ``?`` (a damaged last field);
* ``drop``: the line is not sent (a counter gap, no reject);
* ``stall``: nothing is sent for a while, then the backlog comes in a burst;
* ``hangup``: the pty vanishes (a pulled USB cable), ``hangup_s`` of device
  time is lost, then the device reappears on a NEW pty path, on the SAME path
  (a stable symlink re-pointed to the new pty, like /dev/serial/by-id), or never.

`LineEmulator` writes the chunks to a `PtyPair` from a background thread,
paced by a monotonic clock at ``speed`` x real time (0 = as fast as possible),
batching writes when behind, and records what it really sent in a `SendLog`.

Note: plain pyserial flushes the input buffer when it opens a port, so bytes
written before a reader opened the path are gone (the acquisition drivers open
through `acquisition.drivers.transport.open_port`, which keeps them). Open the
reader first, then `start()`, when every byte must be accounted for.
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
from typing import Any

import numpy as np

from simulator.pty import PtyClosedError, PtyPair

FAULT_NAMES = ("garbage", "truncate", "bitflip", "checksum", "drop", "stall", "hangup")

#: Bytes a garbage burst never contains: they would start a line, a banner or end one.
_GARBAGE_FORBIDDEN = frozenset(b"\n$#")
GARBAGE_ALPHABET = np.array([b for b in range(256) if b not in _GARBAGE_FORBIDDEN],
                            dtype=np.uint8)
CRLF = b"\r\n"
#: Salt of the fault random stream (kept from the first UXG emulator: same plans, same bytes).
_SALT = 0x55584747


# --------------------------------------------------------------------------- faults
@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Which faults to inject. Rates are probabilities per device line.

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
        kw: dict[str, Any] = {w: rate for w in names if w not in ("stall", "hangup")}
        if "stall" in names:
            kw["stalls"] = ((max(1, n_lines // 3), 2.0),)
        if "hangup" in names:
            kw["hangups"] = (max(1, (2 * n_lines) // 3),)
        return cls(seed=seed, reappear=reappear, **kw)


# --------------------------------------------------------------------------- codecs
class LineCodec:
    """How to damage one line of a protocol so that a correct parser must reject it.

    ``checksummed``: lines are ``$...*HH``. Otherwise ``separator`` is what
    separates the fields (a truncation cuts before the last one; ``"whitespace"``
    means runs of spaces), ``flip_from`` the first byte a bit flip may touch
    (1 where a letter in the first byte would make the line a header).
    ``flip_avoid`` (checksummed only): bytes a flip must not produce (another bit
    of the same byte is used instead). ``garbage_header_like``: protocols that
    read a line starting with a letter (after quotes/spaces) as a header.
    ``header_starts``: line starts a protocol reads as a header (GSM-19 dumps'
    ``/`` comments, ``line N`` markers); a garbage burst never begins with one.
    """

    def __init__(self, *, checksummed: bool = False, separator: bytes = b",",
                 flip_from: int = 0, flip_avoid: bytes = b"",
                 garbage_header_like: bool = False,
                 header_starts: tuple[bytes, ...] = ()) -> None:
        self.checksummed = checksummed
        self.separator = separator
        self.flip_from = flip_from
        self.flip_avoid = frozenset(flip_avoid)
        self.garbage_header_like = garbage_header_like
        self.header_starts = header_starts

    def truncate(self, line: bytes, r_pos: float) -> bytes:
        body = line[:-2] if line.endswith(CRLF) else line
        if self.checksummed:
            star = len(body) - 3  # b"...*HH"
            return body[: 1 + int(r_pos * (star - 1))] + CRLF
        last = self._last_separator(body)
        if last < 1:  # a one-field line: keep nothing a parser could take for it
            return body[:1] + b"?" + CRLF
        return body[: 1 + int(r_pos * last)] + CRLF

    def _last_separator(self, body: bytes) -> int:
        if self.separator == b"whitespace":
            i = max(body.rstrip().rfind(b" "), body.rstrip().rfind(b"\t"))
            while i > 0 and body[i - 1 : i] in (b" ", b"\t"):
                i -= 1
            return i
        i = body.rfind(self.separator)
        if len(self.separator) == 1:
            while i > 0 and body[i - 1 : i] == self.separator:
                i -= 1
        return i

    def bitflip(self, line: bytes, r_pos: float, r_bit: float) -> bytes:
        body = line[:-2] if line.endswith(CRLF) else line
        if self.checksummed:
            star = len(body) - 3
            pos = 1 + int(r_pos * (star - 1))
            bit = int(r_bit * 8)
            flipped = body[pos] ^ (1 << bit)
            for k in range(1, 8):
                if flipped not in self.flip_avoid:
                    break
                flipped = body[pos] ^ (1 << ((bit + k) % 8))
        else:
            cand = [i for i in range(self.flip_from, len(body)) if body[i] < 0x40]
            if not cand:
                return body + b"?" + CRLF
            pos = cand[int(r_pos * len(cand))]
            flipped = body[pos] ^ 0x40
        return body[:pos] + bytes([flipped]) + body[pos + 1 :] + CRLF

    def bad_checksum(self, line: bytes, r_cs: float) -> bytes:
        body = line[:-2] if line.endswith(CRLF) else line
        if not self.checksummed:
            return body[:-1] + b"?" + CRLF
        star = len(body) - 3
        good = int(body[star + 1 : star + 3], 16)
        bad = good ^ (1 + int(r_cs * 255))
        return body[: star + 1] + b"%02X" % bad + CRLF

    def fix_garbage(self, burst: bytes) -> bytes:
        if self.garbage_header_like and burst.lstrip(b'" ')[:1].isalpha():
            return b"\xff" + burst[1:]
        if self.header_starts and burst.startswith(self.header_starts):
            return b"\xff" + burst[1:]
        return burst


#: The codec of ``$...*HH`` lines (UXG, UXB, NMEA).
CHECKSUM_CODEC = LineCodec(checksummed=True, flip_avoid=b"\n\r$")


# --------------------------------------------------------------------------- scripts
@dataclass(frozen=True, eq=False)
class DeviceScript:
    """What a device sends: per line its counter and due time, the bytes made on demand.

    ``encode(i)`` returns line ``i`` intact, CRLF-ended. ``rate_hz`` is lines per
    second (what a hang-up of ``hangup_s`` costs). ``driver``/``driver_options``
    name the `uxo.drivers` driver that reads it and the options it needs.
    ``extra`` carries protocol facts tests may check (origin, epoch, ...).
    """

    protocol: str
    counts: np.ndarray
    due_s: np.ndarray
    encode: Callable[[int], bytes]
    rate_hz: float
    codec: LineCodec = CHECKSUM_CODEC
    banner: bytes = b""
    driver: str = ""
    driver_options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.counts.shape[0])

    def intact(self, indices: Iterable[int] | None = None) -> bytes:
        """The bytes of lines ``indices`` (default all) as sent without faults."""
        idx = range(self.n) if indices is None else indices
        return b"".join(self.encode(int(i)) for i in idx)


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
    line_no: int = -1  # position of the line in its script


def line_emissions(script: DeviceScript, faults: FaultPlan | None = None, *,
                   banner: bool = True) -> Iterator[Emission]:
    """The byte chunks the scripted device sends under ``faults`` (deterministic)."""
    fp = faults or FaultPlan()
    codec = script.codec
    rng = np.random.default_rng([fp.seed, _SALT])
    stalls = dict(fp.stalls)
    hangups = set(fp.hangups)
    lost_per_hangup = round(fp.hangup_s * script.rate_hz)
    ban = script.banner if banner else b""
    t = script.due_s
    counts = script.counts
    n = script.n
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
        count = int(counts[i])
        if i <= skip_until:
            continue
        if i in hangups:
            lost_idx = range(i, min(n, i + lost_per_hangup))
            yield Emission("hangup", due, lost=tuple(int(counts[j]) for j in lost_idx))
            skip_until = i + lost_per_hangup - 1
            if ban and fp.reappear != "never":
                yield Emission("banner", due, ban)
            if i <= skip_until:
                continue
        if i in stalls:
            yield Emission("stall", due, duration_s=float(stalls[i]))
        if u_garbage < fp.garbage:
            burst = rng.choice(GARBAGE_ALPHABET, g_len).tobytes() + CRLF
            yield Emission("garbage", due, codec.fix_garbage(burst))
        kind_idx = int(np.searchsorted(cuts, u_kind, side="right"))
        if kind_idx == 0:  # drop
            dropped.append(count)
            continue
        line = script.encode(i)
        fault = ""
        if kind_idx == 1:
            fault, line = "truncate", codec.truncate(line, r_pos)
        elif kind_idx == 2:
            fault, line = "bitflip", codec.bitflip(line, r_pos, r_bit)
        elif kind_idx == 3:
            fault, line = "checksum", codec.bad_checksum(line, r_cs)
        yield Emission("line", due, line, count=count, fault=fault, dropped=tuple(dropped),
                       line_no=i)
        dropped = []
    if dropped:
        # Lines dropped at the very end still count as dropped.
        yield Emission("end", float(t[-1]), dropped=tuple(dropped))


@dataclass
class SendLog:
    """What the emulator really sent (counted after each successful write)."""

    lines_sent: int = 0  # device lines written, intact or corrupted
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
    #: Script positions of the intact lines, in the order sent.
    ok_lines: list[int] = field(default_factory=list)
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
                self.ok_lines.append(em.line_no)
                return
            self.lines_corrupted += 1
            if em.fault == "truncate":
                self.lines_truncated += 1
            elif em.fault == "bitflip":
                self.lines_bitflipped += 1
            elif em.fault == "checksum":
                self.lines_bad_checksum += 1

    def to_dict(self) -> dict[str, object]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__
             if k not in ("ok_counts", "ok_lines")}
        d["expected_rejects"] = self.expected_rejects
        return d


# --------------------------------------------------------------------------- emulator
class LineEmulator:
    """Send a `DeviceScript` over a real pty, in a background thread, with faults.

    ``speed``: 1.0 = real time, 10 = ten times faster, 0 = as fast as possible.
    ``link_path``: keep a symlink there pointing at the current pty (created in
    a temp dir automatically when ``faults.reappear == "same"``).
    `path` is what a reader should open (the link if any, else the pty).
    ``on_reappear(path)`` is called from the writer thread after a hang-up, once
    the new pty exists and before anything is written to it (a reader opened
    there misses nothing; plain pyserial would flush bytes written before it opened).
    ``wait_for_start``: send nothing until the reader writes any byte (like an
    instrument that streams on command), so a reader that opens late misses nothing.
    """

    def __init__(self, script: DeviceScript, *, speed: float = 1.0,
                 faults: FaultPlan | None = None, banner: bool = True,
                 link_path: str | os.PathLike[str] | None = None,
                 on_reappear: Callable[[str], None] | None = None,
                 wait_for_start: bool = False) -> None:
        if not (speed >= 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.script = script
        self.speed = float(speed)
        self.faults = faults or FaultPlan()
        self.banner = banner
        self.log = SendLog()
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if link_path is None and self.faults.reappear == "same" and self.faults.hangups:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="uxo-sim-")
            link_path = Path(self._tmpdir.name) / f"tty{script.protocol.upper()[:8]}0"
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

    @property
    def protocol(self) -> str:
        return self.script.protocol

    def emissions(self) -> Iterator[Emission]:
        """What this emulator sends (the same sequence `start` writes)."""
        return line_emissions(self.script, self.faults, banner=self.banner)

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
    def start(self) -> LineEmulator:
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        self._thread = threading.Thread(target=self._run, name=f"{self.protocol}-emulator",
                                        daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the script to be fully sent; True if it was."""
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

    def unread(self) -> int:
        """Bytes sent that the reader has not taken yet (0 while hung up)."""
        p = self._pty
        return 0 if p is None else p.unread()

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

    def __enter__(self) -> LineEmulator:
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
        t_first = float(self.script.due_s[0]) if self.script.n else 0.0
        if self.wait_for_start and not self._wait_command():
            return
        wall0 = time.monotonic()
        batch: list[Emission] = []
        batch_bytes = 0
        for em in self.emissions():
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
        if self.link_path:
            # udev removes /dev/serial/by-id/... when the cable is pulled; without
            # this a reader could reopen the link onto a reused /dev/pts/N.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link_path)
        if pty is not None:
            pty.hangup()
        self.log.record(em)

    def _away(self) -> bool:
        fp = self.faults
        wall = fp.hangup_wall_s
        if wall is None:
            wall = fp.hangup_s / self.speed if self.speed > 0 else 0.2
        return self._sleep_until(time.monotonic() + wall)
