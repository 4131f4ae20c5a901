"""`uxo view ENDPOINT [--http [HOST:]PORT]`, and the `--view` option of other commands.

`start_view` is the one way every command starts the view: it parses
``[HOST:]PORT``, starts a `ViewServer` on a bus endpoint and prints the URL
(with the access token when bound beyond loopback). The web stack is an
optional extra; without it the commands say how to install it.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
import threading
from typing import Any, TextIO

from acquisition.cli_common import add_bus_arguments, bus_options_from_args, stop_on_signals

VIEW_HELP = ("serve the live view on [HOST:]PORT (default host 127.0.0.1; another "
             "interface needs the access token printed at start)")


def view_missing_message() -> str | None:
    """Why the view cannot run here (the web stack is missing), or None."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        return (f"the live view needs the 'view' extra ({exc.name} is missing): "
                f"pip install 'uxo-acquisition[view]'")
    return None


def local_endpoint(bound: str) -> str:
    """The address a subscriber on this host connects to for a bound endpoint
    (``tcp://*:5556`` and ``tcp://0.0.0.0:5556`` -> ``tcp://127.0.0.1:5556``)."""
    for wild in ("//*:", "//0.0.0.0:"):
        bound = bound.replace(wild, "//127.0.0.1:")
    return bound


def start_view(endpoint: str, listen: str, out: TextIO | None = None, **options: Any) -> Any:
    """Start a `ViewServer` on ``endpoint`` at ``listen`` and print its URL."""
    from acquisition.view.server import ViewServer, parse_listen

    out = sys.stdout if out is None else out
    host, port = parse_listen(listen)
    try:
        server = ViewServer(endpoint, host, port, **options).start()
    except OSError as exc:
        raise OSError(f"cannot serve the view on {host}:{port}: {exc.strerror or exc}") from exc
    out.write(f"live view: {server.url}\n")
    if server.token:
        out.write(f"  (bound to {host}: open it with the token; use this host's address "
                  f"on the team's network)\n")
    out.flush()
    return server


def serve_for_service(publish: str | None, listen: str,
                      subscriber_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The view for a service about to start (``--view`` of acquire and demo).

    Returns the started server and the endpoint the service must publish on:
    ``publish``, or a private ipc bus when the service was not asked to
    publish. ``subscriber_options`` are the view's `Subscriber` settings (the
    bus's CURVE keys). Raises ValueError/OSError/RuntimeError with a one-line
    reason (the web stack missing, a bad or busy ``[HOST:]PORT``).
    """
    missing = view_missing_message()
    if missing:
        raise RuntimeError(missing)
    if publish is None:
        bus_dir = tempfile.mkdtemp(prefix="uxo-view-")
        atexit.register(shutil.rmtree, bus_dir, ignore_errors=True)
        publish = f"ipc://{bus_dir}/bus"
    return start_view(local_endpoint(publish), listen,
                      subscriber_options=subscriber_options or None), publish


def _cmd_view(args: argparse.Namespace) -> int:
    missing = view_missing_message()
    if missing:
        print(f"uxo view: {missing}", file=sys.stderr)
        return 2
    # Ctrl-C and SIGTERM stop the page cleanly, even when started in the
    # background. Installed before the URL is printed: whoever reads that
    # line may signal at once, and a signal before the handlers would kill
    # the process uncleanly.
    stop_now = threading.Event()
    started: list[Any] = []

    def on_stop() -> None:
        stop_now.set()
        for srv in started:
            srv.interrupt()

    stop_on_signals(on_stop)
    try:
        bus = bus_options_from_args(args)
        server = start_view(args.endpoint, args.http, subscriber_options=bus or None)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"uxo view: {exc}", file=sys.stderr)
        return 2
    started.append(server)
    if stop_now.is_set():  # signalled while the server was starting
        server.interrupt()
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def register_view(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``uxo view ENDPOINT [--http [HOST:]PORT]``."""
    p = subparsers.add_parser(
        "view", help="serve the operator's live view of a running service",
        description="Subscribe to a running service's bus and serve a live web page: "
                    "traces, lane map, anomalies, targets, instrument health. "
                    "Ctrl-C stops.")
    p.add_argument("endpoint", help="publisher address, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--http", default="8765", metavar="[HOST:]PORT",
                   help="where to serve the page (default 127.0.0.1:8765); " + VIEW_HELP)
    add_bus_arguments(p)
    p.set_defaults(func=_cmd_view)
    return p
