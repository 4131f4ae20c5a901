"""Write -> read round trips of real HDF5 files: blocks, tables, events, provenance."""

from __future__ import annotations

import itertools

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rec_helpers import T0, descriptor, indexed_block

from acquisition.events import Anomaly, Target
from acquisition.types import BlockFlags, SampleBlock
from recorder import layout as L
from recorder.integrity import verify
from recorder.reader import open_recording
from recorder.sink import RecorderError, RecorderSink


def _blocks(desc, spec):
    """Blocks from (n, skip) pairs: skip > 0 leaves a gap flagged GAP."""
    out, idx = [], 0
    for seq, (n, skip) in enumerate(spec):
        idx += skip
        out.append(indexed_block(desc, seq, idx, n, BlockFlags.GAP if skip else BlockFlags.NONE))
        idx += n
    return out


def test_round_trip_is_exact(tmp_path):
    desc = descriptor()
    blocks = _blocks(desc, [(100, 0), (37, 0), (1, 5), (250, 0), (64, 1000), (3, 0)])
    # One block without positions and one carrying every flag bit.
    blocks[2] = SampleBlock(**{**{f: getattr(blocks[2], f) for f in SampleBlock.__slots__},
                               "positions": None})
    blocks[4] = SampleBlock(**{**{f: getattr(blocks[4], f) for f in SampleBlock.__slots__},
                               "flags": BlockFlags(63)})
    anomaly = Anomaly("grad0", 1, 0, 120, T0 + 5, 1.5, 2.5, -12.0, -1)
    target = Target("grad0", 1, 1.4, 2.6, 1.8, (0.1, 0.2, -0.9), 0.93, lanes=(0, 1))
    prov = {"operator": "Nguyen Van A", "site": "Cam Lo block 7", "calibration": {"k": [1, 2]},
            "field_total_nT": 43600.0}
    path = tmp_path / "rt.h5"
    with RecorderSink(path, session="sess-1", provenance=prov) as sink:
        sink.add_stream(desc, provenance={"port": "/dev/ttyUSB0"})
        sink.start()
        for b in blocks:
            sink.write_block(b)
        sink.write_event("anomaly", "grad0", anomaly.to_dict(), anomaly.t_ns)
        sink.write_event("target", "grad0", target.to_dict(), T0 + 9)
        sink.write_event("state", "grad0", {"state": "stalled", "reason": "no data"}, T0 + 10)
    assert sink.files == [path]

    with open_recording(path) as rec:
        assert rec.session == "sess-1"
        for k, v in prov.items():
            assert rec.attrs[k] == v
        assert rec.attrs["software_version"].startswith("uxo-acquisition")
        assert rec.closed_cleanly
        s = rec.streams["grad0"]
        assert s.descriptor == desc
        assert s.provenance == {"port": "/dev/ttyUSB0"}
        got = list(s.iter_blocks())
        assert got == blocks
        assert got[2].positions is None and got[0].device_time_ns is None
        assert np.array_equal(s.data, np.concatenate([b.data for b in blocks]))
        pos = s.positions
        assert np.isnan(pos[137:138]).all()
        assert np.array_equal(pos[:137], np.concatenate([b.positions for b in blocks[:2]]))
        assert s.blocks["seq"].tolist() == list(range(6))
        assert s.blocks["row_offset"].tolist() == [0, 100, 137, 138, 388, 452]
        assert s.gaps.tolist() == [(137, 5, blocks[1].time_of_index_ns(137)),
                                   (393, 1000, blocks[3].time_of_index_ns(393))]
        assert np.array_equal(s.sample_index,
                              np.concatenate([np.arange(b.first_index, b.next_index)
                                              for b in blocks]))
        assert np.array_equal(s.times_ns(), np.concatenate([b.times_ns() for b in blocks]))
        ev = rec.events
        assert [e["kind"] for e in ev] == ["anomaly", "target", "state"]
        assert repr(Anomaly.from_dict(ev[0]["payload"])) == repr(anomaly)  # NaN != NaN
        assert repr(Target.from_dict(ev[1]["payload"])) == repr(target)
        assert ev[2] == {"kind": "state", "stream": "grad0", "t_ns": T0 + 10,
                         "payload": {"state": "stalled", "reason": "no data"}}
    assert verify(path).ok


def test_file_layout_is_what_docs_say(tmp_path):
    desc = descriptor(nch=8, pos_dims=3)
    path = tmp_path / "layout.h5"
    with RecorderSink(path, session="s") as sink:
        sink.add_stream(desc)
        sink.write_block(indexed_block(desc, 0, 0, 10))
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "uxo-recording"
        assert f.attrs["layout_version"] == L.LAYOUT_VERSION
        g = f["streams/grad0"]
        assert g["data"].shape == (10, 8) and g["data"].dtype == np.dtype("<f8")
        assert g["positions"].shape == (10, 3)
        assert g["blocks"].dtype == L.BLOCK_DTYPE
        assert g["gaps"].dtype == L.GAP_DTYPE
        assert g["chain"].shape == (1,)
        assert g["data"].chunks[0] >= L.MIN_CHUNK_ROWS
        assert f["status"][0]["state"] == L.STATE_CLOSED
        assert set(f["events"]) == {"table", "json", "chain"}


def test_stream_ids_with_slashes_and_several_streams(tmp_path):
    a, b = descriptor("cart/left", nch=1), descriptor("gnss", nch=3, pos_dims=0)
    path = tmp_path / "two.h5"
    with RecorderSink(path, session="s") as sink:
        sink.add_stream(a)
        sink.add_stream(b)
        sink.start()
        ba = [indexed_block(a, i, i * 20, 20) for i in range(3)]
        bb = [indexed_block(b, i, i * 7, 7) for i in range(4)]
        for x in ba + bb:
            sink.write_block(x)
    with open_recording(path) as rec:
        assert sorted(rec.streams) == ["cart/left", "gnss"]
        assert list(rec.streams["cart/left"].iter_blocks()) == ba
        assert list(rec.streams["gnss"].iter_blocks()) == bb
        assert rec.streams["gnss"].positions is None


def test_misuse_raises_recorder_error(tmp_path):
    desc = descriptor()
    sink = RecorderSink(tmp_path / "m.h5", session="s")
    sink.add_stream(desc)
    with pytest.raises(RecorderError, match="unknown stream"):
        sink.write_block(indexed_block(descriptor("other"), 0, 0, 5))
    with pytest.raises(RecorderError, match="channels"):
        sink.write_block(indexed_block(descriptor(nch=3), 0, 0, 5))
    with pytest.raises(RecorderError, match="another descriptor"):
        sink.add_stream(descriptor(nch=3))
    sink.close()
    with pytest.raises(RecorderError, match="closed"):
        sink.write_block(indexed_block(desc, 0, 0, 5))


def test_refuses_to_overwrite_an_existing_recording(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"precious")
    sink = RecorderSink(path, session="s")
    sink.add_stream(descriptor())
    sink.start()
    assert not sink.healthy and "refusing to overwrite" in sink.error
    sink.close()
    assert path.read_bytes() == b"precious"


def test_stream_added_after_start_rotates_to_a_file_with_all_streams(tmp_path):
    a, b = descriptor("a"), descriptor("b", nch=1)
    path = tmp_path / "late.h5"
    with RecorderSink(path, session="s") as sink:
        sink.add_stream(a)
        sink.start()
        first = [indexed_block(a, i, i * 10, 10) for i in range(3)]
        for x in first:
            sink.write_block(x)
        sink.add_stream(b)
        later = [indexed_block(a, 3 + i, 30 + i * 10, 10) for i in range(2)]
        bb = [indexed_block(b, 0, 0, 4)]
        for x in later + bb:
            sink.write_block(x)
    assert len(sink.files) == 2
    with h5py.File(sink.files[1], "r") as f:
        assert set(f["streams"]) == {"a", "b"}
    with open_recording(tmp_path) as rec:
        assert list(rec.streams["a"].iter_blocks()) == first + later
        assert list(rec.streams["b"].iter_blocks()) == bb
        assert len(rec.streams["a"].gaps) == 0


def test_directory_path_names_file_after_session(tmp_path):
    with RecorderSink(tmp_path, session="abc") as sink:
        sink.add_stream(descriptor())
        sink.write_block(indexed_block(descriptor(), 0, 0, 3))
    assert sink.files == [tmp_path / "abc.h5"]


block_spec = st.lists(st.tuples(st.integers(1, 300), st.integers(0, 3),
                                st.integers(0, 2), st.booleans()), min_size=1, max_size=25)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=block_spec, flush_every=st.integers(1, 6), nch=st.integers(1, 4))
def test_reader_returns_any_block_sequence_exactly(tmp_path_factory, spec, flush_every, nch):
    desc = descriptor(nch=nch, pos_dims=2)
    blocks, idx = [], 0
    for seq, (n, skip, back, has_pos) in enumerate(spec):
        idx += skip * 17 - (back if seq else 0)
        idx = max(idx, 0)
        b = indexed_block(desc, seq, idx, n, BlockFlags.GAP if skip else BlockFlags.NONE)
        if not has_pos:
            b = SampleBlock(b.stream_id, b.seq, b.first_index, b.t0_ns, b.rate_hz, b.data, None,
                            b.host_mono_ns, b.host_wall_ns, b.device_time_ns, b.flags)
        blocks.append(b)
        idx += n
    path = tmp_path_factory.mktemp("hyp") / "h.h5"
    with RecorderSink(path, session="h") as sink:
        sink.add_stream(desc)
        sink.start()
        for i, b in enumerate(blocks):
            sink.write_block(b)
            if i % flush_every == 0:
                sink.flush()
    with open_recording(path) as rec:
        s = rec.streams["grad0"]
        assert list(s.iter_blocks()) == blocks
        assert list(s.iter_blocks(start=len(blocks) // 2)) == blocks[len(blocks) // 2:]
        assert np.array_equal(s.times_ns(), np.concatenate([b.times_ns() for b in blocks]))
        # The gap table lists every jump of first_index (and every GAP flag).
        expected = [(p.next_index, b.first_index - p.next_index)
                    for p, b in itertools.pairwise(blocks)
                    if b.first_index != p.next_index or b.flags & BlockFlags.GAP]
        if blocks[0].flags & BlockFlags.GAP:  # missing count unknown before the first block
            expected.insert(0, (blocks[0].first_index, 0))
        assert [(int(g[0]), int(g[1])) for g in s.gaps] == expected
    assert verify(path).ok
