"""The acquisition service: driver runner -> pipeline -> publisher, and -> recorder.

This is the only place that knows about threads, sockets and files together.
Data flow one way (DESIGN.md)::

    DriverRunner thread --queue--> service loop --> RecorderSink (lossless, same process)
                                                --> processing pipeline --> events
                                                --> Publisher (XPUB): descriptors,
                                                    decimated blocks, events, heartbeats

The loop runs in the caller's thread and owns the ZeroMQ socket (sockets are
not thread-safe). Ctrl-C (KeyboardInterrupt) or `stop()` ends it cleanly: the
runner is stopped and drained, the pipeline flushed, a session-stop event
published, and the HDF5 file closed valid.

A recorder failure (disk full, unwritable path) does not stop acquisition: a
``recorder_error`` state event tells the operator, data keep flowing to the
bus, and the sink keeps buffering and retrying on its own; when it recovers a
``recorder_recovered`` state event says so.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from acquisition import __version__
from acquisition.clock import mono_ns, wall_ns
from acquisition.drivers.base import Driver
from acquisition.events import Anomaly, StateChange, Target
from acquisition.geomag import QUANG_TRI, EarthField
from acquisition.runner import DriverRunner, RunnerItem
from acquisition.types import SampleBlock, StreamDescriptor

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
    if kind in ("gradient", "total") and desc.position_dims >= 2:
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
    block_decimation: int = 1
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
    """Wire one driver to processing, the bus and the archive."""

    def __init__(
        self,
        driver: Driver,
        config: ServiceConfig,
        *,
        on_event: Callable[[Anomaly | Target | StateChange], None] | None = None,
        runner_options: dict[str, Any] | None = None,
    ) -> None:
        self.driver = driver
        self.config = config
        self.on_event = on_event
        self.queue: queue.Queue[RunnerItem] = queue.Queue()
        self.runner = DriverRunner(driver, self.queue, stall_s=config.stall_s,
                                   **(runner_options or {}))
        self._stop = threading.Event()
        self.summary = ServiceSummary(session=config.session)
        self.descriptor: StreamDescriptor | None = None
        self.pipeline: Pipeline | None = None
        self.publisher = None
        self.sink = None
        self._sink_ok = True

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
                                       heartbeat_s=self.config.heartbeat_s)
            self.publisher.session_start(**self._session_info())

    def _session_info(self) -> dict[str, Any]:
        return {
            "software": f"uxo-acquisition {__version__}",
            "driver": self.driver.name,
            "port": self.driver.port_url,
            **self.config.earth_field.to_dict(),
            **self.config.provenance,
        }

    def _on_descriptor(self, desc: StreamDescriptor) -> None:
        if self.descriptor is not None:
            if desc != self.descriptor:
                log.warning("descriptor changed on reconnect; keeping the first one")
            return
        self.descriptor = desc
        if self.publisher is not None:
            self.publisher.add_stream(desc)
        if self.config.process:
            self.pipeline = make_pipeline(desc, self.config.earth_field,
                                          self.config.pipeline_config)
        if self.config.record:
            self._open_sink(desc)

    def _open_sink(self, desc: StreamDescriptor) -> None:
        from recorder.sink import RecorderSink

        provenance = {
            **self._session_info(),
            "driver_options": {k: str(v) for k, v in self.driver.options.items()},
            "pipeline_config": repr(self.config.pipeline_config),
        }
        # The sink never raises on I/O failure; it reports through `healthy`.
        self.sink = RecorderSink(self.config.record, session=self.config.session,
                                 provenance=provenance,
                                 flush_interval_s=self.config.flush_interval_s)
        self.sink.add_stream(desc)
        self.sink.start()
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
        """Run until `stop()`, Ctrl-C, idle/max runtime; always clean up."""
        self._open_outputs()
        self.runner.start()
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
            self._on_block(item.block)

    def _on_block(self, block: SampleBlock) -> None:
        self.summary.samples += block.n
        self.summary.blocks += 1
        if self.sink is not None:
            self.sink.write_block(block)
            self._check_sink()
        if self.publisher is not None:
            self.publisher.publish_block(block, decimation=self.config.block_decimation)
            self.summary.published += 1
        if self.pipeline is not None:
            for ev in self.pipeline.process(block):
                self._emit(ev)

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
        if self.sink is not None:
            self.sink.write_event(kind, ev.stream_id, ev.to_dict(),
                                  getattr(ev, "t_ns", 0) or wall_ns())
        if self.on_event is not None:
            self.on_event(ev)

    def _counters(self) -> dict[str, Any]:
        c = self.driver.counters.to_dict()
        c["queue_depth"] = self.runner.queue_depth
        c["state"] = self.runner.state
        # Late joiners miss state events; the heartbeat repeats what matters.
        if self.sink is not None:
            c["recorder"] = "ok" if self.sink.healthy else f"error: {self.sink.error}"
        return c

    def _housekeeping(self) -> None:
        if self.publisher is not None:
            self.publisher.poll()
            self.publisher.maybe_heartbeat({self.driver.stream_id: self._counters()})
        if self.sink is not None:
            self.sink.maybe_flush()
            self._check_sink()

    def _shutdown(self) -> None:
        self.runner.stop()
        # Everything the runner produced before it stopped is still processed.
        while True:
            try:
                self._handle(self.queue.get_nowait())
            except queue.Empty:
                break
        if self.pipeline is not None:
            for ev in self.pipeline.finish():
                self._emit(ev)
        self.summary.counters = self._counters()
        if self.sink is not None:
            self.sink.close()
            self._check_sink()
            self.summary.record_files = [str(p) for p in self.sink.files]
        if self.publisher is not None:
            self.publisher.maybe_heartbeat({self.driver.stream_id: self.summary.counters},
                                           force=True)
            self.publisher.session_stop(samples=self.summary.samples,
                                        blocks=self.summary.blocks,
                                        targets=len(self.summary.targets))
            self.publisher.close()


def default_record_path(directory: str | Path, session: str) -> Path:
    return Path(directory) / f"uxo-{session}.h5"
