"""The SHA-256 chain: pure properties, and `uxo verify` catching changed raw data."""

from __future__ import annotations

import h5py
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from rec_helpers import descriptor, indexed_block

from acquisition.cli import main
from recorder.integrity import Chain, genesis, link_digest, verify
from recorder.sink import RecorderSink


@given(st.lists(st.binary(max_size=64), max_size=5), st.integers(0, 1000))
def test_link_digest_depends_on_every_byte_and_split(parts, index):
    prev = genesis("s", "x")
    d = link_digest(prev, index, parts)
    assert len(d) == 32
    assert link_digest(prev, index, parts) == d
    assert link_digest(prev, index + 1, parts) != d
    # Length prefixes: moving bytes between parts changes the digest.
    if parts and parts[0]:
        moved = [parts[0][:-1], parts[0][-1:] + b"".join(parts[1:2]), *parts[2:]]
        assert link_digest(prev, index, moved) != d


def test_chain_matches_links_and_arrays_hash_as_bytes():
    a = np.arange(12.0).reshape(6, 2)
    c = Chain(genesis("s", "x"))
    h1 = c.append([a, b""])
    assert h1 == link_digest(genesis("s", "x"), 0, [a.tobytes(), b""])
    h2 = c.append([a[:3]])
    assert h2 == link_digest(h1, 1, [a[:3].tobytes()]) and c.next_link == 2
    assert genesis("s", "x") != genesis("s", "y") != genesis("t", "y")


def _record(path, n_flushes=4):
    desc = descriptor()
    with RecorderSink(path, session="s") as sink:
        sink.add_stream(desc)
        sink.start()
        for k in range(n_flushes):
            for j in range(3):
                sink.write_block(indexed_block(desc, k * 3 + j, (k * 3 + j) * 100, 100))
            sink.write_event("state", "grad0", {"state": f"s{k}"}, k)
            sink.flush()
    return path


def test_untouched_file_verifies_and_cli_exits_0(tmp_path, capsys):
    path = _record(tmp_path / "ok.h5")
    rep = verify(path)
    assert rep.ok and rep.state == "closed"
    assert [(c.name, c.links, c.rows) for c in rep.chains] == [("grad0", 4, 1200),
                                                              ("events", 4, 4)]
    assert main(["verify", str(path)]) == 0
    assert "intact" in capsys.readouterr().out


def test_changed_raw_value_is_named_and_cli_exits_1(tmp_path, capsys):
    path = _record(tmp_path / "t.h5")
    with h5py.File(path, "r+") as f:
        f["streams/grad0/data"][450, 1] += 1e-9  # a tiny change in link 1 (rows 300..600)
    rep = verify(path)
    assert not rep.ok
    assert [(c.chain, c.link, c.rows) for c in rep.changed] == [("grad0", 1, (300, 600))]
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "CHANGED grad0: chunk (link) 1 changed: data rows 300..600" in out
    assert "NOT INTACT" in out


def test_changed_positions_times_and_events_are_caught(tmp_path):
    path = _record(tmp_path / "t2.h5")
    with h5py.File(path, "r+") as f:
        f["streams/grad0/positions"][10, 0] = 99.0
        b = f["streams/grad0/blocks"][11]
        b["t0_ns"] += 1
        f["streams/grad0/blocks"][11] = b
        js = f["events/json"]
        js[5] = js[5] ^ 1
    changed = {(c.chain, c.link) for c in verify(path).changed}
    assert changed == {("grad0", 0), ("grad0", 3), ("events", 0)}


def test_truncated_or_foreign_files(tmp_path, capsys):
    path = _record(tmp_path / "x.h5")
    with h5py.File(path, "r+") as f:
        f["streams/grad0/chain"].resize((2,))  # a link removed: rows beyond are unchained
    rep = verify(path)
    assert rep.ok and rep.chains[0].uncommitted_rows == 600
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n" + bytes(100))
    assert main(["verify", str(garbage)]) == 2
    other = tmp_path / "other.h5"
    with h5py.File(other, "w", libver="latest") as f:
        f["x"] = 1
    assert main(["verify", str(other)]) == 1
    assert "not a uxo recording" in capsys.readouterr().out
