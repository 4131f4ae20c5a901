"""The driver runner: owns one driver's life, from open to unplug to reopen.

A device error must never kill acquisition silently (python-can's most
reported failure). The runner is an explicit state machine::

    connecting -> connected <-> stalled
         ^            |
         +-- reconnecting <-- (PortError / SerialException / OSError)
    any -> closed

Every transition is reported as a `StateChange` with a reason. Reconnects
retry every ``backoff_s`` doubling up to ``backoff_max_s`` (0.2 s: a device
that comes back is read again within a fraction of a second, and a failed open
costs microseconds) and reopen the same URL, so ``hwgrep://VID:PID`` finds a
device whose name changed; a ``fallback_urls`` list is tried in turn. When
every URL is a device file (``/dev/ttyUSB0``, a ``/dev/serial/by-id`` link),
the runner also watches the files (a ``stat`` every ``watch_s``, 0.05 s) and
reopens as soon as one reappears. Opening keeps the bytes already waiting
(`acquisition.drivers.transport.open_port`), so lines the device sent between
its return and the reopen are read, not flushed. The "connected" state after a
reconnect says how long the device was away. The first block after a reconnect
carries `BlockFlags.RECONNECT` and, if samples were lost, `BlockFlags.GAP`
(the driver knows from the device counter or the clock).

The runner runs in its own thread and hands items to the service through a
queue. Drop policy: none. The queue is unbounded so a slow consumer never
loses samples; its depth is reported (``queue_depth``) so a consumer that falls
behind is visible in the heartbeat.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import Literal

from acquisition.clock import mono_ns, wall_ns
from acquisition.drivers.base import Driver
from acquisition.drivers.transport import PortError, device_path
from acquisition.events import StateChange
from acquisition.types import SampleBlock, StreamDescriptor

log = logging.getLogger(__name__)

State = Literal["connecting", "connected", "stalled", "reconnecting", "closed"]


@dataclass(frozen=True, slots=True)
class RunnerItem:
    """One thing the runner hands the service: a descriptor, a block or a state change."""

    kind: Literal["descriptor", "block", "state"]
    descriptor: StreamDescriptor | None = None
    block: SampleBlock | None = None
    state: StateChange | None = None


class DriverRunner:
    """Run ``driver`` in a thread; put `RunnerItem`s on ``out``."""

    def __init__(
        self,
        driver: Driver,
        out: queue.Queue[RunnerItem] | None = None,
        *,
        read_timeout_s: float = 0.1,
        stall_s: float = 3.0,
        backoff_s: float = 0.2,
        backoff_max_s: float = 0.2,
        watch_s: float = 0.05,
        fallback_urls: tuple[str, ...] = (),
        max_reconnects: int | None = None,
    ) -> None:
        self.driver = driver
        self.out: queue.Queue[RunnerItem] = out if out is not None else queue.Queue()
        self.read_timeout_s = read_timeout_s
        self.stall_s = stall_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.watch_s = watch_s
        #: Seconds the device was away in the last outage (port lost to reopened).
        self.last_outage_s: float | None = None
        self._lost_at_ns: int | None = None
        self.urls = (driver.port_url, *fallback_urls)
        self.max_reconnects = max_reconnects
        self.state: State = "connecting"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # --- control -----------------------------------------------------------------
    def start(self) -> DriverRunner:
        self._thread = threading.Thread(
            target=self._run, name=f"runner-{self.driver.stream_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def ended(self) -> bool:
        """The runner has stopped for good (end of stream, gave up, or stopped)."""
        return self._thread is not None and not self._thread.is_alive()

    @property
    def queue_depth(self) -> int:
        return self.out.qsize()

    # --- machinery ---------------------------------------------------------------
    def _set_state(self, state: State, reason: str = "") -> None:
        if state == self.state and state != "connecting":
            return
        self.state = state
        if state == "stalled":
            self.driver.counters.stalls += 1
        log.info("%s: %s %s", self.driver.stream_id, state, reason)
        self.out.put(RunnerItem("state", state=StateChange(
            self.driver.stream_id, state, reason, wall_ns())))

    def _open(self) -> bool:
        """Try every URL once; True when one opened."""
        errors = []
        for url in self.urls:
            self.driver.port_url = url
            try:
                desc = self.driver.open()
            except PortError as exc:
                errors.append(str(exc))
                continue
            self.out.put(RunnerItem("descriptor", descriptor=desc))
            reason = f"opened {url}"
            if self._lost_at_ns is not None:
                self.last_outage_s = (mono_ns() - self._lost_at_ns) / 1e9
                self._lost_at_ns = None
                reason += f" after {self.last_outage_s:.2f} s away"
            self._set_state("connected", reason)
            return True
        self._last_open_error = "; ".join(errors)
        return False

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug, not a device fault: report it, never vanish
            self.error = exc
            log.exception("runner for %s failed", self.driver.stream_id)
            self._set_state("closed", f"internal error: {exc!r}")
            return
        finally:
            self.driver.close()
        if self.state != "closed":
            self._set_state("closed", "stopped")

    def _loop(self) -> None:
        self._set_state("connecting", f"opening {self.urls[0]}")
        delay = self.backoff_s
        attempts = 0
        while not self._stop.is_set():
            if not self._open():
                attempts += 1
                if self.max_reconnects is not None and attempts > self.max_reconnects:
                    self._set_state("closed", f"giving up after {attempts - 1} retries: "
                                              f"{self._last_open_error}")
                    return
                self._set_state("reconnecting", f"open failed: {self._last_open_error}")
                self._wait_to_retry(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            delay = self.backoff_s
            attempts = 0
            try:
                self._read_until_error()
            except PortError as exc:
                self._lost_at_ns = mono_ns()
                self._drain_driver()
                self.driver.close()
                self.driver.counters.reconnects += 1
                self._set_state("reconnecting", f"device lost: {exc}")
                self._wait_to_retry(delay)
                continue
            # Stopped on request or at the end of the stream: hand over what the
            # driver still holds.
            self._drain_driver()
            if self.driver.finished:
                self._set_state("closed", "end of stream")
            return

    def _wait_to_retry(self, delay: float) -> None:
        """Wait ``delay`` s before the next open, or less if a watched device file appears."""
        paths = [device_path(u) for u in self.urls]
        if not all(paths) or self.watch_s <= 0:
            self._stop.wait(delay)
            return
        deadline = mono_ns() + int(delay * 1e9)
        present = any(os.path.exists(p) for p in paths if p)
        while not self._stop.wait(min(self.watch_s, delay)):
            now_present = any(os.path.exists(p) for p in paths if p)
            if (now_present and not present) or mono_ns() >= deadline:
                return
            present = now_present

    def _read_until_error(self) -> None:
        last_data = mono_ns()
        stall_ns = int(self.stall_s * 1e9)
        while not self._stop.is_set():
            block = self.driver.read_block(self.read_timeout_s)
            now = mono_ns()
            if block is not None:
                last_data = now
                if self.state == "stalled":
                    self._set_state("connected", "data resumed")
                self.out.put(RunnerItem("block", block=block))
            elif self.driver.finished:
                return
            elif self.state == "connected" and now - last_data > stall_ns:
                self._set_state("stalled", f"no data for {self.stall_s:g} s")

    def _drain_driver(self) -> None:
        flush = getattr(self.driver, "flush", None)
        if flush is None:
            return
        while (block := flush()) is not None:
            self.out.put(RunnerItem("block", block=block))
