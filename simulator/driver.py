"""``sim`` driver: SampleBlocks straight from a scenario, no bytes in between.

Like python-can's virtual bus, this lets the whole pipeline run without any
port: ``registry.create("sim", "sim://demo", speed=0)``. Options: ``scenario``
(bundled name or file path; default taken from a ``sim://NAME`` port URL),
``speed`` (x real time, 0 = as fast as possible; default 1), ``seed``
(overrides the scenario's), ``block_size`` (500) and ``max_block_s`` (0.05):
a block is cut at ``block_size`` samples or when its oldest sample has waited
``max_block_s`` wall seconds, like `LineDriver`.

Blocks carry the recorded positions, the device time stamp, and
`BlockFlags.SIMULATED`; a jump of the device counter (turn time between
lanes) is a jump in ``first_index`` with `BlockFlags.GAP`. When the survey is
over, ``read_block`` waits its timeout and returns None, and `finished` is True.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from acquisition.clock import NS_PER_S, mono_ns, wall_ns
from acquisition.drivers.base import DEFAULT_MAX_BLOCK_S, Driver
from acquisition.drivers.transport import PortError
from acquisition.types import BlockFlags, ChannelSpec, SampleBlock, StreamDescriptor
from simulator.scenario import ScenarioError, load_scenario
from simulator.survey import SimulatedSurvey, simulate_survey
from simulator.urlhandlers.protocol_sim import parse_sim_url


class SimDriver(Driver):
    """Simulated gradiometer cart producing blocks directly from a scenario."""

    name = "sim"

    def __init__(self, port: str = "sim://demo", *, stream_id: str | None = None,
                 **options: Any) -> None:
        super().__init__(port, stream_id=stream_id, **options)
        url_opts: dict[str, Any] = {}
        if port and port.lower().startswith("sim://"):
            try:
                url_opts = parse_sim_url(port)
            except ValueError as exc:
                raise ValueError(f"bad sim port {port!r}: {exc}") from None
        self.scenario_name = str(options.get("scenario", url_opts.get("scenario", "demo")))
        self.speed = float(options.get("speed", url_opts.get("speed", 1.0)))
        if not self.speed >= 0:
            raise ValueError(f"speed must be >= 0, got {self.speed}")
        seed = options.get("seed", url_opts.get("seed"))
        self.seed = None if seed is None else int(seed)
        self.block_size = int(options.get("block_size", 500))
        if self.block_size < 1:
            raise ValueError("block_size must be >= 1")
        self.max_block_s = float(options.get("max_block_s", DEFAULT_MAX_BLOCK_S))
        self.survey: SimulatedSurvey | None = None
        self._pos = 0  # next survey sample to emit
        self._open = False
        self._opened_once = False
        self._seq = 0
        self._wall0_mono = 0.0
        self._anchor_ns = 0
        self._flags_next = BlockFlags.NONE
        self._last_index: int | None = None

    @property
    def finished(self) -> bool:
        return self.survey is not None and self._pos >= self.survey.n

    def open(self) -> StreamDescriptor:
        if self.survey is None:
            try:
                sc = load_scenario(self.scenario_name, seed=self.seed)
            except ScenarioError as exc:
                raise PortError(f"cannot open {self.port_url}: {exc}") from exc
            self.survey = simulate_survey(sc)
        if self._opened_once:
            self._flags_next |= BlockFlags.RECONNECT
        else:
            t_first = float(self.survey.t_s[0]) if self.survey.n else 0.0
            self._wall0_mono = time.monotonic() - t_first / self.speed if self.speed else 0.0
            self._anchor_ns = wall_ns()
        self._opened_once = True
        self._open = True
        Driver.open_instances.add(self)
        self.descriptor = self.describe()
        return self.descriptor

    def describe(self) -> StreamDescriptor:
        s = self.survey
        assert s is not None
        sc = s.scenario
        geometry: dict[str, Any] = {
            "kind": sc.sensor.kind,
            "sensor_height_m": sc.sensor.height_m,
            "coordinates": "local grid, x east, y north, metres",
            "lane_spacing_m": sc.survey.lane_spacing_m,
            "scenario": sc.name,
            "seed": sc.seed,
        }
        if sc.sensor.is_gradient:
            geometry["sensor_separation_m"] = sc.sensor.separation_m
        geometry.update({k: v for k, v in sc.field.to_dict().items()})
        return StreamDescriptor(
            stream_id=self.stream_id, instrument="UXG-SIM (simulated)", serial="SIM0001",
            rate_hz=s.rate_hz, channels=(ChannelSpec(s.channel_name, "nT"),),
            geometry=geometry, position_dims=2, driver=self.name,
        )

    def close(self) -> None:
        self._open = False
        Driver.open_instances.discard(self)

    def _due_mono(self, i: int) -> float:
        assert self.survey is not None
        if self.speed == 0:
            return 0.0
        return self._wall0_mono + float(self.survey.t_s[i]) / self.speed

    def read_block(self, timeout: float) -> SampleBlock | None:
        if not self._open or self.survey is None:
            raise PortError("port is not open")
        s = self.survey
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if self._pos >= s.n:
                time.sleep(max(0.0, deadline - now))
                return None
            # Samples due by now, up to block_size, stopping at a counter jump.
            stop = min(s.n, self._pos + self.block_size)
            jumps = np.flatnonzero(np.diff(s.index[self._pos:stop]) != 1)
            if jumps.size:
                stop = self._pos + int(jumps[0]) + 1
            if self.speed == 0:
                return self._emit(stop)
            t_rel = (now - self._wall0_mono) * self.speed
            n_due = int(np.searchsorted(s.t_s[self._pos:stop], t_rel, side="right"))
            full = self._pos + n_due == stop and (stop - self._pos == self.block_size
                                                  or jumps.size or stop == s.n)
            oldest_age = now - self._due_mono(self._pos)
            if n_due and (full or oldest_age >= self.max_block_s):
                return self._emit(self._pos + n_due)
            # Sleep until the block fills or its oldest sample is old enough.
            wake = min(self._due_mono(stop - 1), self._due_mono(self._pos) + self.max_block_s)
            if wake > deadline:
                time.sleep(max(0.0, deadline - now))
                return None
            time.sleep(max(0.0, min(wake - now, 0.1)))

    def _emit(self, stop: int) -> SampleBlock:
        s = self.survey
        assert s is not None
        a = self._pos
        idx0 = int(s.index[a])
        flags = BlockFlags.SIMULATED | self._flags_next
        self._flags_next = BlockFlags.NONE
        if self._last_index is not None and idx0 != self._last_index + 1:
            flags |= BlockFlags.GAP
            self.counters.gaps += 1
        rate = s.rate_hz
        block = SampleBlock(
            stream_id=self.stream_id, seq=self._seq, first_index=idx0,
            t0_ns=self._anchor_ns + round(idx0 * NS_PER_S / rate), rate_hz=rate,
            data=np.ascontiguousarray(s.values[a:stop], dtype=np.float64),
            positions=np.column_stack([s.x_rec[a:stop], s.y_rec[a:stop]]),
            host_mono_ns=mono_ns(), host_wall_ns=wall_ns(),
            device_time_ns=round(float(s.t_s[a]) * NS_PER_S), flags=flags,
        )
        self._seq += 1
        self._pos = stop
        self._last_index = int(s.index[stop - 1])
        self.counters.samples += block.n
        self.counters.frames_ok += block.n
        self.counters.blocks += 1
        return block
