"""Byte writers for the instrument protocols the drivers read: values in, wire bytes out.

Written from the published formats (docs/drivers.md), not from the parsers,
so each emulator checks its driver and the other way round. Every writer
returns one complete line with CRLF. `faulted` turns a list of lines into the
byte stream a misbehaving device would send, using the same `FaultPlan` as the
UXG emulator (garbage bursts, truncated lines, flipped bits, bad checksums,
dropped lines), and says which lines went out intact.

`stream_to_pty` writes bytes to a `PtyPair` in chunks of random size, as a
USB-serial adapter delivers them.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.emulators.base import FaultPlan
from simulator.pty import PtyPair

CRLF = b"\r\n"
_GARBAGE = np.array([b for b in range(256) if b not in b"\n$#"], dtype=np.uint8)


def _xor(payload: bytes) -> int:
    c = 0
    for b in payload:
        c ^= b
    return c


def _sentence(payload: str) -> bytes:
    body = payload.encode("ascii")
    return b"$" + body + b"*" + f"{_xor(body):02X}".encode() + CRLF


# --- Geometrics G-882 ----------------------------------------------------------------------
def g882_line(fields_nT: Sequence[float], signals: Sequence[int]) -> bytes:
    """``$ 49895.131,1249`` (one pair per daisy-chained sensor, comma joined)."""
    if len(fields_nT) != len(signals) or not fields_nT:
        raise ValueError("one signal level per field")
    pairs = [f"$ {f:.3f},{int(s):04d}" for f, s in zip(fields_nT, signals, strict=True)]
    return ",".join(pairs).encode() + CRLF


# --- GEM GSM-19 -------------------------------------------------------------------------------
def gsm19_time(seconds_of_day: float) -> str:
    tenths = round(seconds_of_day * 10) % (864_000)
    s, t = divmod(tenths, 10)
    return f"{s // 3600:02d}{(s // 60) % 60:02d}{s % 60:02d}.{t}"


def gsm19_line(seconds_of_day: float, tf_nT: float, *, quality: int | None = None,
               gradient: float | None = None) -> bytes:
    """``HHMMSS.s  <nT>  <quality|gradient>`` (quality 2 digits, as the instrument prints it)."""
    if (quality is None) == (gradient is None):
        raise ValueError("give a quality code or a gradient")
    third = f"{quality:02d}" if quality is not None else f"{gradient:.2f}"
    return f"{gsm19_time(seconds_of_day)}  {tf_nT:.2f}  {third}".encode() + CRLF


# --- FG Sensors FGA ---------------------------------------------------------------------------
FGA_HEADER = ("Timestamp_ms,B1x_nT,B1y_nT,B1z_nT,B1v_nT,B2x_nT,B2y_nT,B2z_nT,B2v_nT,"
              "Lat_deg,Lon_deg,Alt_m,SIV,Fix,HDOP_m")


def fga_header() -> bytes:
    return FGA_HEADER.encode() + CRLF


def fga_line(t_ms: int, b1: Sequence[float], b2: Sequence[float], lat: float, lon: float,
             alt: float, siv: int, fix: int, hdop: float) -> bytes:
    """One logger row; ``b1``/``b2`` are (x, y, z) in nT, the magnitude is appended."""
    def sensor(b: Sequence[float]) -> list[str]:
        v = math.sqrt(sum(c * c for c in b))
        return [f"{c:.2f}" for c in b] + [f"{v:.2f}"]

    gnss = ["" if math.isnan(lat) else f"{lat:.8f}", "" if math.isnan(lon) else f"{lon:.8f}",
            f"{alt:.2f}", str(siv), str(fix), f"{hdop:.2f}"]
    return ",".join([str(int(t_ms)), *sensor(b1), *sensor(b2), *gnss]).encode() + CRLF


# --- Sensys FGM3D -----------------------------------------------------------------------------
def _tesla(v: float) -> str:
    return '"' + f"{v:.4E}".replace(".", ",").replace("E-0", "E-").replace("E+0", "E+") + '"'


def fgm3d_line(t_ms: int, bx_nT: float, by_nT: float, bz_nT: float) -> bytes:
    """``1648557860787,"2,4429E-5",...``: X, Y, Z and total in tesla, decimal commas."""
    tot = math.sqrt(bx_nT ** 2 + by_nT ** 2 + bz_nT ** 2)
    vals = [_tesla(v * 1e-9) for v in (bx_nT, by_nT, bz_nT, tot)]
    return (str(int(t_ms)) + "," + ",".join(vals)).encode() + CRLF


# --- NMEA 0183 --------------------------------------------------------------------------------
def _nmea_time(seconds_of_day: float) -> str:
    # A receiver stamps the epoch of the fix, never a time after it is sent, so
    # centiseconds are truncated (rounding up made GNSS time run ahead of the host
    # clock by up to 5 ms). The 1e-6 keeps float noise (0.7 * 100 = 69.999...) out.
    cs = math.floor(seconds_of_day * 100 + 1e-6) % 8_640_000
    s, c = divmod(cs, 100)
    return f"{s // 3600:02d}{(s // 60) % 60:02d}{s % 60:02d}.{c:02d}"


def _nmea_coord(v: float, width: int, pos: str, neg: str) -> tuple[str, str]:
    if math.isnan(v):
        return "", ""
    a = abs(v)
    deg = int(a)
    minutes = (a - deg) * 60.0
    if round(minutes, 6) >= 60.0:
        deg, minutes = deg + 1, 0.0
    return f"{deg:0{width}d}{minutes:09.6f}", (pos if v >= 0 else neg)


def nmea_gga(seconds_of_day: float, lat: float, lon: float, *, fix: int = 1, sats: int = 10,
             hdop: float = 0.9, alt_m: float = 10.0, talker: str = "GP") -> bytes:
    la, ns = _nmea_coord(lat, 2, "N", "S")
    lo, ew = _nmea_coord(lon, 3, "E", "W")
    return _sentence(f"{talker}GGA,{_nmea_time(seconds_of_day)},{la},{ns},{lo},{ew},{fix},"
                     f"{sats:02d},{hdop:.1f},{alt_m:.2f},M,-2.10,M,,")


def nmea_rmc(seconds_of_day: float, lat: float, lon: float, date: _dt.date, *,
             speed_mps: float = 0.0, course_deg: float = 0.0, status: str = "A",
             mode: str | None = "A", talker: str = "GN") -> bytes:
    la, ns = _nmea_coord(lat, 2, "N", "S")
    lo, ew = _nmea_coord(lon, 3, "E", "W")
    knots = speed_mps * 3600.0 / 1852.0
    body = (f"{talker}RMC,{_nmea_time(seconds_of_day)},{status},{la},{ns},{lo},{ew},"
            f"{knots:.3f},{course_deg:.1f},{date:%d%m%y},,")
    if mode is not None:
        body += f",{mode}"
    return _sentence(body)


def nmea_gsv_dummy() -> bytes:
    """A sentence the driver skips (satellites in view)."""
    return _sentence("GPGSV,1,1,01,05,40,083,46")


# --- configured line instrument -------------------------------------------------------------
def lineproto_line(values: Sequence[float], *, separator: str = ",",
                   decimal_comma: bool = False, prefix: str = "", fmt: str = "{:.3f}") -> bytes:
    toks = [fmt.format(v) for v in values]
    if decimal_comma:
        toks = [t.replace(".", ",") for t in toks]
    sep = " " if separator == "whitespace" else separator
    return (prefix + sep.join(toks)).encode() + CRLF


# --- borehole probe (UXB) ---------------------------------------------------------------------
def borehole_line(count: int, t_s: float, encoder: int, readings: Sequence[float]) -> bytes:
    """``$UXB,<count>,<t_s>,<encoder>,<reading>...*HH``."""
    vals = ",".join(f"{v:.3f}" for v in readings)
    return _sentence(f"UXB,{count},{t_s:.3f},{int(encoder)},{vals}")


# --- faults -----------------------------------------------------------------------------------
@dataclass
class Faulted:
    """A faulted stream: the bytes, and for each input line whether it went out intact."""

    data: bytes
    intact: list[bool]
    garbage_bursts: int = 0


def faulted(lines: Sequence[bytes], plan: FaultPlan) -> Faulted:
    """Apply ``plan``'s line faults to CRLF-ended ``lines`` (deterministic for ``plan.seed``).

    ``checksum`` replaces the last two characters before CRLF (the ``*HH`` of a
    checksummed line) by their bitwise complement in hex; on formats without a
    checksum it corrupts the last field.
    """
    rng = np.random.default_rng(plan.seed)
    out = bytearray()
    intact: list[bool] = []
    bursts = 0
    for line in lines:
        if plan.garbage and rng.random() < plan.garbage:
            n = int(rng.integers(1, plan.garbage_max + 1))
            out += rng.choice(_GARBAGE, n).tobytes() + CRLF
            bursts += 1
        body = line[:-2] if line.endswith(CRLF) else line.rstrip(b"\n")
        u = rng.random()
        edges = np.cumsum([plan.truncate, plan.bitflip, plan.checksum, plan.drop])
        if u < edges[0] and len(body) > 1:
            out += body[: int(rng.integers(1, len(body)))] + CRLF
            intact.append(False)
        elif u < edges[1] and body:
            b = bytearray(body)
            k = int(rng.integers(0, len(b)))
            b[k] ^= 1 << int(rng.integers(0, 8))
            out += bytes(b) + CRLF
            intact.append(False)
        elif u < edges[2] and len(body) >= 2:
            hh = int(body[-2:], 16) if all(c in b"0123456789ABCDEF" for c in body[-2:]) else 0
            out += body[:-2] + f"{hh ^ 0xFF:02X}".encode() + CRLF
            intact.append(False)
        elif u < edges[3]:
            intact.append(False)
        else:
            out += body + CRLF
            intact.append(True)
    return Faulted(bytes(out), intact, bursts)


def chunks(data: bytes, seed: int = 0, max_chunk: int = 97) -> list[bytes]:
    """``data`` cut at random places, as reads from a serial adapter arrive."""
    rng = np.random.default_rng(seed)
    out: list[bytes] = []
    i = 0
    while i < len(data):
        n = int(rng.integers(1, max_chunk + 1))
        out.append(data[i : i + n])
        i += n
    return out


def stream_to_pty(pty: PtyPair, data: bytes, *, seed: int = 0, max_chunk: int = 4096) -> int:
    """Write ``data`` to the pty's master in random-size chunks; returns bytes written."""
    return sum(pty.write(c, timeout=10.0) for c in chunks(data, seed, max_chunk))
