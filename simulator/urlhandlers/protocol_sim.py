"""``sim://`` URLs for pyserial: an emulated instrument's bytes, in-process.

    serial.serial_for_url("sim://demo?protocol=gradline&speed=0&seed=1")
    serial.serial_for_url("sim://demo?protocol=nmea&speed=0")
    serial.serial_for_url("sim:///path/to/scenario.toml?speed=10&faults=garbage,truncate")

The host part names a bundled scenario, or the path part a scenario file.
Query options: ``protocol`` (any of `simulator.emulators.devices.DEVICES`:
gradline, g882, gsm19, fga, fgm3d, nmea, lineproto, borehole; default
gradline), ``speed`` (x real time, 0 = as fast as possible; default 1),
``seed`` (overrides the scenario's), ``faults`` (comma list of `FAULT_NAMES`),
``fault_rate`` (0.01), ``fault_seed`` (0), ``reappear`` (new|same|never),
``banner`` (1/0). Read it with the driver the protocol names
(``script.driver_options`` gives the options, e.g. lineproto's columns).

The same byte chunks as the pty emulator (`simulator.emulators.base.line_emissions`)
are released by a monotonic clock as ``read`` asks for them. When the survey
has been sent, ``read`` returns what is left and then b"" after its timeout,
like a silent device. A ``hangup`` fault makes ``read`` raise
`SerialException` (``in_waiting`` raises `OSError`, as pyserial does on a real
unplug); the device is then away, and opening the same URL again fails until
it reappears, after which it resumes where the device is by then (lines sent
while away are lost). `reset_devices` forgets devices that are away.
"""

from __future__ import annotations

import errno
import functools
import math
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from simulator.emulators.base import (
    FAULT_NAMES,
    DeviceScript,
    Emission,
    FaultPlan,
    SendLog,
    line_emissions,
)
from simulator.emulators.devices import DEVICES, script_for
from simulator.scenario import ScenarioError, load_scenario, resolve_scenario_path
from simulator.survey import SimulatedSurvey, simulate_survey

#: At speed 0, how many bytes may wait in the in-process buffer (back-pressure).
_MAX_BUFFERED = 65536

_away_lock = threading.Lock()
_away: dict[str, tuple[_Device, float]] = {}


def reset_devices() -> None:
    """Forget every device that hung up and has not reappeared."""
    with _away_lock:
        _away.clear()


@functools.lru_cache(maxsize=8)
def _survey(path: str, mtime_ns: int, seed: int | None) -> SimulatedSurvey:
    return simulate_survey(load_scenario(path, seed=seed))


def parse_sim_url(url: str) -> dict[str, Any]:
    """Split a ``sim://`` URL into scenario and options; raise ValueError when bad."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "sim":
        raise ValueError(f"expected a sim:// URL, got {url!r}")
    scenario = parts.netloc + parts.path if parts.netloc else parts.path
    if not scenario:
        raise ValueError("sim:// URL names no scenario (sim://demo or sim:///path/file.toml)")
    opts: dict[str, Any] = {"scenario": urllib.parse.unquote(scenario), "protocol": "gradline",
                            "speed": 1.0, "seed": None, "faults": "", "fault_rate": 0.01,
                            "fault_seed": 0, "reappear": "new", "banner": True}
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        v = values[-1]
        if key == "protocol":
            if v not in DEVICES:
                raise ValueError(f"unknown protocol {v!r} (available: {', '.join(DEVICES)})")
            opts[key] = v
        elif key in ("speed", "fault_rate"):
            f = float(v)
            if not (f >= 0 and math.isfinite(f)):
                raise ValueError(f"{key} must be a finite number >= 0, got {v!r}")
            opts[key] = f
        elif key in ("seed", "fault_seed"):
            i = int(v)
            if i < 0:
                raise ValueError(f"{key} must be >= 0")
            opts[key] = i
        elif key == "faults":
            bad = [w for w in v.split(",") if w and w not in FAULT_NAMES]
            if bad:
                raise ValueError(f"unknown fault {bad[0]!r}; choose from {', '.join(FAULT_NAMES)}")
            opts[key] = v
        elif key == "reappear":
            if v not in ("new", "same", "never"):
                raise ValueError("reappear must be new, same or never")
            opts[key] = v
        elif key == "banner":
            opts[key] = v.lower() not in ("0", "false", "no", "off")
        else:
            raise ValueError(f"unknown option {key!r} in {url!r}")
    return opts


class _Device:
    """An emulated device: its emission stream paced by the monotonic clock."""

    def __init__(self, survey: SimulatedSurvey, script: DeviceScript, plan: FaultPlan,
                 speed: float, banner: bool) -> None:
        self.survey = survey
        self.script = script
        self.plan = plan
        self.speed = speed
        self.log = SendLog()
        self._it = line_emissions(script, plan, banner=banner)
        self._next: Emission | None = next(self._it, None)
        self._t_first = float(script.due_s[0]) if script.n else 0.0
        self._wall0 = time.monotonic()
        self._stall_until = 0.0
        self.buffer = bytearray()
        self.hung_up = False

    @property
    def finished(self) -> bool:
        return self._next is None

    def due(self, em: Emission) -> float:
        if self.speed == 0:
            return 0.0
        return self._wall0 + (em.due_s - self._t_first) / self.speed

    def next_wake(self) -> float:
        """Monotonic time when something more may become available."""
        if self._next is None:
            return math.inf
        return max(self._stall_until, self.due(self._next))

    def pump(self) -> None:
        """Move everything due by now into the buffer."""
        now = time.monotonic()
        while (self._next is not None and not self.hung_up and now >= self._stall_until
               and self.due(self._next) <= now):
            if self.speed == 0 and len(self.buffer) >= _MAX_BUFFERED:
                return
            em = self._next
            self._next = next(self._it, None)
            self.log.record(em)
            if em.kind == "stall":
                self._stall_until = now + em.duration_s
            elif em.kind == "hangup":
                self.hung_up = True
            else:
                self.buffer += em.data

    def away_until(self) -> float:
        if self.plan.reappear == "never":
            return math.inf
        wall = self.plan.hangup_wall_s
        if wall is None:
            wall = self.plan.hangup_s / self.speed if self.speed > 0 else 0.2
        return time.monotonic() + wall


class Serial(SerialBase):
    """pyserial port whose bytes come from an emulated instrument."""

    is_open: bool  # SerialBase sets it; declared as pyserial is read untyped here

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._device: _Device | None = None
        self._url_key = ""
        super().__init__(*args, **kwargs)

    @property
    def log(self) -> SendLog | None:
        """What the emulated device has sent so far (None before open)."""
        return None if self._device is None else self._device.log

    @property
    def survey(self) -> SimulatedSurvey | None:
        return None if self._device is None else self._device.survey

    @property
    def script(self) -> DeviceScript | None:
        """The emulated device's script (driver name and options), None before open."""
        return None if self._device is None else self._device.script

    @property
    def finished(self) -> bool:
        """True when the whole survey has been delivered to the buffer."""
        return self._device is not None and self._device.finished

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        self._device = self._attach(str(self._port))
        self.is_open = True

    def _attach(self, url: str) -> _Device:
        try:
            opts = parse_sim_url(url)
        except ValueError as exc:
            raise SerialException(f"bad sim:// URL {url!r}: {exc}") from None
        self._url_key = url
        with _away_lock:
            away = _away.get(url)
            if away is not None:
                dev, back_at = away
                if time.monotonic() < back_at:
                    raise SerialException(errno.ENOENT,
                                          f"could not open port {url}: device not present")
                del _away[url]
                dev.hung_up = False
                dev.buffer.clear()  # bytes of the old connection are gone
                return dev
        try:
            path = resolve_scenario_path(opts["scenario"])
            survey = _survey(str(path.resolve()), Path(path).stat().st_mtime_ns, opts["seed"])
            script = script_for(opts["protocol"], survey)
            faults = opts["faults"]
            plan = (FaultPlan.from_names(faults, n_lines=script.n, rate=opts["fault_rate"],
                                         seed=opts["fault_seed"], reappear=opts["reappear"])
                    if faults else FaultPlan())
        except (ScenarioError, ValueError, OSError) as exc:
            raise SerialException(f"cannot open {url}: {exc}") from None
        return _Device(survey, script, plan, opts["speed"], opts["banner"])

    def close(self) -> None:
        self.is_open = False
        self._device = None

    def _reconfigure_port(self) -> None:  # nothing to configure on a simulated line
        pass

    def _check(self) -> _Device:
        if not self.is_open or self._device is None:
            raise PortNotOpenError()
        return self._device

    def _vanish(self, dev: _Device) -> None:
        with _away_lock:
            _away[self._url_key] = (dev, dev.away_until())
        self.is_open = False
        self._device = None

    @property
    def in_waiting(self) -> int:
        dev = self._check()
        dev.pump()
        if dev.hung_up and not dev.buffer:
            self._vanish(dev)
            raise OSError(errno.EIO, "Input/output error (simulated device hung up)")
        return len(dev.buffer)

    def read(self, size: int = 1) -> bytes:
        dev = self._check()
        if size <= 0:
            return b""
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        out = bytearray()
        while len(out) < size:
            dev.pump()
            if dev.buffer:
                take = min(size - len(out), len(dev.buffer))
                out += dev.buffer[:take]
                del dev.buffer[:take]
                continue
            if dev.hung_up:
                if out:
                    break
                self._vanish(dev)
                raise SerialException("device reports readiness to read but returned no data "
                                      "(simulated device hung up)")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            wake = dev.next_wake()
            if math.isinf(wake) and deadline is None:
                break  # survey over and no timeout: never block forever
            until = wake if deadline is None else min(wake, deadline)
            time.sleep(min(max(until - now, 0.0005), 0.1))
        return bytes(out)

    def write(self, data: bytes) -> int:
        self._check()
        return len(data)  # the instrument ignores commands

    def reset_input_buffer(self) -> None:
        dev = self._check()
        dev.pump()
        dev.buffer.clear()

    def reset_output_buffer(self) -> None:
        self._check()

    @property
    def out_waiting(self) -> int:
        return 0

    def send_break(self, duration: float = 0.25) -> None:
        self._check()

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
