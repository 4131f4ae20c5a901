"""A bus closed to strangers: `uxo keys generate`, --bus-keys, refusing open binds.

Real key files, real CURVE handshakes on real sockets, `uxo acquire`,
`uxo tail` and `uxo record` as real subprocesses.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq.auth
from bus_helpers import free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition import buskeys
from acquisition.cli import main
from acquisition.publisher import Publisher
from acquisition.subscriber import Subscriber
from recorder.reader import open_recording


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_keys_generate_writes_zmq_certificates_with_private_secrets(tmp_path, capsys):
    d = tmp_path / "keys"
    assert main(["keys", "generate", str(d)]) == 0
    assert main(["keys", "generate", str(d), "--client", "laptop2"]) == 0
    names = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
    assert names == ["client.key", "client.key_secret", "clients/client.key",
                     "clients/laptop2.key", "laptop2.key", "laptop2.key_secret",
                     "server.key", "server.key_secret"]
    for p in d.rglob("*.key_secret"):
        assert _mode(p) == 0o600
    for p in d.rglob("*.key"):
        assert _mode(p) == 0o644
    assert _mode(d) == 0o700
    # The zmq.auth format: public halves agree, the allow-list holds both clients.
    spub, ssec = zmq.auth.load_certificate(d / "server.key_secret")
    assert zmq.auth.load_certificate(d / "server.key") == (spub, None)
    assert zmq.curve_public(ssec) == spub
    allowed = zmq.auth.load_certificates(d / "clients")
    cpub = zmq.auth.load_certificate(d / "client.key")[0]
    lpub = zmq.auth.load_certificate(d / "laptop2.key")[0]
    assert set(allowed) == {cpub, lpub} and cpub != lpub
    keys = buskeys.load(d)
    assert keys.server_public == spub.decode() and set(keys.allowed_clients) == {
        cpub.decode(), lpub.decode()}
    # A second server pair is never made, an existing client never overwritten.
    assert main(["keys", "generate", str(d), "--client", "laptop2"]) == 2
    assert "exists; not overwriting" in capsys.readouterr().err
    assert zmq.auth.load_certificate(d / "server.key_secret") == (spub, ssec)


def test_a_secret_key_readable_by_others_is_refused_with_the_fix(tmp_path):
    d = tmp_path / "k"
    buskeys.generate(d)
    os.chmod(d / "client.key_secret", 0o644)
    with pytest.raises(buskeys.BusKeyError, match=r"client.key_secret: .*chmod 600"):
        buskeys.load(d)
    with pytest.raises(buskeys.BusKeyError, match="no such key directory"):
        buskeys.load(tmp_path / "missing")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_a_garbage_key_file_gives_one_clear_error(tmp_path, data):
    d = tmp_path / "fuzz"
    d.mkdir(exist_ok=True)
    p = d / "server.key_secret"
    p.write_bytes(data)
    os.chmod(p, 0o600)
    try:
        keys = buskeys.load(d)
    except buskeys.BusKeyError as exc:
        assert "server.key_secret" in str(exc) or "no key files" in str(exc)
        assert "\n" not in str(exc)
    else:  # only a well-formed certificate gets through
        assert keys.server_secret is None or len(keys.server_secret) == 40


@pytest.mark.parametrize("endpoint", ["tcp://*:0", "tcp://0.0.0.0:0", "tcp://[::]:0",
                                      "tcp://eth0:0", "tcp://192.168.1.20:0"])
def test_binding_beyond_loopback_without_keys_is_refused(endpoint):
    with pytest.raises(buskeys.InsecureBindError, match="--bus-keys"):
        Publisher(endpoint, "s1")


def test_loopback_binds_and_keyed_or_insecure_binds_are_allowed(tmp_path):
    for ep in ("tcp://127.0.0.1:*", f"ipc://{tmp_path}/bus"):
        Publisher(ep, "s1").close()
    for ep in ("tcp://127.0.0.1:5556", "tcp://localhost:5556", "tcp://[::1]:5556",
               "ipc:///run/uxo/bus", "inproc://x"):
        assert buskeys.is_loopback_endpoint(ep)
    buskeys.check_bind("tcp://*:5556", encrypted=True, insecure=False)
    buskeys.check_bind("tcp://*:5556", encrypted=False, insecure=True)
    with pytest.raises(buskeys.InsecureBindError):
        buskeys.check_bind("tcp://*:5556", encrypted=False, insecure=False)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_only_loopback_hosts_count_as_loopback(host):
    ep = f"tcp://{host}:5556"
    loop = buskeys.is_loopback_endpoint(ep)
    if loop:
        h = host.strip("[]")
        assert h in ("localhost", "lo") or h.startswith(("127.", "::1", "0:0:0:0:0:0:0:1")) \
            or h.lower().startswith("::ffff:127.") or h == "::1"


def test_acquire_and_demo_refuse_an_open_bind_before_starting(tmp_path, capsys):
    rc = main(["acquire", "--driver", "gradline", "--port", "sim://demo",
               "--publish", "tcp://*:0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "refusing to publish on tcp://*:0 without keys" in err and "--insecure" in err
    assert main(["demo", "--publish", "tcp://0.0.0.0:0", "--out", str(tmp_path)]) == 2
    assert "refusing to publish" in capsys.readouterr().err
    assert main(["acquire", "--driver", "gradline", "--port", "sim://demo",
                 "--publish", "tcp://*:0", "--bus-keys", str(tmp_path / "none")]) == 2
    assert "no such key directory" in capsys.readouterr().err


def _cli(args: list[str], tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "acquisition.cli", *args], cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_a_keyed_service_serves_its_clients_and_nobody_else(tmp_path):
    keys = tmp_path / "keys"
    buskeys.generate(keys)
    stranger_keys = tmp_path / "other"
    buskeys.generate(stranger_keys)  # a valid key pair, but not in the allow-list
    port = free_port()
    ep = f"tcp://127.0.0.1:{port}"
    service = _cli(["acquire", "--driver", "gradline", "--port", "sim://demo?speed=5",
                    "--publish", ep, "--bus-keys", str(keys), "--meta", "operator=Hoa",
                    "--duration", "12"], tmp_path)
    tail = record = None
    try:
        tail = _cli(["tail", ep, "--bus-keys", str(keys), "--topic", "status.",
                     "--count", "4", "--timeout", "60"], tmp_path)
        record = _cli(["record", ep, "--out", str(tmp_path / "rec"), "--bus-keys", str(keys),
                       "--until-stop", "--duration", "90"], tmp_path)
        friend = Subscriber(ep, bus_keys=keys)
        plain = Subscriber(ep)
        impostor = Subscriber(ep, bus_keys=stranger_keys)
        try:
            got = [msg for msg in friend.messages(60.0, until=lambda x: x.kind == "heartbeat")]
            time.sleep(1.0)
            assert plain.recv(0.5) is None and impostor.recv(0.5) is None
        finally:
            for s in (friend, plain, impostor):
                s.close()
        tail_out, tail_err = tail.communicate(timeout=60)
        rec_out, rec_err = record.communicate(timeout=60)  # ends with the session
    finally:
        for p in (service, tail, record):
            if p is not None and p.poll() is None:
                p.terminate()
                p.communicate(timeout=20)
    kinds = [g.kind for g in got]
    assert kinds[0] == "session_start" and "heartbeat" in kinds, kinds
    assert got[0].header["info"]["meta_operator"] == "Hoa"
    assert plain.received == 0 and impostor.received == 0
    assert tail.returncode == 0, tail_err
    lines = tail_out.splitlines()  # the session comes first, then what --topic asked
    assert len(lines) == 4 and " session_start " in lines[0], lines
    kinds = {ln.split()[1] for ln in lines}
    assert kinds <= {"session_start", "descriptor", "heartbeat", "state"}, lines
    assert record.returncode == 0, rec_err
    path = re.search(r"recorded: (\S+)", rec_out).group(1)
    with open_recording(path) as rec:
        (st_,) = rec.streams.values()
        assert st_.blocks["n"].sum() > 0
        assert rec.attrs["source_session"]


@pytest.mark.slow
def test_demo_with_keys_serves_its_own_listener_and_no_stranger(tmp_path, capsys):
    keys = tmp_path / "keys"
    buskeys.generate(keys)
    ep = f"tcp://127.0.0.1:{free_port()}"
    stop = threading.Event()
    stranger: dict[str, int] = {}

    def listen() -> None:
        with Subscriber(ep) as sub:
            while not stop.is_set():
                sub.recv(0.2)
            stranger["received"] = sub.received

    th = threading.Thread(target=listen)
    th.start()
    try:
        rc = main(["demo", "--speed", "100", "--publish", ep, "--bus-keys", str(keys),
                   "--out", str(tmp_path / "demo")])
    finally:
        stop.set()
        th.join(10)
    out = capsys.readouterr().out
    assert rc == 0
    n = int(re.search(r"bus: (\d+) messages", out).group(1))
    assert n > 10 and "0 rejected" in out  # the demo's keyed listener heard the session
    assert "found 6 of 6 targets" in out
    assert stranger["received"] == 0
