"""Crafted HDF5 recordings: refused with one line, never read through, never a traceback.

Each file is a real recording (written by `RecorderSink`) altered with h5py the
way an attacker or a broken tool would: data stored in /etc/passwd, links and
virtual datasets into other files, a descriptor nested 200 000 deep, a 2^40-row
table, a block claiming 2^46 rows. ``uxo process``, ``export``, ``inspect`` and
``verify`` must each refuse it (exit non-zero, one line naming the object).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rec_helpers import descriptor, indexed_block

from acquisition.cli import main
from recorder import layout as L
from recorder.integrity import verify
from recorder.reader import RecordingError, open_recording
from recorder.sink import RecorderSink

GROUP = f"{L.STREAMS_GROUP}/{L.group_name('grad0')}"


def _record(path: Path, blocks: int = 20) -> Path:
    desc = descriptor()
    now = [0]
    sink = RecorderSink(path, session="s1", provenance={"operator": "t"},
                        flush_interval_s=0.1, clock=lambda: now[0])
    sink.add_stream(desc)
    sink.start()
    for i in range(blocks):
        sink.write_block(indexed_block(desc, i, i * 50, 50))
        now[0] += 10**8
    sink.close()
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return _record(tmp_path_factory.mktemp("rec") / "good.h5")


def _external(f: h5py.File, good: Path) -> None:
    g = f[GROUP]
    shape = g[L.DS_DATA].shape
    del g[L.DS_DATA]
    g.create_dataset(L.DS_DATA, shape=shape, dtype="<f8",
                     external=[("/etc/passwd", 0, h5py.h5f.UNLIMITED)])


def _extlink(f: h5py.File, good: Path) -> None:
    g = f[GROUP]
    del g[L.DS_POSITIONS]
    g[L.DS_POSITIONS] = h5py.ExternalLink(str(good), f"{GROUP}/{L.DS_POSITIONS}")


def _virtual(f: h5py.File, good: Path) -> None:
    g = f[GROUP]
    shape = g[L.DS_DATA].shape
    del g[L.DS_DATA]
    lay = h5py.VirtualLayout(shape=shape, dtype="<f8")
    lay[:] = h5py.VirtualSource(str(good), f"{GROUP}/{L.DS_DATA}", shape=shape)
    g.create_virtual_dataset(L.DS_DATA, lay)


def _nested(f: h5py.File, good: Path) -> None:
    f[GROUP].attrs[L.ATTR_DESCRIPTOR] = "[" * 200_000 + "]" * 200_000


def _huge(f: h5py.File, good: Path) -> None:
    g = f[GROUP]
    chain = g[L.DS_CHAIN][()]
    del g[L.DS_CHAIN]
    ds = g.create_dataset(L.DS_CHAIN, shape=(2**40,), maxshape=(None,), dtype=chain.dtype,
                          chunks=(256,))
    ds[:len(chain)] = chain


def _bad_blocks(f: h5py.File, good: Path) -> None:
    b = f[GROUP][L.DS_BLOCKS]
    row = b[0]
    row["n"] = 2**46
    b[0] = row


CRAFTS = {
    "external": (_external, "external file (/etc/passwd"),
    "extlink": (_extlink, "external link"),
    "virtual": (_virtual, "virtual dataset"),
    "nested": (_nested, "nested too deeply"),
    "huge": (_huge, "declares shape (1099511627776,)"),
    "bad_blocks": (_bad_blocks, "a block claims more rows"),
}


def _craft(good: Path, tmp: Path, name: str) -> Path:
    path = tmp / f"{name}.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        CRAFTS[name][0](f, good)
    return path


def test_the_untouched_recording_is_read_and_exported(good, tmp_path, capsys) -> None:
    with open_recording(good) as rec:
        assert rec.streams["grad0"].n_rows == 1000
    out = tmp_path / "o.csv"
    assert main(["export", str(good), "--csv", str(out), "--channel", "ch0"]) == 0
    assert len([ln for ln in out.read_text().splitlines() if not ln.startswith("#")]) == 1001


@pytest.mark.parametrize("name", sorted(CRAFTS))
def test_library_refuses_crafted_file(good, tmp_path, name) -> None:
    path = _craft(good, tmp_path, name)
    with pytest.raises(RecordingError) as got, open_recording(path) as rec:
        for s in rec.streams.values():
            s.times_ns()
    assert CRAFTS[name][1] in str(got.value)


@pytest.mark.parametrize("name", sorted(CRAFTS))
@pytest.mark.parametrize("command", ["process", "export", "inspect"])
def test_cli_refuses_crafted_file_in_one_line(good, tmp_path, capsys, name, command) -> None:
    path = _craft(good, tmp_path, name)
    out = tmp_path / "out.csv"
    argv = {"process": ["process", str(path), "-o", str(out)],
            "export": ["export", str(path), "--csv", str(out), "--channel", "ch0"],
            "inspect": ["inspect", str(path)]}[command]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    assert not out.exists() or (command == "process" and out.stat().st_size == 0)
    assert b"root:" not in (out.read_bytes() if out.exists() else b"")
    if name in ("external", "extlink", "virtual", "nested", "huge"):
        # refused at open, before any data were used
        assert len(err.strip().splitlines()) == 1 and CRAFTS[name][1] in err


@pytest.mark.parametrize("name", ["external", "extlink", "virtual", "huge"])
def test_verify_reports_crafted_structure(good, tmp_path, capsys, name) -> None:
    path = _craft(good, tmp_path, name)
    rep = verify(path)
    assert not rep.ok and CRAFTS[name][1] in rep.problems[0]
    assert main(["verify", str(path)]) == 1
    assert "NOT INTACT" in capsys.readouterr().out


def test_changed_data_is_said_not_intact_before_use(good, tmp_path, capsys) -> None:
    path = tmp_path / "changed.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        f[GROUP][L.DS_DATA][5, 0] = 1e6
    out = tmp_path / "o.csv"
    assert main(["export", str(path), "--csv", str(out), "--channel", "ch0"]) == 1
    err = capsys.readouterr().err
    assert "NOT INTACT" in err and "(link) 0 changed" in err and not out.exists()
    assert main(["export", str(path), "--csv", str(out), "--channel", "ch0",
                 "--accept-damaged"]) == 0
    assert "# integrity: NOT INTACT" in out.read_text()
    capsys.readouterr()
    main(["process", str(path), "-o", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert "warning" in err and "NOT INTACT" in err


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(row=st.integers(0, 19), field=st.sampled_from(["n", "row_offset", "rate_hz"]),
       value=st.one_of(st.integers(-2**62, 2**62), st.floats()))
def test_fuzzed_block_table_is_read_or_refused(good, tmp_path_factory, row, field,
                                               value) -> None:
    path = tmp_path_factory.mktemp("fz") / "f.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        b = f[GROUP][L.DS_BLOCKS]
        r = b[row]
        try:
            r[field] = value
        except (OverflowError, ValueError):
            return
        b[row] = r
    try:
        with open_recording(path) as rec:
            s = rec.streams["grad0"]
            t = s.times_ns()
            assert t.size == s.n_rows == 1000
            assert np.asarray(s.sample_index).size == 1000
    except RecordingError as exc:
        assert "block" in str(exc)
