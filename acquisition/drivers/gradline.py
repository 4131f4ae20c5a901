"""``gradline``: the UXG ASCII line protocol of our simulated gradiometer cart.

One line per sample (see docs/drivers.md)::

    $UXG,<count>,<t_s>,<x_m>,<y_m>,<value>[,<value>...]*HH\\r\\n

``count`` is the device's sample counter (a jump means lost lines), ``t_s`` the
device clock in seconds since power-up, ``x``/``y`` the position on the local
grid in metres (empty when unknown), then one reading per channel in nT. ``HH``
is the NMEA-style XOR of every byte between ``$`` and ``*``. Lines starting with
``#`` carry ``key=value`` banner information (serial, rate, geometry).

The parser is pure and never raises: each bad line is rejected with a reason
and the good lines around it are kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.types import ChannelSpec, StreamDescriptor

PREFIX = b"$UXG,"


def checksum(payload: bytes) -> int:
    """XOR of the bytes between ``$`` and ``*`` (NMEA 0183 convention)."""
    c = 0
    for b in payload:
        c ^= b
    return c


def _parse_float(tok: bytes) -> float:
    if not tok:
        return math.nan
    v = float(tok)
    if not math.isfinite(v):
        raise ValueError("non-finite")
    return v


def parse_info(line: bytes) -> dict[str, str]:
    """``# key=value key=value`` banner line to a dict (unparseable words ignored)."""
    out: dict[str, str] = {}
    try:
        text = line.lstrip(b"#").decode("ascii")
    except UnicodeDecodeError:
        return out
    for word in text.split():
        if "=" in word:
            k, v = word.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def parse_lines(lines: list[bytes], n_channels: int = 1) -> ParsedLines:
    """Decode UXG lines with ``n_channels`` readings each. Pure; never raises."""
    n = len(lines)
    values = np.empty((n, n_channels))
    pos = np.empty((n, 2))
    dev = np.empty(n, dtype=np.int64)
    cnt = np.empty(n, dtype=np.int64)
    rejects: list[tuple[int, str]] = []
    info: dict[str, str] = {}
    k = 0
    n_fields = 4 + n_channels
    for i, line in enumerate(lines):
        if line.startswith(b"#"):
            info.update(parse_info(line))
            continue
        start = line.rfind(PREFIX)
        if start < 0:
            rejects.append((i, "no_prefix"))
            continue
        star = line.find(b"*", start)
        if star < 0 or len(line) - star != 3:
            rejects.append((i, "no_checksum"))
            continue
        payload = line[start + 1 : star]
        try:
            want = int(line[star + 1 :], 16)
        except ValueError:
            rejects.append((i, "bad_checksum_field"))
            continue
        if checksum(payload) != want:
            rejects.append((i, "checksum"))
            continue
        fields = payload.split(b",")[1:]
        if len(fields) != n_fields:
            rejects.append((i, "field_count"))
            continue
        try:
            c = int(fields[0])
            t = float(fields[1])
            x = _parse_float(fields[2])
            y = _parse_float(fields[3])
            vals = [float(f) for f in fields[4:]]
        except ValueError:
            rejects.append((i, "number"))
            continue
        if c < 0 or not math.isfinite(t) or not all(math.isfinite(v) for v in vals):
            rejects.append((i, "number"))
            continue
        cnt[k] = c
        dev[k] = round(t * 1e9)
        pos[k, 0] = x
        pos[k, 1] = y
        values[k] = vals
        k += 1
    return ParsedLines(
        values=values[:k], positions=pos[:k], device_ns=dev[:k], counter=cnt[:k],
        rejects=rejects, info=info,
    )


def format_line(count: int, t_s: float, x: float, y: float, values: list[float]) -> bytes:
    """Encode one UXG line (used by tests and tools; the simulator has its own)."""
    xs = "" if math.isnan(x) else f"{x:.3f}"
    ys = "" if math.isnan(y) else f"{y:.3f}"
    body = f"UXG,{count},{t_s:.3f},{xs},{ys}," + ",".join(f"{v:.3f}" for v in values)
    payload = body.encode("ascii")
    return b"$" + payload + b"*" + f"{checksum(payload):02X}".encode() + b"\r\n"


class GradLineDriver(LineDriver):
    """Gradiometer (or total-field) cart speaking UXG lines.

    Options: ``kind`` (``gradient``: fluxgate Bz lower - upper; ``total``; ``tf_gradient``:
    two total-field sensors, F lower - upper), ``sensor_height_m`` (0.3),
    ``sensor_separation_m`` (0.65), ``channels`` (number of readings per line, 1),
    ``rate_hz`` (10), ``serial``. Banner lines (``# serial=... rate=...``) update
    the descriptor on the next (re)open.
    """

    name = "gradline"
    baudrate = 115200

    def default_rate_hz(self) -> float:
        return 10.0

    @property
    def n_channels(self) -> int:
        return int(self.options.get("channels", 1))

    def _metres(self, option: str, banner: str, default: float) -> float:
        """A length from the options, else the device banner, else ``default``."""
        if option in self.options:
            raw, where = self.options[option], f"option {option}"
        else:
            raw, where = self.info.get(banner, default), f"device banner {banner}"
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}={raw!r} is not a number (expected metres)") from None

    def describe(self) -> StreamDescriptor:
        kind = str(self.options.get("kind", self.info.get("kind", "gradient")))
        bases = {"gradient": "grad", "total": "tf", "tf_gradient": "tfgrad"}
        if kind not in bases:
            raise ValueError(f"kind must be one of {', '.join(bases)}, got {kind!r}")
        base = bases[kind]
        names = [base] if self.n_channels == 1 else [f"{base}{i}" for i in range(self.n_channels)]
        geometry: dict[str, Any] = {
            "kind": kind,
            "sensor_height_m": self._metres("sensor_height_m", "height", 0.3),
            "coordinates": "local grid, x east, y north, metres",
        }
        if kind in ("gradient", "tf_gradient"):  # both read a difference of two sensors
            geometry["sensor_separation_m"] = self._metres("sensor_separation_m", "sep", 0.65)
        return StreamDescriptor(
            stream_id=self.stream_id,
            instrument=str(self.info.get("model", "UXG gradiometer cart")),
            serial=str(self.options.get("serial", self.info.get("serial", ""))),
            rate_hz=self.rate_hz,
            channels=tuple(ChannelSpec(n, "nT") for n in names),
            geometry=geometry,
            position_dims=2,
            driver=self.name,
        )

    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        return parse_lines(lines, self.n_channels)
