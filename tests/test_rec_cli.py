"""`uxo export`, `uxo inspect` and `uxo record` on real files and real sockets."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
from rec_helpers import descriptor, indexed_block

from acquisition.cli import main
from acquisition.events import Target
from recorder.reader import open_recording
from recorder.sink import RecorderSink


def _parse_survey(text: str) -> tuple[dict[str, str], list[str], np.ndarray]:
    lines = text.splitlines()
    assert lines[0] == "# uxo-survey v1"
    meta, i = {}, 1
    while lines[i].startswith("#"):
        k, v = lines[i][1:].split(":", 1)
        meta[k.strip()] = v.strip()
        i += 1
    header = lines[i].split(",")
    rows = np.array([[float(x) for x in ln.split(",")] for ln in lines[i + 1:]])
    return meta, header, rows


def test_export_writes_a_survey_csv_that_parses_back(tmp_path, capsys):
    desc = descriptor(nch=1, rate=10.0)
    blocks = [indexed_block(desc, i, i * 20, 20) for i in range(4)]
    blocks[2].positions[3] = np.nan  # a row without a fix is skipped
    path = tmp_path / "s.h5"
    with RecorderSink(path, session="exp", provenance={"field_total_nT": 43600.0,
                                                       "field_inclination_deg": 23.2}) as sink:
        sink.add_stream(desc)
        for b in blocks:
            sink.write_block(b)
    out = tmp_path / "s.csv"
    assert main(["export", str(path), "--csv", str(out)]) == 0
    assert "exported 79 rows" in capsys.readouterr().err
    meta, header, rows = _parse_survey(out.read_text())
    assert header == ["t", "x", "y", "value"]
    assert meta["kind"] == "gradient" and float(meta["sensor_height_m"]) == 0.3
    assert float(meta["field_total_nT"]) == 43600.0 and meta["session"] == "exp"
    keep = np.ones(80, bool)
    keep[43] = False
    idx = np.arange(80)[keep]
    assert np.array_equal(rows[:, 3], idx * 10.0)  # value = index * 10 (exact)
    assert np.array_equal(rows[:, 1], idx * 0.01) and np.array_equal(rows[:, 2], idx * 0.02)
    assert np.allclose(rows[:, 0], idx / 10.0, atol=1e-9)
    assert int(meta["t0_ns"]) == blocks[0].t0_ns
    # Stdout, channel choice, and a clear refusal when the choice is ambiguous.
    assert main(["export", str(path), "--csv", "-", "--channel", "ch0"]) == 0
    assert capsys.readouterr().out.startswith("# uxo-survey v1\n")
    two = tmp_path / "two.h5"
    with RecorderSink(two, session="t") as sink:
        sink.add_stream(descriptor(nch=2))
        sink.write_block(indexed_block(descriptor(nch=2), 0, 0, 5))
    assert main(["export", str(two), "--csv", "-"]) == 2
    assert "--channel" in capsys.readouterr().err


def test_inspect_summarises_and_follows(tmp_path, capsys):
    desc = descriptor()
    path = tmp_path / "i.h5"
    with RecorderSink(path, session="insp", provenance={"operator": "Lan"}) as sink:
        sink.add_stream(desc)
        sink.write_block(indexed_block(desc, 0, 0, 100))
        sink.write_block(indexed_block(desc, 1, 130, 100))
        t = Target("grad0", 1, 1.0, 2.0, 1.5, (0.0, 0.0, -1.0), 0.9)
        sink.write_event("target", "grad0", t.to_dict(), 5)
    assert main(["inspect", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    g = s["streams"]["grad0"]
    assert (g["samples"], g["blocks"], g["gaps"], g["missing_samples"]) == (200, 2, 1, 30)
    assert abs(g["duration_s"] - 0.23) < 1e-9  # 230 samples at 1 kHz
    assert s["events"] == {"target": 1} and s["integrity"]["ok"]
    assert s["provenance"]["operator"] == "Lan" and s["status"]["state"] == "closed"
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "200 samples in 2 blocks" in text and "integrity: intact" in text
    assert main(["inspect", str(path), "--follow", "--max-updates", "3"]) == 0
    assert "[closed] grad0: 200 samples, 1 gaps" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "missing.h5")]) == 2


def test_record_subscribes_and_records_blocks_events_and_wire_gaps(tmp_path):
    from acquisition.publisher import Publisher

    desc = descriptor(rate=100.0)
    blocks = [indexed_block(desc, i, i * 10, 10) for i in range(40)]
    pub = Publisher("tcp://127.0.0.1:*", "remote-1")
    result = {}
    stop = threading.Event()

    def run():
        from recorder.subscriber_recorder import record

        result["s"] = record(pub.endpoint, tmp_path / "out", stop=stop, flush_interval_s=0.1,
                             provenance={"site": "Gio Linh"})

    pub.session_start(operator="Hoa")
    pub.add_stream(desc)
    th = threading.Thread(target=run)
    th.start()
    try:
        # Wait until the subscriber has joined (the publisher sees its subscriptions).
        deadline = time.monotonic() + 10
        while pub.subscriptions == 0 and time.monotonic() < deadline:
            pub.poll(50)
        for _ in range(10):
            pub.poll(20)
        for i, b in enumerate(blocks):
            if i == 20:
                # A message lost on the wire: its seq is spent but nothing is sent
                # (what nodrop mode does with a message refused by a full queue).
                pub._seq["block.grad0"] = pub.next_seq("block.grad0") + 1
                continue
            pub.publish_block(b)
            pub.poll(0)
        pub.publish_event(Target("grad0", 7, 1.0, 2.0, 1.5, (0.0, 0.0, -1.0), 0.9))
        pub.session_stop(samples=400)
        time.sleep(0.5)
    finally:
        stop.set()
        th.join(10)
        pub.close()
    s = result["s"]
    assert s.session == "remote-1" and s.blocks == 39 and s.wire_gaps == 1
    with open_recording(s.files[0]) as rec:
        assert rec.attrs["site"] == "Gio Linh"
        st = rec.streams["grad0"]
        assert list(st.iter_blocks()) == blocks[:20] + blocks[21:]
        assert st.gaps.tolist()[0][:2] == (200, 10)
        kinds = [e["kind"] for e in rec.events]
        assert "wire_gap" in kinds and "target" in kinds and "session_stop" in kinds
        gap = next(e for e in rec.events if e["kind"] == "wire_gap")
        assert gap["payload"]["missing"] == 1 and gap["stream"] == "grad0"
