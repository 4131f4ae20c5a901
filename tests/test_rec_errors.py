"""Unwritable paths and a full disk: a clear error, no exception, and recovery."""

from __future__ import annotations

import shutil

from rec_helpers import descriptor, indexed_block

from recorder.integrity import verify
from recorder.reader import open_recording
from recorder.sink import RecorderSink


class FakeClock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def test_unwritable_path_gives_a_clear_error_and_never_raises(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    seen: list[str] = []
    clock = FakeClock()
    sink = RecorderSink(blocker / "rec.h5", session="s", on_error=seen.append, clock=clock,
                        retry_s=10.0)
    desc = descriptor()
    sink.add_stream(desc)
    sink.start()
    assert not sink.healthy
    assert "cannot create recording" in sink.error and "not-a-dir" in sink.error
    assert seen == [sink.error]
    # Acquisition goes on: blocks and events are accepted and kept in memory.
    blocks = [indexed_block(desc, i, i * 10, 10) for i in range(5)]
    for b in blocks:
        clock.ns += 300_000_000
        sink.write_block(b)
    sink.write_event("state", "grad0", {"state": "connected"}, 1)
    assert sink.files == [] and not sink.healthy
    # The path becomes writable: the next retry records everything buffered.
    blocker.unlink()
    blocker.mkdir()
    clock.ns += 20_000_000_000
    sink.maybe_flush()
    assert sink.healthy, sink.error
    sink.close()
    assert len(sink.files) == 1
    with open_recording(sink.files[0]) as rec:
        assert list(rec.streams["grad0"].iter_blocks()) == blocks
        kinds = [(e["kind"], e["payload"].get("state")) for e in rec.events]
        assert ("state", "recorder_recovered") in kinds and ("state", "connected") in kinds
    assert verify(sink.files[0]).ok


def test_disk_full_margin_stops_writing_and_recovers(tmp_path):
    clock = FakeClock()
    free = shutil.disk_usage(tmp_path).free
    desc = descriptor()
    sink = RecorderSink(tmp_path / "d.h5", session="s", clock=clock, retry_s=0.0,
                        flush_interval_s=1.0)
    sink.add_stream(desc)
    sink.start()
    first = [indexed_block(desc, i, i * 10, 10) for i in range(3)]
    for b in first:
        sink.write_block(b)
    assert sink.flush()
    # The disk "fills up": less than the margin is free.
    sink.min_free_bytes = free + (1 << 40)
    later = [indexed_block(desc, 3 + i, 30 + i * 10, 10) for i in range(3)]
    for b in later:
        clock.ns += 1_000_000_000
        sink.write_block(b)
    assert not sink.healthy and sink.error.startswith("disk full")
    sink.min_free_bytes = 0
    clock.ns += 1_000_000_000
    sink.maybe_flush()
    assert sink.healthy
    sink.close()
    assert len(sink.files) == 2
    with open_recording(tmp_path / "d.h5") as rec:
        assert list(rec.streams["grad0"].iter_blocks()) == first
    with open_recording(tmp_path) as rec:
        assert list(rec.streams["grad0"].iter_blocks()) == first + later
        assert len(rec.streams["grad0"].gaps) == 0


def test_full_buffer_drops_oldest_and_the_gap_is_recorded(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    clock = FakeClock()
    desc = descriptor(nch=1, pos_dims=0)
    sink = RecorderSink(blocker / "r.h5", session="s", clock=clock, retry_s=0.0,
                        max_buffer_bytes=10 * 80)  # ten blocks of 10 samples
    sink.add_stream(desc)
    sink.start()
    blocks = [indexed_block(desc, i, i * 10, 10) for i in range(15)]
    for b in blocks:
        clock.ns += 100_000_000
        sink.write_block(b)
    assert sink.dropped_blocks == 5 and sink.dropped_samples == 50
    blocker.unlink()
    clock.ns += 2_000_000_000
    sink.close()
    with open_recording(sink.files[0]) as rec:
        s = rec.streams["grad0"]
        assert list(s.iter_blocks()) == blocks[5:]
        # No block had been committed: the loss before the first block is unknown
        # to the file, so only later jumps appear; first_index shows where it starts.
        assert s.blocks["first_index"][0] == 50
