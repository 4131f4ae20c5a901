"""A recording whose first block holds no rows reads back whole (iter_blocks used to
index a window it had not loaded yet: a TypeError; found by mypy)."""

from __future__ import annotations

import numpy as np
from rec_helpers import check_indexed, descriptor, indexed_block

from recorder.reader import open_recording
from recorder.sink import RecorderSink


def test_empty_first_block_reads_back(tmp_path):
    h5 = tmp_path / "r.h5"
    desc = descriptor(nch=1)
    sink = RecorderSink(h5, session="s1")
    sink.add_stream(desc)
    sink.start()
    sink.write_block(indexed_block(desc, 0, 0, 0))
    sink.write_block(indexed_block(desc, 1, 0, 20))
    sink.write_block(indexed_block(desc, 2, 20, 5))
    sink.close()
    st = open_recording(h5).streams["grad0"]
    assert st.blocks["n"].tolist() == [0, 20, 5]
    blocks = list(st.iter_blocks())
    assert [b.n for b in blocks] == [0, 20, 5]
    data = np.concatenate([b.data for b in blocks])
    assert data.shape == (25, 1)
    assert check_indexed(data)
    np.testing.assert_allclose(data[:, 0], np.arange(25.0) * 10)
