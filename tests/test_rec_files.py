"""Recording files are created, never overwritten: planted symlinks are not followed,
an existing name is refused with one clear line (the library and ``uxo acquire``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rec_helpers import check_indexed, descriptor, indexed_block

from acquisition.cli import main
from recorder.reader import open_recording
from recorder.sink import RecorderError, RecorderSink, check_new_recording


def _record(path: Path, blocks: int = 4) -> RecorderSink:
    desc = descriptor()
    sink = RecorderSink(path, session="s", clock=lambda: 0)
    sink.add_stream(desc)
    sink.start()
    for i in range(blocks):
        sink.write_block(indexed_block(desc, i, i * 10, 10))
    sink.close()
    return sink


def test_symlink_planted_at_the_temporary_name_is_not_followed(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    rec = tmp_path / "rec.h5"
    # the name the writer used to build the file under, and its rotated sibling's
    os.symlink(victim, tmp_path / ".rec.h5.part")
    os.symlink(victim, tmp_path / ".rec.0001.h5.part")
    sink = _record(rec)
    assert sink.healthy, sink.error
    assert victim.read_bytes() == b"precious"
    assert not rec.is_symlink()
    with open_recording(rec) as r:
        assert r.streams["grad0"].n_rows == 40 and check_indexed(r.streams["grad0"].data)
    # nothing of ours is left behind (no private temporary directory)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".rec.0001.h5.part", ".rec.h5.part", "rec.h5", "victim.txt"]


@pytest.mark.parametrize("dangling", [True, False])
def test_symlink_at_the_final_name_is_refused_not_followed(tmp_path, dangling) -> None:
    target = tmp_path / "elsewhere.h5"
    if not dangling:
        target.write_bytes(b"precious")
    rec = tmp_path / "rec.h5"
    os.symlink(target, rec)
    with pytest.raises(RecorderError, match="exists \\(a symlink\\)"):
        check_new_recording(rec, "s")
    sink = _record(rec)
    # refused (the sink's retry then writes the session's next file name)
    assert any("refusing to overwrite" in e for e in sink.errors)
    assert rec.is_symlink()
    if dangling:
        assert not target.exists()
    else:
        assert target.read_bytes() == b"precious"


def test_acquire_record_onto_an_existing_file_is_refused_in_one_line(tmp_path, capsys) -> None:
    rec = tmp_path / "old.h5"
    rec.write_bytes(b"an earlier survey")
    rc = main(["acquire", "--driver", "sim", "--port", "sim://demo", "--record", str(rec),
               "--duration", "1"])
    cap = capsys.readouterr()
    assert rc == 2 and "Traceback" not in cap.err
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and str(rec) in lines[0] and "exists" in lines[0]
    assert rec.read_bytes() == b"an earlier survey"


def test_a_directory_gets_a_session_file_and_is_not_refused(tmp_path) -> None:
    assert check_new_recording(tmp_path, "abc") == tmp_path / "abc.h5"
    (tmp_path / "abc.h5").write_bytes(b"x")
    with pytest.raises(RecorderError, match=r"abc\.h5 exists"):
        check_new_recording(tmp_path, "abc")
