"""``uxo repair``: a recording whose writer was SIGKILLed opens in plain h5py afterwards,
truncated to its last chained link, with the original kept byte for byte."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rec_helpers import check_indexed

from acquisition.cli import main
from recorder import layout as L
from recorder.integrity import verify
from recorder.repair import RepairError, clear_status_flags, lookup3, repair

WRITER = Path(__file__).with_name("rec_helpers.py")


def _killed_recording(path: Path, at_least: int = 1500) -> int:
    """Run the writer process, SIGKILL it mid-write; the rows its last flush committed."""
    proc = subprocess.Popen([sys.executable, str(WRITER), str(path), "kill", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    flushed = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("F "):
                flushed = int(line.split()[1])
            if flushed >= at_least and line.startswith("W "):
                break  # mid-write: blocks after the last flush are in the sink's buffer
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    return flushed


@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("crash") / "killed.h5"
    return path, _killed_recording(path)


def test_killed_recording_opens_everywhere_after_repair(crashed, tmp_path, capsys) -> None:
    src, flushed = crashed
    path = tmp_path / "k.h5"
    path.write_bytes(src.read_bytes())
    before = path.read_bytes()
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")
    assert main(["repair", str(path)]) == 0
    out = capsys.readouterr().out
    assert "consistency flags cleared" in out and out.strip().endswith("intact")
    assert Path(str(path) + ".orig").read_bytes() == before
    with h5py.File(path, "r") as f:  # plain open, no SWMR
        g = f[f"{L.STREAMS_GROUP}/{L.group_name('grad0')}"]
        rows = int(g[L.DS_CHAIN][-1]["row_stop"])
        assert g[L.DS_DATA].shape[0] == rows == g[L.DS_POSITIONS].shape[0]
        assert rows >= flushed
        assert check_indexed(g[L.DS_DATA][()])
        assert g[L.DS_BLOCKS][-1]["row_offset"] + g[L.DS_BLOCKS][-1]["n"] == rows
        assert f.attrs["repair_dropped_rows"] >= 0
    rep = verify(path)
    assert rep.ok and all(c.uncommitted_rows == 0 for c in rep.chains)
    assert path.read_bytes()[11] == 0


def test_repair_keeps_an_earlier_copy_and_refuses_twice(crashed, tmp_path, capsys) -> None:
    src, _ = crashed
    path = tmp_path / "k.h5"
    path.write_bytes(src.read_bytes())
    assert main(["repair", str(path)]) == 0
    copy = Path(str(path) + ".orig").read_bytes()
    assert main(["repair", str(path)]) == 2
    assert "exists" in capsys.readouterr().err
    assert Path(str(path) + ".orig").read_bytes() == copy


def test_repair_refuses_a_file_a_live_writer_has_open(tmp_path, capsys) -> None:
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, str(WRITER), str(path), "swmr", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("F "):
                break
        assert main(["repair", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"open in process(es) {proc.pid}" in err
        assert not Path(str(path) + ".orig").exists()
    finally:
        proc.kill()
        proc.wait(10)


def test_lookup3_matches_the_reference_vectors() -> None:
    # Bob Jenkins' lookup3.c self-test values for hashlittle
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(0, 47), value=st.integers(0, 255))
def test_a_damaged_superblock_is_refused_not_written(crashed, tmp_path, offset, value) -> None:
    src, _ = crashed
    data = bytearray(src.read_bytes()[:4096])
    if data[offset] == value:
        return
    data[offset] = value
    path = tmp_path / "bad.h5"
    path.write_bytes(bytes(data))
    with pytest.raises(RepairError):
        clear_status_flags(path)
    assert path.read_bytes() == bytes(data)


def test_not_hdf5_is_refused_without_a_copy(tmp_path) -> None:
    path = tmp_path / "x.h5"
    path.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(RepairError, match="no HDF5 superblock"):
        repair(path)
    assert not Path(str(path) + ".orig").exists()
