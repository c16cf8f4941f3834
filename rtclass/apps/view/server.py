"""``rtclass view``: the live probe view, served to a browser on 127.0.0.1.

A receiver thread subscribes to a pipeline's ZMQ PUB (the topics a decoder gets: ``spikes/``,
``units``, ``status``, ``features``) and feeds a ``ViewState``; the standard library's threading
HTTP server serves the page and its scripts from ``static/``, the state as JSON, and pushes
updates to each browser as Server-Sent Events (one-way, a few times a second: what SSE is for,
with no dependency beyond the standard library). The view runs in its own process beside
``rtclass run`` or the demo, so it never takes the GIL from the hot path.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import zmq

from rtclass.apps.view.state import ViewState, page_constants
from rtclass.errors import InputError
from rtclass.publish.wire import FEATURES_TOPIC, SPIKES_PREFIX, STATUS_TOPIC, UNITS_TOPIC
from rtclass.publish.zmq_pub import connect_address_for

log = logging.getLogger("rtclass.view")

STATIC_DIR = Path(__file__).parent / "static"
#: the port the view asks for first (``--view`` without a port)
DEFAULT_VIEW_PORT = 8050
#: how often each browser gets an update (4 Hz)
PUSH_INTERVAL_S = 0.25
#: how long the receiver waits for a message before it checks whether to stop
RECEIVE_POLL_MS = 100
#: how much nicer than the pipeline the view process runs (the hot path goes first)
VIEW_NICENESS = 5
#: how often the view's process checks that the run that started it still lives
PARENT_POLL_S = 0.5
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}


def subscribe_address(publish_address: str) -> str:
    """Where to connect to a publisher bound at ``publish_address`` (a wildcard bind is reached on
    loopback). A port chosen at bind time (``:*``) is not known here: give the bound endpoint."""
    if publish_address.endswith(":*"):
        raise InputError(
            f"the view needs the publisher's port, and {publish_address!r} picks one when it binds; "
            "set [publish] zmq_address to a fixed port"
        )
    return connect_address_for(publish_address)


class Receiver:
    """Subscribes to a pipeline's topics and ingests every message into ``state``."""

    def __init__(self, address: str, state: ViewState):
        self.address = address
        self.state = state
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rtclass-view-receiver", daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def _loop(self) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        for topic in (SPIKES_PREFIX, UNITS_TOPIC, STATUS_TOPIC, FEATURES_TOPIC):
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        sock.connect(self.address)
        try:
            while not self._stop.is_set():
                if sock.poll(RECEIVE_POLL_MS):
                    self.state.ingest(sock.recv_multipart())
        finally:
            sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _handler(state: ViewState, stop: threading.Event):
    class Handler(BaseHTTPRequestHandler):
        server_version = "rtclass-view"

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            log.debug("%s " + format, self.address_string(), *args)

        def do_GET(self):  # noqa: N802 - the base class's name
            path = urlparse(self.path).path
            if path in ("/", "/index.html"):
                self._file(STATIC_DIR / "index.html")
            elif path.startswith("/static/"):
                self._file(STATIC_DIR / path.removeprefix("/static/"))
            elif path == "/api/constants":
                self._json(page_constants())
            elif path == "/api/state":
                self._json(state.update_since(0, -1, with_probe=True)[0])
            elif path.startswith("/api/unit/"):
                self._unit(path.removeprefix("/api/unit/"))
            elif path == "/events":
                self._events()
            elif path == "/favicon.ico":
                self.send_response(HTTPStatus.NO_CONTENT)
                self.end_headers()
            else:
                self.send_error(HTTPStatus.NOT_FOUND, "no such page in rtclass view")

        def _file(self, file: Path) -> None:
            file = file.resolve()
            if file.parent != STATIC_DIR.resolve() or not file.is_file():
                self.send_error(HTTPStatus.NOT_FOUND, "no such file in rtclass view")
                return
            self._send(file.read_bytes(), CONTENT_TYPES.get(file.suffix, "application/octet-stream"))

        def _json(self, doc) -> None:
            self._send(json.dumps(doc).encode(), "application/json")

        def _unit(self, text: str) -> None:
            try:
                unit = int(text)
            except ValueError:
                self.send_error(HTTPStatus.BAD_REQUEST, f"unit id {text!r} is not a number")
                return
            detail = state.unit_detail(unit)
            if detail is None:
                self.send_error(HTTPStatus.NOT_FOUND, f"no features of unit {unit} yet (labelled after 100 spikes)")
                return
            self._json(detail)

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _events(self) -> None:
            """Server-Sent Events: the whole state first, then what changed, every PUSH_INTERVAL_S."""
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            cursor, version, with_probe = 0, -1, True
            try:
                while not stop.is_set():
                    update, cursor = state.update_since(cursor, version, with_probe)
                    version = update.get("units_version", version)
                    with_probe = with_probe and "probe" not in update
                    self.wfile.write(b"data: " + json.dumps(update).encode() + b"\n\n")
                    self.wfile.flush()
                    stop.wait(PUSH_INTERVAL_S)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser went away

    return Handler


class ViewServer:
    """The HTTP server and the receiver; ``url`` once started. ``port`` 0 picks a free one; a busy
    requested port falls back to a free one (``url`` says which)."""

    def __init__(self, address: str, port: int = DEFAULT_VIEW_PORT, host: str = "127.0.0.1"):
        self.state = ViewState(address)
        self._stop = threading.Event()
        handler = _handler(self.state, self._stop)
        try:
            self._http = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            log.warning("port %d is not free (%s): the view takes a free port", port, exc)
            self._http = ThreadingHTTPServer((host, 0), handler)
        self._http.daemon_threads = True
        self.receiver = Receiver(address, self.state)
        self._thread = threading.Thread(target=self._http.serve_forever, name="rtclass-view-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> ViewServer:
        self.receiver.start()
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()
        self.receiver.stop()

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def serve_view(address: str, port: int, stop: threading.Event, on_url=None) -> None:
    """``rtclass view``: serve until ``stop`` is set; ``on_url(url)`` once the page is up."""
    with ViewServer(address, port) as server:
        (on_url or print)(server.url)
        while not stop.wait(0.5):
            pass


def view_process(address: str, port: int, url_queue) -> None:
    """The body of the view's own process beside a run: nicer than the pipeline; it ends when the
    run does, also when the run was killed (its parent changes)."""
    try:
        os.nice(VIEW_NICENESS)
    except OSError:
        pass
    parent, stop = os.getppid(), threading.Event()

    def end_with_the_run() -> None:
        while not stop.wait(PARENT_POLL_S):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=end_with_the_run, name="rtclass-view-parent", daemon=True).start()
    serve_view(address, port, stop, url_queue.put)


def start_view_process(address: str, port: int, wait_s: float = 60.0):
    """Start the view in its own process; returns (process, url). The process is a daemon: it
    ends with the run."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    urls = ctx.Queue()
    proc = ctx.Process(target=view_process, args=(address, port, urls), name="rtclass-view", daemon=True)
    proc.start()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            return proc, urls.get(timeout=0.2)
        except Exception:  # noqa: BLE001 - queue.Empty from another module; keep waiting while it lives
            if not proc.is_alive():
                break
    raise InputError(f"the view process did not start (exit code {proc.exitcode}); run `rtclass view` to see why")
