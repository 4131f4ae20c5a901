"""Rotation by size and by time: files linked by session and sequence, read together."""

from __future__ import annotations

import h5py
from rec_helpers import descriptor, indexed_block

from acquisition.cli import main
from recorder import layout as L
from recorder.integrity import verify_files
from recorder.reader import open_recording, open_session, session_files
from recorder.sink import RecorderSink


def test_rotation_by_size_links_files_and_reads_back_whole(tmp_path, capsys):
    desc = descriptor(nch=8)
    path = tmp_path / "big.h5"
    blocks = [indexed_block(desc, i, i * 1000, 1000) for i in range(30)]
    with RecorderSink(path, session="rot", rotate_bytes=400_000) as sink:
        sink.add_stream(desc)
        sink.start()
        for i, b in enumerate(blocks):
            sink.write_block(b)
            sink.write_event("state", "grad0", {"i": i}, i)
            if i % 3 == 2:
                sink.flush()
    files = sink.files
    assert len(files) >= 4
    assert files[1].name == "big.0001.h5"
    for k, p in enumerate(files):
        with h5py.File(p, "r") as f:
            assert f.attrs[L.ATTR_SESSION] == "rot"
            assert f.attrs[L.ATTR_FILE_SEQ] == k
            assert f.attrs[L.ATTR_PREV_FILE] == ("" if k == 0 else files[k - 1].name)
            st = f[L.DS_STATUS][0]
            last = k == len(files) - 1
            assert st["state"] == (L.STATE_CLOSED if last else L.STATE_ROTATED)
            if not last:
                assert st["next_file"].decode() == files[k + 1].name
    assert session_files(files[2]) == files
    with open_session(files[1]) as rec:
        s = rec.streams["grad0"]
        assert list(s.iter_blocks()) == blocks
        assert list(s.iter_blocks(start=17)) == blocks[17:]
        assert s.n_rows == 30_000 and len(s.gaps) == 0
        assert [e["payload"]["i"] for e in rec.events] == list(range(30))
    with open_recording(list(reversed(files))) as rec:
        assert rec.file_seqs == list(range(len(files)))
    rep = verify_files(files)
    assert rep.ok, rep.to_dict()
    assert main(["verify", str(tmp_path)]) == 0
    capsys.readouterr()


def test_missing_middle_file_is_a_problem_and_breaks_the_chain(tmp_path):
    desc = descriptor(nch=8)
    with RecorderSink(tmp_path / "r.h5", session="rot", rotate_bytes=300_000) as sink:
        sink.add_stream(desc)
        for i in range(20):
            sink.write_block(indexed_block(desc, i, i * 1000, 1000))
            sink.flush()
    files = sink.files
    assert len(files) >= 3
    files[1].unlink()
    with open_recording(tmp_path) as rec:
        assert rec.problems == ["files 1..1 of the session are missing"]
    rep = verify_files([files[0], *files[2:]])
    assert any("does not continue" in p for p in rep.problems)


def test_rotation_by_time_uses_the_sink_clock(tmp_path):
    now = [0]
    desc = descriptor(nch=1)
    with RecorderSink(tmp_path / "t.h5", session="t", rotate_s=10.0, flush_interval_s=1.0,
                      clock=lambda: now[0]) as sink:
        sink.add_stream(desc)
        for i in range(25):
            now[0] = i * 1_000_000_000
            sink.write_block(indexed_block(desc, i, i * 10, 10))
    assert len(sink.files) == 3
    with open_recording(tmp_path) as rec:
        assert rec.streams["grad0"].n_blocks == 25
