"""UXG line-protocol emulator: a simulated gradiometer cart talking over a real pty.

The wire format (acquisition/drivers/gradline.py, docs/drivers.md) is written
here independently of the driver's own ``format_line``, so driver and emulator
check each other::

    $UXG,<count>,<t_s>,<x_m>,<y_m>,<value>*HH\\r\\n     HH = XOR of bytes between $ and *
    # model=UXG-SIM serial=SIM0001 rate=10 kind=gradient height=0.30 sep=0.65

The machinery (pacing, faults, hang-ups, the send log) is the protocol-agnostic
`simulator.emulators.base.LineEmulator`; this module supplies the UXG encoding
(`gradline_script`) and keeps the original names: `GradLineEmulator(survey, ...)`,
`emissions(survey, faults)`, `FaultPlan`, `SendLog`, `Emission`, `FAULT_NAMES`.
See `simulator.emulators.base` for what each fault does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from simulator.emulators.base import (
    FAULT_NAMES,
    DeviceScript,
    Emission,
    FaultPlan,
    LineCodec,
    LineEmulator,
    SendLog,
    line_emissions,
)
from simulator.survey import SimulatedSurvey

__all__ = ["FAULT_NAMES", "Emission", "FaultPlan", "GradLineEmulator", "SendLog",
           "banner_line", "emissions", "encode_line", "gradline_script", "xor_checksum"]

#: UXG payloads hold only ``UXG,`` digits, signs, points and commas: no flip of them can
#: make a newline, so the original emulator's flips are kept exactly (same plan, same bytes).
UXG_CODEC = LineCodec(checksummed=True)


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
    if sc.sensor.is_gradient:
        words.append(f"sep={sc.sensor.separation_m:.2f}")
    return ("# " + " ".join(words) + "\r\n").encode("ascii")


def gradline_script(survey: SimulatedSurvey) -> DeviceScript:
    """The UXG device for ``survey``: one line per sample, counter = ``survey.index``."""
    def encode(i: int) -> bytes:
        return encode_line(int(survey.index[i]), float(survey.t_s[i]), float(survey.x_rec[i]),
                           float(survey.y_rec[i]), survey.values[i])

    return DeviceScript("gradline", np.asarray(survey.index, dtype=np.int64),
                        np.asarray(survey.t_s, dtype=np.float64), encode, survey.rate_hz,
                        UXG_CODEC, banner_line(survey), driver="gradline",
                        driver_options={"rate_hz": survey.rate_hz})


def emissions(survey: SimulatedSurvey, faults: FaultPlan | None = None, *,
              banner: bool = True) -> Iterator[Emission]:
    """The byte chunks a UXG device would send for ``survey`` (deterministic)."""
    return line_emissions(gradline_script(survey), faults, banner=banner)


class GradLineEmulator(LineEmulator):
    """Stream a simulated survey as UXG lines over a real pty (see `LineEmulator`)."""

    def __init__(self, survey: SimulatedSurvey, *, speed: float = 1.0,
                 faults: FaultPlan | None = None, banner: bool = True,
                 link_path: str | os.PathLike[str] | None = None,
                 on_reappear: Callable[[str], None] | None = None,
                 wait_for_start: bool = False) -> None:
        self.survey = survey
        super().__init__(gradline_script(survey), speed=speed, faults=faults, banner=banner,
                         link_path=link_path, on_reappear=on_reappear,
                         wait_for_start=wait_for_start)
