"""Serve the live view: a bus subscriber thread, a starlette app, uvicorn.

`ViewServer` subscribes to a running service's bus (any endpoint `uxo tail`
could read) on its own thread, feeds every message to a `ViewModel` and
hands the resulting updates, JSON-encoded once, to each connected page.

Nothing a browser does can slow acquisition: the bus thread never waits on
the web side (it posts updates to the event loop and goes on), and each page
has a bounded queue; when a page reads too slowly its queue is emptied, the
drops are counted (and shown on every page), and that page gets a fresh
snapshot once it reads again. Malformed WebSocket messages are counted and
ignored. When the service restarts, the SUB socket reconnects by itself and
the model starts the new session; pages are told to reset, never reloaded.

Bound to loopback the page is open; bound to any other address it needs the
random ``token`` (query ``?token=`` or the cookie the page sets), and
requests without it get 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from acquisition.clock import mono_ns, wall_ns
from acquisition.subscriber import Subscriber
from acquisition.view.model import ViewModel

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
COOKIE = "uxo_view_token"
#: Updates a page may have waiting before it is resynchronised.
CLIENT_QUEUE = 512
#: Largest WebSocket message a page may send (bytes); pages send tiny ones.
WS_MAX_BYTES = 4096
HEALTH_EVERY_S = 0.5
DEFAULT_PORT = 8765


def parse_listen(spec: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``[HOST:]PORT`` -> (host, port); raises ValueError with what was expected."""
    host, sep, port_s = spec.rpartition(":")
    if not sep:
        host, port_s = default_host, spec
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"view address {spec!r}: an IPv6 host goes in brackets, "
                         f"e.g. [::1]:8765")
    host = host.strip("[]") or default_host
    try:
        port = int(port_s)
    except ValueError:
        raise ValueError(f"view address {spec!r}: expected [HOST:]PORT, e.g. 8765 or "
                         f"0.0.0.0:8765") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"view address {spec!r}: port must be 0-65535")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)


class _Client:
    def __init__(self, ws: WebSocket, queue_size: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(queue_size)
        self.dropped = 0


class TokenGate:
    """ASGI middleware: 403 for HTTP and WebSocket requests without the token."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    def allowed(self, scope: dict[str, Any]) -> bool:
        if not self.token:
            return True
        qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = qs.get("token", [""])[0]
        if given and secrets.compare_digest(given.encode(), self.token.encode()):
            return True
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                with contextlib.suppress(Exception):
                    jar.load(value.decode("latin-1"))
                c = jar.get(COOKIE)
                if c is not None and secrets.compare_digest(c.value.encode(),
                                                            self.token.encode()):
                    return True
        return False

    @staticmethod
    def same_origin(scope: dict[str, Any]) -> bool:
        """A browser's WebSocket handshake names the page's origin; it must be ours
        (browsers let any site open WebSockets anywhere, loopback included)."""
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin")
        if origin is None:  # not a browser
            return True
        host = headers.get(b"host", b"")
        return origin.split(b"://", 1)[-1].rstrip(b"/") == host

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and not self.same_origin(scope):
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] in ("http", "websocket") and not self.allowed(scope):
            if scope["type"] == "websocket":
                # Closing before accept makes the server answer the handshake with 403.
                await send({"type": "websocket.close", "code": 1008})
                return
            await PlainTextResponse("403 forbidden: this view needs its access token "
                                    "(the URL printed at start)\n", 403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ViewServer:
    """The live view of the bus at ``endpoint``, served on ``host:port``."""

    def __init__(self, endpoint: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 token: str | None = None, model: ViewModel | None = None,
                 subscriber_options: dict[str, Any] | None = None,
                 client_queue: int = CLIENT_QUEUE) -> None:
        self.endpoint = endpoint
        self.host = host
        self.port = port
        # Beyond loopback a random token is always required.
        self.token = token if token is not None else (
            None if is_loopback(host) else secrets.token_urlsafe(18))
        self.model = model or ViewModel()
        self.subscriber_options = dict(subscriber_options or {})
        self.client_queue = client_queue
        self.lock = threading.Lock()
        self.clients: set[_Client] = set()
        self.ws_rejected = 0
        self.model_errors = 0
        self.dropped = 0
        self.bus: dict[str, Any] = {"received": 0, "rejected": 0, "gaps": 0, "resets": 0}
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bus_thread: threading.Thread | None = None
        self._http_thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.app = TokenGate(self._make_app(), self.token)

    # --- life ------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> ViewServer:
        """Start the bus thread and the web server; return once it listens."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off",
                                ws_max_size=WS_MAX_BYTES, ws_per_message_deflate=False,
                                ws_ping_interval=5.0, ws_ping_timeout=10.0,
                                # Ctrl-C must stop the view even when a page keeps its
                                # socket open: uvicorn otherwise waits for it forever.
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._http_thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="view-http", daemon=True)
        self._http_thread.start()
        self._bus_thread = threading.Thread(target=self._bus_loop, name="view-bus", daemon=True)
        self._bus_thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._http_thread.is_alive():
                raise RuntimeError(f"view server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        base = f"http://{host}:{self.port}/"
        return base + (f"?token={self.token}" if self.token else "")

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        for t in (self._http_thread, self._bus_thread):
            if t is not None:
                t.join(5.0)

    def interrupt(self) -> None:
        """Make `wait` return; safe to call from a signal handler. `stop` still follows."""
        self._stop.set()

    def wait(self) -> None:
        """Block until `interrupt` or Ctrl-C (KeyboardInterrupt propagates to the caller)."""
        while (not self._stop.is_set() and self._http_thread is not None
               and self._http_thread.is_alive()):
            self._http_thread.join(0.2)

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the bus side (its own thread) ----------------------------------------------------
    def _bus_loop(self) -> None:
        sub = Subscriber(self.endpoint, **self.subscriber_options)
        try:
            while not self._stop.is_set():
                msg = sub.recv(timeout_s=0.2)
                self.bus = {"received": sub.received, "rejected": sub.rejected,
                            "gaps": sub.missing, "resets": sum(sub.resets.values())}
                if msg is None:
                    continue
                try:
                    with self.lock:
                        updates = self.model.ingest(msg, mono_ns(), wall_ns())
                except Exception:  # a message the model cannot show must not end the view
                    self.model_errors += 1
                    log.exception("view: cannot show a %s message", msg.kind)
                    continue
                if updates:
                    self._post([_dumps(u) for u in updates])
        finally:
            sub.close()

    def _post(self, texts: list[str]) -> None:
        loop = self._loop
        if loop is None or not self.clients:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(self._broadcast, texts)

    def _broadcast(self, texts: list[str]) -> None:
        for c in list(self.clients):
            for text in texts:
                try:
                    c.queue.put_nowait(text)
                except asyncio.QueueFull:
                    self._overflow(c)
                    break

    def _overflow(self, c: _Client) -> None:
        """A page that cannot keep up: forget its backlog, count it, resync it."""
        n = c.queue.qsize()
        while not c.queue.empty():
            c.queue.get_nowait()
        c.dropped += n
        self.dropped += n
        c.queue.put_nowait(None)  # None: send a fresh snapshot

    # --- the web side (the event loop's thread) ---------------------------------------------
    def _make_app(self) -> Starlette:
        async def index(request: Request) -> Response:
            resp = FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})
            if self.token:
                resp.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return resp

        async def health(request: Request) -> Response:
            return JSONResponse(self._health())

        return Starlette(routes=[
            Route("/", index),
            Route("/health.json", health),
            WebSocketRoute("/ws", self._ws),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ])

    async def _health_ticker(self) -> None:
        """Every page gets the health (states, counters, silence) twice a second."""
        while not self._stop.is_set():
            await asyncio.sleep(HEALTH_EVERY_S)
            if self.clients:
                self._broadcast([_dumps(self._health())])

    def _health(self) -> dict[str, Any]:
        with self.lock:
            h = self.model.health(mono_ns(), wall_ns(), dict(self.bus))
        h["view"] = {"pages": len(self.clients), "dropped": self.dropped,
                     "ws_rejected": self.ws_rejected, "model_errors": self.model_errors}
        return h

    async def _ws(self, ws: WebSocket) -> None:
        if self._loop is None:
            # The first page starts the loop-side work (the loop exists only now).
            self._loop = asyncio.get_running_loop()
            self._ticker = self._loop.create_task(self._health_ticker())
        await ws.accept()
        client = _Client(ws, self.client_queue)
        with self.lock:
            # Under the bus thread's lock: every update after this snapshot is
            # posted to this page too (one in both is harmless: pages de-duplicate).
            snap_obj = self.model.snapshot(mono_ns())
            self.clients.add(client)
        snap = _dumps(snap_obj)
        sender = asyncio.create_task(self._send_loop(client, snap))
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                self._on_page_message(client, msg)
        except WebSocketDisconnect:
            pass
        finally:
            self.clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send_loop(self, client: _Client, first: str) -> None:
        try:
            await client.ws.send_text(first)
            await client.ws.send_text(_dumps(self._health()))
            while True:
                text = await client.queue.get()
                if text is None:
                    with self.lock:
                        snap = self.model.snapshot(mono_ns())
                    text = _dumps(snap)
                await client.ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    def _on_page_message(self, client: _Client, msg: Mapping[str, Any]) -> None:
        """Pages send ``{"type": "ping", "id": n}`` (answered with a pong) or
        ``{"type": "resync"}``; anything else is counted and ignored."""
        text = msg.get("text")
        try:
            if text is None:
                raise ValueError("binary")
            body = json.loads(text)
            kind = body.get("type") if isinstance(body, dict) else None
            if kind == "ping" and isinstance(body.get("id"), int) and not isinstance(
                    body.get("id"), bool):
                out = _dumps({"type": "pong", "id": body["id"]})
            elif kind == "resync" and len(body) == 1:
                out = None
            else:
                raise ValueError("unknown")
        except (ValueError, TypeError, RecursionError):
            self.ws_rejected += 1
            return
        try:
            client.queue.put_nowait(out)
        except asyncio.QueueFull:
            self._overflow(client)
