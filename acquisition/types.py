"""Core data types shared by every stage: channels, stream descriptors, sample blocks.

A stream is described once (`StreamDescriptor`) and then flows as `SampleBlock`s.
Following ObsPy, times inside a regular stream are implicit: sample ``i`` of a
block was taken at ``t0_ns + i * 1e9 / rate_hz``. All absolute times are integer
nanoseconds; which clock a time comes from is part of its name (``device_*``,
``host_mono_*``, ``host_wall_*``) because users cannot tell device uptime from
epoch seconds otherwise.

A gap is never interpolated: the next block's ``first_index`` jumps past the
missing samples and carries `BlockFlags.GAP`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.clock import NS_PER_S


class BlockFlags(enum.IntFlag):
    """Per-block condition flags (bit set, travels on the wire as an int)."""

    NONE = 0
    #: Samples are missing before this block (first_index jumped).
    GAP = 1
    #: The framer dropped undecodable bytes inside this block's span.
    RESYNC = 2
    #: First block after the port was (re)opened.
    RECONNECT = 4
    #: The device clock jumped or went backwards inside the block.
    CLOCK_JUMP = 8
    #: Positions were interpolated from another stream (e.g. GNSS).
    POSITION_INTERPOLATED = 16
    #: The data come from a simulator or a replayed recording, not a live device.
    SIMULATED = 32


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One column of a stream: its name, physical unit and storage type.

    ``calibration`` holds whatever the driver applied or knows (scale, offset,
    sensor serials), recorded as provenance; it is not applied again downstream.
    """

    name: str
    units: str
    dtype: str = "float64"
    calibration: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "dtype": self.dtype,
            "calibration": dict(self.calibration),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelSpec:
        return cls(
            name=str(d["name"]),
            units=str(d["units"]),
            dtype=str(d.get("dtype", "float64")),
            calibration=dict(d.get("calibration") or {}),
        )


@dataclass(frozen=True, slots=True)
class StreamDescriptor:
    """What a stream's data mean, sent to subscribers before any data.

    ``geometry`` holds what the DSP needs to interpret the readings, e.g.
    ``{"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}``
    for a hand-held gradiometer, or probe type and separation for a borehole probe.
    ``position_dims`` is 0 when blocks carry no positions, else 2 (x, y) or 3.
    """

    stream_id: str
    instrument: str
    serial: str
    rate_hz: float
    channels: tuple[ChannelSpec, ...]
    geometry: dict[str, Any] = field(default_factory=dict)
    position_dims: int = 0
    driver: str = ""

    def __post_init__(self) -> None:
        if not self.stream_id:
            raise ValueError("stream_id must not be empty")
        if not (self.rate_hz > 0 and np.isfinite(self.rate_hz)):
            raise ValueError(f"rate_hz must be positive and finite, got {self.rate_hz!r}")
        if not self.channels:
            raise ValueError("a stream needs at least one channel")
        if self.position_dims not in (0, 2, 3):
            raise ValueError(f"position_dims must be 0, 2 or 3, got {self.position_dims}")
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate channel names: {names}")

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def channel_index(self, name: str) -> int:
        try:
            return self.channel_names.index(name)
        except ValueError:
            raise KeyError(f"stream {self.stream_id!r} has no channel {name!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "instrument": self.instrument,
            "serial": self.serial,
            "rate_hz": float(self.rate_hz),
            "channels": [c.to_dict() for c in self.channels],
            "geometry": dict(self.geometry),
            "position_dims": self.position_dims,
            "driver": self.driver,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamDescriptor:
        return cls(
            stream_id=str(d["stream_id"]),
            instrument=str(d.get("instrument", "")),
            serial=str(d.get("serial", "")),
            rate_hz=float(d["rate_hz"]),
            channels=tuple(ChannelSpec.from_dict(c) for c in d["channels"]),
            geometry=dict(d.get("geometry") or {}),
            position_dims=int(d.get("position_dims", 0)),
            driver=str(d.get("driver", "")),
        )


@dataclass(frozen=True, slots=True, eq=False)
class SampleBlock:
    """A run of consecutive samples of one stream.

    ``data`` has shape ``(n, n_channels)``; ``positions`` is ``(n, 2|3)`` or None.
    ``first_index`` counts samples since the stream started (across reconnects),
    so ``first_index + n`` is the next block's ``first_index`` unless samples were
    lost, in which case the next block carries `BlockFlags.GAP`.

    ``t0_ns`` is the time of sample 0 on the stream's reference clock (host wall
    clock unless the driver trusts the device clock). ``device_time_ns`` is the
    instrument's own time stamp of sample 0 when it sends one (device clock,
    often uptime), else None. ``host_mono_ns``/``host_wall_ns`` are when the host
    received the bytes that completed the block.
    """

    stream_id: str
    seq: int
    first_index: int
    t0_ns: int
    rate_hz: float
    data: np.ndarray
    positions: np.ndarray | None = None
    host_mono_ns: int = 0
    host_wall_ns: int = 0
    device_time_ns: int | None = None
    flags: BlockFlags = BlockFlags.NONE

    def __post_init__(self) -> None:
        if self.data.ndim != 2:
            raise ValueError(f"data must be 2-D (n, channels), got shape {self.data.shape}")
        if self.positions is not None and (
            self.positions.ndim != 2
            or self.positions.shape[0] != self.data.shape[0]
            or self.positions.shape[1] not in (2, 3)
        ):
            raise ValueError(
                f"positions shape {self.positions.shape} does not match data {self.data.shape}"
            )
        if not (self.rate_hz > 0):
            raise ValueError("rate_hz must be positive")

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    @property
    def next_index(self) -> int:
        return self.first_index + self.n

    def times_ns(self) -> np.ndarray:
        """Implicit sample times (int64 ns) on the block's reference clock."""
        return self.t0_ns + np.round(
            np.arange(self.n, dtype=np.float64) * (NS_PER_S / self.rate_hz)
        ).astype(np.int64)

    def time_of_index_ns(self, index: int) -> int:
        """Time of absolute sample ``index`` extrapolated from this block."""
        return self.t0_ns + round((index - self.first_index) * NS_PER_S / self.rate_hz)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleBlock):
            return NotImplemented
        same_pos = (self.positions is None and other.positions is None) or (
            self.positions is not None
            and other.positions is not None
            and np.array_equal(self.positions, other.positions, equal_nan=True)
        )
        return (
            self.stream_id == other.stream_id
            and self.seq == other.seq
            and self.first_index == other.first_index
            and self.t0_ns == other.t0_ns
            and self.rate_hz == other.rate_hz
            and self.host_mono_ns == other.host_mono_ns
            and self.host_wall_ns == other.host_wall_ns
            and self.device_time_ns == other.device_time_ns
            and self.flags == other.flags
            and np.array_equal(self.data, other.data, equal_nan=True)
            and same_pos
        )

    # assignment: equal by array content, so unhashable (typeshed types __hash__ as a method)
    __hash__ = None  # type: ignore[assignment]
