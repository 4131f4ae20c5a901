"""The acquisition service: driver runner -> pipeline -> publisher, and -> recorder.

This is the only place that knows about threads, sockets and files together.
Data flow one way (docs/developing.md)::

    DriverRunner thread --queue--> service loop --> RecorderSink (lossless, same process)
                                                --> processing pipeline --> events
                                                --> Publisher (XPUB): descriptors,
                                                    decimated blocks, events, heartbeats

The loop runs in the caller's thread and owns the ZeroMQ socket (sockets are
not thread-safe). Ctrl-C (KeyboardInterrupt) or `stop()` ends it cleanly: the
runner is stopped and drained, the pipeline flushed, a session-stop event
published, and the HDF5 file closed valid.

The recorder flushes on its own timer thread, so its loss bound (one flush
interval) holds whatever keeps the loop busy, a subscription flood included.
Every queue is bounded: runner -> loop (`acquisition.bounded_queue`, drops
counted per stream as ``queue_dropped`` in heartbeats), the recorder's buffer, and the
publisher's per-subscriber queues; the publisher handles subscriptions in
bounded slices (acquisition.publisher).

A recorder failure (disk full, unwritable path) does not stop acquisition: a
``recorder_error`` state event tells the operator, data keep flowing to the
bus, and the sink keeps buffering and retrying on its own; when it recovers a
``recorder_recovered`` state event says so.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from acquisition import __version__
from acquisition.bounded_queue import BoundedQueue
from acquisition.clock import mono_ns, wall_ns
from acquisition.drivers.base import Driver
from acquisition.events import Anomaly, StateChange, Target
from acquisition.forward import KINDS as LANE_KINDS
from acquisition.geomag import QUANG_TRI, EarthField
from acquisition.runner import DriverRunner, RunnerItem
from acquisition.types import SampleBlock, StreamDescriptor

if TYPE_CHECKING:
    from acquisition.drivers.gnss_attach import PositionAttacher
    from acquisition.publisher import Publisher
    from recorder.sink import RecorderSink

log = logging.getLogger(__name__)


class Pipeline(Protocol):
    def process(self, block: SampleBlock) -> list[Anomaly | Target]: ...
    def finish(self) -> list[Anomaly | Target]: ...


def make_pipeline(desc: StreamDescriptor, field: EarthField,
                  config: Any = None) -> Pipeline | None:
    """The processing pipeline a stream's geometry calls for, or None.

    ``config`` is the pipeline's own config object (LaneConfig, BoreholeConfig).
    """
    kind = desc.geometry.get("kind")
    if desc.geometry.get("probe") or kind == "borehole":
        from acquisition.borehole.pipeline import BoreholePipeline

        return BoreholePipeline(desc, field, config)
    if kind in LANE_KINDS and desc.position_dims >= 2:
        from acquisition.dsp.pipeline import LanePipeline

        return LanePipeline(desc, field, config)
    return None


@dataclass
class ServiceConfig:
    """What `uxo acquire` was asked to do."""

    publish: str | None = None
    record: str | None = None
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    earth_field: EarthField = QUANG_TRI
    process: bool = True
    #: Publish every k-th sample of data blocks; None picks k so the bus carries
    #: a preview of at most `preview_hz` samples/s per stream (1 = full rate).
    block_decimation: int | None = None
    preview_hz: float = 50.0
    heartbeat_s: float = 1.0
    flush_interval_s: float = 1.0
    stall_s: float = 3.0
    #: Stop once data have arrived and then nothing for this long (None: never).
    idle_exit_s: float | None = None
    #: Stop after this long in total (None: never).
    max_runtime_s: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    #: The pipeline's config object (LaneConfig, BoreholeConfig), None for defaults.
    pipeline_config: Any = None
    #: How long a detector block may wait for GNSS fixes that cover it.
    gnss_hold_s: float = 2.0
    #: Publisher security: `acquisition.cli_common.bus_options_from_args` output
    #: (CURVE keys), or {} for a plain socket.
    bus_options: dict[str, Any] = field(default_factory=dict)
    #: Allow an unencrypted bind beyond loopback.
    insecure: bool = False


@dataclass
class ServiceSummary:
    session: str
    samples: int = 0
    blocks: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    states: list[StateChange] = field(default_factory=list)
    record_files: list[str] = field(default_factory=list)
    recorder_error: str | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    published: int = 0


class AcquisitionService:
    """Wire a detector driver (and optionally a GNSS driver) to processing, bus and archive.

    The first driver is the detector stream that is processed. A ``gnss`` driver
    (the ``nmea`` driver, or anything whose blocks carry ``utc_s``/``lat``/``lon``)
    is recorded and published as its own stream and gives the detector blocks
    their positions by time (`PositionAttacher`): detector blocks wait at most
    ``gnss_hold_s`` for fixes that cover them, then go on with whatever
    positions exist (NaN where the fix track has a hole; never invented).
    """

    def __init__(
        self,
        driver: Driver,
        config: ServiceConfig,
        *,
        gnss: Driver | None = None,
        on_event: Callable[[Anomaly | Target | StateChange], None] | None = None,
        runner_options: dict[str, Any] | None = None,
    ) -> None:
        self.driver = driver
        self.gnss = gnss
        self.config = config
        self.on_event = on_event
        self.queue: BoundedQueue = BoundedQueue()
        opts = {"stall_s": config.stall_s, **(runner_options or {})}
        self.runner = DriverRunner(driver, self.queue, **opts)
        self.runners = [self.runner]
        if gnss is not None:
            if gnss.stream_id == driver.stream_id:
                raise ValueError("the GNSS stream needs its own stream id")
            gnss_opts = {k: v for k, v in opts.items() if k != "fallback_urls"}
            self.runners.append(DriverRunner(gnss, self.queue, **gnss_opts))
        self._stop = threading.Event()
        self.summary = ServiceSummary(session=config.session)
        self.descriptors: dict[str, StreamDescriptor] = {}
        self.pipeline: Pipeline | None = None
        self.publisher: Publisher | None = None
        self.sink: RecorderSink | None = None
        if config.record:
            # a clear refusal now, not a failing sink once data flow
            from recorder.sink import check_new_recording

            check_new_recording(config.record, config.session)
        self._sink_ok = True
        self._sink_backlog: list[tuple[str, tuple[Any, ...]]] = []
        self._sink_wait_since: int | None = None
        self.attacher: PositionAttacher | None = None
        self._held: list[SampleBlock] = []
        self._fix_rate_checked = False
        self._flushes_seen = 0
        self._last_flush_wall: int | None = None
        if gnss is not None:
            from acquisition.drivers.gnss_attach import PositionAttacher

            self.attacher = PositionAttacher()

    @property
    def descriptor(self) -> StreamDescriptor | None:
        """The detector stream's descriptor (None until the port opened)."""
        return self.descriptors.get(self.driver.stream_id)

    def stop(self) -> None:
        """Ask the loop to finish (thread-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- set-up ------------------------------------------------------------------
    def _open_outputs(self) -> None:
        if self.config.publish:
            from acquisition.publisher import Publisher

            self.publisher = Publisher(self.config.publish, self.config.session,
                                       heartbeat_s=self.config.heartbeat_s,
                                       insecure=self.config.insecure,
                                       **self.config.bus_options)
            self.publisher.session_start(**self._session_info())

    def _session_info(self) -> dict[str, Any]:
        info = {
            "software": f"uxo-acquisition {__version__}",
            "driver": self.driver.name,
            "port": self.driver.port_url,
            **self.config.earth_field.to_dict(),
            **self.config.provenance,
        }
        if self.gnss is not None:
            info["gnss_driver"] = self.gnss.name
            info["gnss_port"] = self.gnss.port_url
        return info

    def _on_descriptor(self, desc: StreamDescriptor) -> None:
        old = self.descriptors.get(desc.stream_id)
        if old is not None:
            if desc != old:
                log.warning("descriptor of %s changed on reconnect; keeping the first one",
                            desc.stream_id)
            return
        if desc.stream_id == self.driver.stream_id and self.gnss is not None:
            # Positions will come from the GNSS stream: say so to subscribers.
            desc = dataclasses.replace(
                desc, position_dims=2,
                geometry={**desc.geometry, "positions_from": self.gnss.stream_id})
        self.descriptors[desc.stream_id] = desc
        if self.publisher is not None:
            self.publisher.add_stream(desc)
        if desc.stream_id == self.driver.stream_id and self.config.process:
            self.pipeline = make_pipeline(desc, self.config.earth_field,
                                          self.config.pipeline_config)
        if self.config.record:
            if self.sink is None:
                self._create_sink()
            assert self.sink is not None  # made just above when missing
            # After start the sink rotates to a new file that holds every stream.
            self.sink.add_stream(desc)
            self._maybe_start_sink()

    def _create_sink(self) -> None:
        from recorder.sink import RecorderSink

        drivers = {d.stream_id: d for d in (self.driver, self.gnss) if d is not None}
        provenance = {
            **self._session_info(),
            "driver_options": {sid: {k: str(v) for k, v in d.options.items()}
                               for sid, d in drivers.items()},
            "pipeline_config": repr(self.config.pipeline_config),
        }
        # The sink never raises on I/O failure; it reports through `healthy`.
        assert self.config.record is not None  # only called when recording
        self.sink = RecorderSink(self.config.record, session=self.config.session,
                                 provenance=provenance,
                                 flush_interval_s=self.config.flush_interval_s,
                                 timer=True)
        self._sink_wait_since = mono_ns()

    def _maybe_start_sink(self, *, force: bool = False) -> None:
        """Start the file once every stream is described (SWMR wants all datasets
        first), or after a short wait so a missing GNSS does not stop recording."""
        if self.sink is None or self.sink.started:
            return
        all_known = all(r.driver.stream_id in self.descriptors for r in self.runners)
        waited = (mono_ns() - (self._sink_wait_since or 0)) / 1e9
        if not (all_known or force or waited > 2.0):
            return
        self.sink.start()
        for kind, args in self._sink_backlog:
            getattr(self.sink, kind)(*args)
        self._sink_backlog.clear()
        self._check_sink()

    def _to_sink(self, method: str, *args: Any) -> None:
        if self.sink is None:
            return
        if not self.sink.started:
            self._sink_backlog.append((method, args))
            return
        getattr(self.sink, method)(*args)
        self._check_sink()

    def _check_sink(self) -> None:
        """Publish the recorder's health transitions (error, recovered)."""
        if self.sink is None or self.sink.healthy == self._sink_ok:
            return
        self._sink_ok = self.sink.healthy
        if self._sink_ok:
            self._emit(StateChange(self.driver.stream_id, "recorder_recovered",
                                   f"recording again to {self.sink.path}", wall_ns()))
        else:
            reason = self.sink.error or "recorder failed"
            self.summary.recorder_error = reason
            log.error("recorder failed: %s", reason)
            self._emit(StateChange(self.driver.stream_id, "recorder_error", reason, wall_ns()))

    # --- the loop ------------------------------------------------------------------
    def run(self) -> ServiceSummary:
        """Run until `stop()`, Ctrl-C, idle/max runtime, or a finite stream ends."""
        self._open_outputs()
        for r in self.runners:
            r.start()
        started = mono_ns()
        last_data: int | None = None
        try:
            while not self._stop.is_set():
                try:
                    item = self.queue.get(timeout=0.05)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._handle(item)
                    if item.kind == "block":
                        last_data = mono_ns()
                self._housekeeping()
                if item is None and self.runner.ended and self.queue.empty():
                    break  # end of a finite stream (replay, simulation) or gave up
                now = mono_ns()
                if (self.config.idle_exit_s is not None and last_data is not None
                        and now - last_data > self.config.idle_exit_s * 1e9):
                    log.info("no data for %.1f s: stopping", self.config.idle_exit_s)
                    break
                if (self.config.max_runtime_s is not None
                        and now - started > self.config.max_runtime_s * 1e9):
                    break
        except KeyboardInterrupt:
            log.info("interrupted: stopping cleanly")
        finally:
            self._shutdown()
        return self.summary

    def _handle(self, item: RunnerItem) -> None:
        if item.kind == "descriptor" and item.descriptor is not None:
            self._on_descriptor(item.descriptor)
        elif item.kind == "state" and item.state is not None:
            self._emit(item.state)
        elif item.kind == "block" and item.block is not None:
            if item.block.stream_id == self.driver.stream_id:
                self._on_detector_block(item.block)
            else:
                self._on_gnss_block(item.block)

    def _on_gnss_block(self, block: SampleBlock) -> None:
        desc = self.descriptors.get(block.stream_id)
        if self.attacher is not None and desc is not None:
            self.attacher.add_nmea_block(block, desc)
            if not self._fix_rate_checked:
                self._check_fix_rate()
        self._record_and_publish(block)
        self._release_held(force=False)

    def _check_fix_rate(self) -> None:
        """Say once, as a ``slow_positions`` state event, when GNSS fixes come too
        seldom for live feedback in time: a detector block waits for the fix after
        it (`_release_held`), so the fix interval adds to the live detector's wait
        and the driver's block cut (bench/bench_live_latency.py: 1 Hz fixes gave
        up to 1.2 s, 5 Hz 0.50 s, 10 Hz 0.40 s)."""
        every = self.attacher.fix_interval_s if self.attacher is not None else None
        if every is None or (self.pipeline is None and self.config.process):
            return  # too few fixes yet, or the detector not described yet
        self._fix_rate_checked = True
        delay = getattr(getattr(self.pipeline, "config", None), "live_max_delay_s", None)
        if delay is None:  # no live events on this stream
            return
        from acquisition.dsp.laneconfig import LIVE_FEEDBACK_S

        cut = float(getattr(self.driver, "max_block_s", 0.0))
        worst = delay + every + cut
        if worst <= LIVE_FEEDBACK_S:
            return
        room = LIVE_FEEDBACK_S - delay - cut
        advice = (f"set the receiver to {math.ceil(1.0 / room - 1e-9)} Hz or more" if room > 0
                  else "the live detector's wait alone fills the budget")
        reason = (f"GNSS fixes every {every:.2f} s: live anomaly events may come up to "
                  f"{worst:.2f} s after the sensor passes a signal (wanted: within "
                  f"{LIVE_FEEDBACK_S:g} s); {advice}")
        log.warning("%s: %s", self.driver.stream_id, reason)
        self._emit(StateChange(self.driver.stream_id, "slow_positions", reason, wall_ns()))

    def _on_detector_block(self, block: SampleBlock) -> None:
        self.summary.samples += block.n
        self.summary.blocks += 1
        if self.attacher is None or (block.positions is not None
                                     and np.isfinite(block.positions).any()):
            self._deliver(block)
            return
        self._held.append(block)
        self._release_held(force=False)

    def _release_held(self, *, force: bool) -> None:
        """Attach positions to held detector blocks the fix track now covers."""
        hold_ns = int(self.config.gnss_hold_s * 1e9)
        now = wall_ns()
        assert self.attacher is not None  # blocks are held only with a GNSS stream
        while self._held:
            block = self._held[0]
            last_t = block.time_of_index_ns(block.next_index - 1)
            covered = self.attacher.covers(last_t)
            if not (force or covered or now - block.host_wall_ns > hold_ns):
                break
            self._held.pop(0)
            self._deliver(self.attacher.attach(block))

    def _deliver(self, block: SampleBlock) -> None:
        self._record_and_publish(block)
        if self.pipeline is not None:
            for ev in self.pipeline.process(block):
                self._emit(ev)

    def _record_and_publish(self, block: SampleBlock) -> None:
        self._to_sink("write_block", block)
        if self.publisher is not None:
            self.publisher.publish_block(block, decimation=self._decimation(block))
            self.summary.published += 1

    def _decimation(self, block: SampleBlock) -> int:
        if self.config.block_decimation is not None:
            return max(1, self.config.block_decimation)
        return max(1, int(block.rate_hz // self.config.preview_hz))

    def _emit(self, ev: Anomaly | Target | StateChange) -> None:
        if isinstance(ev, Anomaly):
            self.summary.anomalies.append(ev)
            kind = "anomaly"
        elif isinstance(ev, Target):
            self.summary.targets.append(ev)
            kind = "target"
        else:
            self.summary.states.append(ev)
            kind = "state"
        if self.publisher is not None:
            self.publisher.publish_event(ev)
            self.summary.published += 1
        self._to_sink("write_event", kind, ev.stream_id, ev.to_dict(),
                      getattr(ev, "t_ns", 0) or wall_ns())
        if self.on_event is not None:
            self.on_event(ev)

    def _data_waiting(self) -> bool:
        return not self.queue.empty()

    def _counters(self, runner: DriverRunner) -> dict[str, Any]:
        c = runner.driver.counters.to_dict()
        c["queue_depth"] = runner.queue_depth
        c["queue_dropped"] = self.queue.dropped_by_stream.get(runner.driver.stream_id, 0)
        c["state"] = runner.state
        # Late joiners miss state events; the heartbeat repeats what matters.
        if self.sink is not None:
            c["recorder"] = "ok" if self.sink.healthy else f"error: {self.sink.error}"
            c["recording"] = self._recording_info()
        if runner is self.runner and self.pipeline is not None:
            # The live view draws it on the trace (docs/view.md).
            thr = getattr(self.pipeline, "threshold_nT", None)
            if isinstance(thr, int | float) and math.isfinite(thr):
                c["threshold_nT"] = float(thr)
        if runner is self.runner and self.attacher is not None:
            rep = self.attacher.report()
            c["clock_offset_ns"] = rep.offset_ns
            c["clock_jitter_ns"] = rep.jitter_ns
            c["gnss_fixes"] = rep.fixes
            c["held_blocks"] = len(self._held)
        return c

    def _recording_info(self) -> dict[str, Any]:
        """The archive as the operator sees it: file, size, last flush, integrity."""
        sink = self.sink
        assert sink is not None  # only called while recording
        if sink.n_flushes != self._flushes_seen:
            # The sink flushes on its own timer too; note when a new flush shows.
            self._flushes_seen, self._last_flush_wall = sink.n_flushes, wall_ns()
        try:
            size = sink.path.stat().st_size
        except OSError:
            size = None
        age = (None if self._last_flush_wall is None
               else round((wall_ns() - self._last_flush_wall) / 1e9, 1))
        integrity = (f"SHA-256 chained, {sink.n_flushes} flushes" if sink.healthy
                     else f"error: {sink.error}")
        if sink.dropped_samples:
            integrity += f", {sink.dropped_samples} samples dropped"
        return {"file": str(sink.path), "bytes": size, "flushes": sink.n_flushes,
                "last_flush_age_s": age, "integrity": integrity}

    def _all_counters(self) -> dict[str, dict[str, Any]]:
        return {r.driver.stream_id: self._counters(r) for r in self.runners}

    def _housekeeping(self) -> None:
        if self.attacher is not None:
            self._release_held(force=False)
        if self.publisher is not None:
            if self.queue.empty():
                # Idle: work off pending subscriptions (a flood waits in
                # ZeroMQ's memory until handled; docs/wire.md) until data come,
                # for at most 20 ms so heartbeats and flush checks go on.
                self.publisher.poll(0, budget=1 << 20, time_budget_s=0.02,
                                    yield_to=self._data_waiting)
            else:
                self.publisher.poll()  # data waiting: a bounded slice only
            self.publisher.maybe_heartbeat(self._all_counters())
        if self.sink is not None:
            self._maybe_start_sink()
            if self.sink.started:
                self.sink.maybe_flush()
                self._check_sink()

    def _shutdown(self) -> None:
        for r in self.runners:
            r.stop()
        # Everything the runners produced before they stopped is still processed.
        while True:
            try:
                self._handle(self.queue.get_nowait())
            except queue.Empty:
                break
        if self.attacher is not None:
            self._release_held(force=True)
        if self.pipeline is not None:
            for ev in self.pipeline.finish():
                self._emit(ev)
        self.summary.counters = self._counters(self.runner)
        if self.sink is not None:
            self._maybe_start_sink(force=True)
            self.sink.close()
            self._check_sink()
            self.summary.record_files = [str(p) for p in self.sink.files]
        if self.publisher is not None:
            self.publisher.maybe_heartbeat(self._all_counters(), force=True)
            self.publisher.session_stop(samples=self.summary.samples,
                                        blocks=self.summary.blocks,
                                        targets=len(self.summary.targets))
            self.publisher.close()


def default_record_path(directory: str | Path, session: str) -> Path:
    return Path(directory) / f"uxo-{session}.h5"
