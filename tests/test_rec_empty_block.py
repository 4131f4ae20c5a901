"""Blocks with no rows are recorded and read back whole: iter_blocks used to index a
window it had not loaded yet when the first block was empty (a TypeError, found by
mypy), and a flush of empty blocks only failed hashing them (a TypeError on close)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rec_helpers import check_indexed, descriptor, indexed_block

from recorder.integrity import verify_files
from recorder.reader import open_recording
from recorder.sink import RecorderSink


def _record(h5, sizes: list[int]) -> None:
    desc = descriptor(nch=1)
    sink = RecorderSink(h5, session="s1")
    sink.add_stream(desc)
    sink.start()
    first = 0
    for seq, n in enumerate(sizes):
        sink.write_block(indexed_block(desc, seq, first, n))
        first += n
    sink.close()


def test_empty_first_block_reads_back(tmp_path):
    h5 = tmp_path / "r.h5"
    _record(h5, [0, 20, 5])
    stream = open_recording(h5).streams["grad0"]
    assert stream.blocks["n"].tolist() == [0, 20, 5]
    blocks = list(stream.iter_blocks())
    assert [b.n for b in blocks] == [0, 20, 5]
    data = np.concatenate([b.data for b in blocks])
    assert data.shape == (25, 1)
    assert check_indexed(data)
    np.testing.assert_allclose(data[:, 0], np.arange(25.0) * 10)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=8))
def test_any_block_sizes_read_back_whole(tmp_path, sizes):
    h5 = tmp_path / "r.h5"
    h5.unlink(missing_ok=True)
    _record(h5, sizes)
    # small windows make the reader reload them between blocks
    blocks = list(open_recording(h5).streams["grad0"].iter_blocks(window_rows=16))
    assert [b.n for b in blocks] == sizes
    data = np.concatenate([b.data for b in blocks])
    np.testing.assert_allclose(data[:, 0], np.arange(float(sum(sizes))) * 10)
    # the hash chain, empty blocks included, checks out when read back
    rep = verify_files([h5])
    assert rep.ok, rep.problems
