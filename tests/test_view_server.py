"""The view server with real parts: a ZeroMQ publisher, HTTP and WebSocket clients
over real sockets (no browser here; see test_view_browser.py)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from view_helpers import free_port, grad_descriptor, walk_block
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from acquisition.events import Anomaly
from acquisition.messages import block_message
from acquisition.publisher import Publisher
from acquisition.view.model import ViewModel
from acquisition.view.server import ViewServer, parse_listen


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, pub: Publisher | None = None,
             what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if pub is not None:
            pub.poll(10)
        else:
            time.sleep(0.01)


@pytest.fixture
def bus(tmp_path) -> Iterator[tuple[str, Publisher]]:
    ep = f"ipc://{tmp_path}/bus"
    pub = Publisher(ep, "s1")
    pub.session_start(operator="Lan")
    pub.add_stream(grad_descriptor())
    yield ep, pub
    pub.close(0)


def ws_url(view: ViewServer, token: str | None = None) -> str:
    q = f"?token={token}" if token else ""
    return f"ws://127.0.0.1:{view.port}/ws{q}"


def recv_until(ws, cond: Callable[[dict], bool], timeout: float = 10.0,
               pub: Publisher | None = None) -> list[dict]:
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching message; got {[m['type'] for m in got]}")
        if pub is not None:
            pub.poll(0)
        try:
            m = json.loads(ws.recv(timeout=min(left, 0.05)))
        except TimeoutError:
            continue
        got.append(m)
        if cond(m):
            return got


def joined(view: ViewServer, pub: Publisher) -> None:
    wait_for(lambda: view.model.session == "s1" and "grad0" in view.model.descriptors,
             pub=pub, what="the view to join the bus")


def test_a_page_gets_the_snapshot_then_live_updates(bus):
    ep, pub = bus
    with ViewServer(ep, port=0) as view:
        joined(view, pub)
        for k in range(5):
            pub.publish_block(walk_block(k * 10, 10))
        wait_for(lambda: view.bus["received"] >= 7, pub=pub, what="blocks")
        with connect(ws_url(view), max_size=None) as ws:
            snap = json.loads(ws.recv(timeout=5))
            assert snap["type"] == "snapshot" and snap["session"] == "s1"
            assert snap["info"] == {"operator": "Lan"}
            assert snap["traces"]["grad0"]["t"][-1] == pytest.approx(4.9)
            pub.publish_event(Anomaly("grad0", 42, 1, 57, 0, 1.5, 5.1, 48.0, 1))
            got = recv_until(ws, lambda m: m["type"] == "anomaly", pub=pub)
            a = got[-1]["anomaly"]
            assert (a["anomaly_id"], a["x"], a["y"], a["amplitude_nT"]) == (42, 1.5, 5.1, 48.0)
            h = recv_until(ws, lambda m: m["type"] == "health", pub=pub)[-1]
            assert h["bus"]["received"] >= 8 and h["view"]["pages"] == 1


def test_a_late_page_gets_a_bounded_history(bus):
    ep, pub = bus
    model = ViewModel(max_cells=400, max_anomalies=50)
    with ViewServer(ep, port=0, model=model) as view:
        joined(view, pub)
        for k in range(60):  # 600 s of walking: 600 m of lanes
            pub.publish_block(walk_block(k * 100, 100))
        for i in range(80):
            pub.publish_event(Anomaly("grad0", i, 0, i, 0, 0.5, float(i), 10.0, 1))
        wait_for(lambda: view.bus["received"] >= 2 + 60 + 80, pub=pub, what="the walk")
        with connect(ws_url(view), max_size=None) as ws:
            snap = json.loads(ws.recv(timeout=5))
    t = snap["traces"]["grad0"]["t"]
    assert t[-1] == pytest.approx(599.9) and t[-1] - t[0] <= 30.0
    assert len(snap["cells"]) <= 400 and snap["cell_m"] > 0.25
    assert [a["anomaly_id"] for a in snap["anomalies"]] == list(range(30, 80))


def _raw_ws(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b"101" in s.recv(64)
    return s


@pytest.mark.slow
def test_a_stalled_page_costs_drops_not_bus_messages(bus):
    ep, pub = bus
    with ViewServer(ep, port=0, client_queue=64) as view:
        joined(view, pub)
        stalled = _raw_ws(view.port)
        with connect(ws_url(view), max_size=None) as ws:
            ws.recv(timeout=5)
            wait_for(lambda: len(view.clients) == 2, what="two pages")
            n = 2000
            for k in range(n):
                pub.publish_block(walk_block(k * 100, 100))
                if k % 50 == 0:  # the reading page keeps reading
                    while True:
                        try:
                            ws.recv(timeout=0)
                        except TimeoutError:
                            break
            pub.publish_event(Anomaly("grad0", 9, 0, 5, 0, 1.0, 2.0, 30.0, 1))
            # The view's bus side saw every message: the stalled page held nothing up.
            wait_for(lambda: view.bus["received"] == 2 + n + 1, pub=pub, timeout=60,
                     what="every bus message at the view")
            assert view.bus["gaps"] == 0
            got = recv_until(ws, lambda m: m["type"] == "anomaly", timeout=30, pub=pub)
            assert got[-1]["anomaly"]["anomaly_id"] == 9
            h = recv_until(ws, lambda m: m["type"] == "health", pub=pub)[-1]
        assert h["view"]["dropped"] > 0
        assert view.dropped >= h["view"]["dropped"]
        stalled.close()


@pytest.fixture(scope="module")
def lone_view() -> Iterator[ViewServer]:
    # No publisher: these tests talk to the web side only.
    with ViewServer("ipc:///nonexistent/uxo-view-test", port=0) as view:
        yield view


VALID_PINGS = st.integers(-2**53, 2**53).map(lambda i: json.dumps({"type": "ping", "id": i}))
INVALID = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: "x" + s),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
      .filter(lambda d: d.get("type") not in ("ping", "resync")).map(json.dumps),
    st.one_of(st.floats(allow_nan=False), st.text(max_size=5), st.booleans(), st.none())
      .map(lambda i: json.dumps({"type": "ping", "id": i})),
    st.just('{"type": "resync", "extra": 1}'),
    st.just("[" * 3000),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.tuples(st.booleans(), VALID_PINGS, INVALID), max_size=12))
def test_page_messages_fuzz_malformed_ones_are_counted_and_ignored(lone_view, messages):
    before = lone_view.ws_rejected
    with connect(ws_url(lone_view), max_size=None) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
        n_valid = 0
        for use_valid, valid, invalid in messages:
            ws.send(valid if use_valid else invalid)
            n_valid += use_valid
        ws.send(json.dumps({"type": "ping", "id": -1}))
        pongs = recv_until(ws, lambda m: m == {"type": "pong", "id": -1})
        assert sum(m["type"] == "pong" for m in pongs) == n_valid + 1
    assert lone_view.ws_rejected - before == len(messages) - n_valid


def test_an_oversized_page_message_closes_only_that_page(lone_view):
    with connect(ws_url(lone_view), max_size=None) as other:
        other.recv(timeout=5)
        with connect(ws_url(lone_view), max_size=None) as ws:
            ws.recv(timeout=5)
            ws.send("x" * 10_000)
            with pytest.raises(Exception, match=r"1009|too big|closed"):
                for _ in range(100):
                    ws.recv(timeout=5)
        other.send('{"type": "ping", "id": 5}')
        assert recv_until(other, lambda m: m["type"] == "pong")[-1]["id"] == 5


PATH_CHARS = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789/._-%?&=~"),
                     max_size=40)


@pytest.fixture(scope="module")
def gated_view() -> Iterator[ViewServer]:
    with ViewServer("ipc:///nonexistent/uxo-view-gated", host="0.0.0.0", port=0) as view:
        yield view


def _get(port: int, path: str, headers: dict[str, str] | None = None,
         method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATH_CHARS, method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "OPTIONS"]),
       header=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30),
       with_token=st.booleans())
def test_http_fuzz_the_token_gate_holds_and_nothing_fails(gated_view, path, method, header,
                                                          with_token):
    token = gated_view.token
    path = "/" + path.lstrip("/")
    if with_token:
        path += ("&" if "?" in path else "?") + f"token={token}"
    status, _, _ = _get(gated_view.port, path, {"X-Fuzz": header, "Cookie": header}, method)
    if with_token:
        assert status in (200, 304, 404, 405), (path, status)
    else:
        # A token only gets through when it is given; none is in these paths.
        assert status == 403, (path, status)


def test_beyond_loopback_the_token_is_required(gated_view):
    token, port = gated_view.token, gated_view.port
    assert token and len(token) >= 20 and gated_view.url.endswith(f"?token={token}")
    assert _get(port, "/")[0] == 403
    assert _get(port, "/static/view.js")[0] == 403
    assert _get(port, "/?token=" + token[:-1] + "x")[0] == 403
    status, headers, body = _get(port, f"/?token={token}")
    assert status == 200 and b"uxo view" in body
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie == f"uxo_view_token={token}"
    assert _get(port, "/static/view.js", {"Cookie": cookie})[0] == 200
    with pytest.raises(InvalidStatus) as err:
        connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5)
    assert err.value.response.status_code == 403
    with connect(f"ws://127.0.0.1:{port}/ws?token={token}", max_size=None) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"


def test_loopback_needs_no_token(lone_view):
    assert lone_view.token is None and _get(lone_view.port, "/")[0] == 200
    assert b"uPlot" not in _get(lone_view.port, "/static/view.js")[2]  # our own code only


def test_a_restarted_service_is_picked_up_without_reconnecting(tmp_path):
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher(ep, "run-a")
    pub.session_start()
    pub.add_stream(grad_descriptor())
    with ViewServer(ep, port=0) as view:
        wait_for(lambda: view.model.session == "run-a", pub=pub, what="run-a")
        with connect(ws_url(view), max_size=None) as ws:
            assert json.loads(ws.recv(timeout=5))["session"] == "run-a"
            pub.close(0)
            pub = Publisher(ep, "run-b")
            pub.session_start()
            pub.add_stream(grad_descriptor())
            got = recv_until(ws, lambda m: m["type"] == "reset", timeout=15, pub=pub)
            assert got[-1]["snapshot"]["session"] == "run-b"
            pub.publish_block(walk_block(0, 10))
            tr = recv_until(ws, lambda m: m["type"] == "trace", pub=pub)[-1]
            assert tr["t"][0] == 0.0
    pub.close(0)


def test_block_messages_carry_positions_to_the_map(bus):
    ep, pub = bus
    with ViewServer(ep, port=0) as view:
        joined(view, pub)
        with connect(ws_url(view), max_size=None) as ws:
            ws.recv(timeout=5)
            pub.publish(block_message(walk_block(0, 20), "s1", 0))
            cells = recv_until(ws, lambda m: m["type"] == "cells", pub=pub)[-1]
    # 2 s at 1 m/s along x = 0.5: y from 0 to 1.9 m, cells of 0.25 m.
    assert {c[0] for c in cells["cells"]} == {2}
    assert sorted(c[1] for c in cells["cells"]) == list(range(8))
    assert cells["here"] == {"stream": "grad0", "x": 0.5, "y": pytest.approx(1.9)}


def test_parse_listen_and_the_cli_error():
    assert parse_listen("8765") == ("127.0.0.1", 8765)
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen("[::1]:9") == ("::1", 9)
    with pytest.raises(ValueError, match=r"expected \[HOST:\]PORT"):
        parse_listen("localhost:http")
    with pytest.raises(ValueError, match="in brackets"):
        parse_listen("::1:8765")
    with pytest.raises(ValueError, match="0-65535"):
        parse_listen("70000")
    r = subprocess.run([sys.executable, "-m", "acquisition.cli", "view", "tcp://127.0.0.1:1",
                        "--http", "nope"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == ("uxo view: view address 'nope': expected [HOST:]PORT, "
                                "e.g. 8765 or 0.0.0.0:8765")


def test_a_websocket_from_another_site_is_refused(lone_view):
    url = ws_url(lone_view)
    with pytest.raises(InvalidStatus) as err:
        connect(url, origin="http://evil.example", open_timeout=5)
    assert err.value.response.status_code == 403
    with connect(url, origin=f"http://127.0.0.1:{lone_view.port}", max_size=None) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"


@given(spec=st.text(max_size=30))
def test_parse_listen_fuzz_gives_an_address_or_a_clear_error(spec):
    try:
        host, port = parse_listen(spec)
    except ValueError as exc:
        assert str(exc).startswith(f"view address {spec!r}: ")
    else:
        assert 0 <= port <= 65535 and host and "[" not in host
