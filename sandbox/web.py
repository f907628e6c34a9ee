"""A small HTTP framework for the sandbox's API stand-ins: routing, JSON, request log, faults.

Each API family is an `App` served on its own loopback port by a `ThreadingHTTPServer`.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"


class Request:
    def __init__(self, method, raw_path, headers, body, client):
        self.method = method
        parsed = urllib.parse.urlsplit(raw_path)
        self.path = urllib.parse.unquote(parsed.path)
        self.raw_path = parsed.path
        self.query_list = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        self.query = {k: v[-1] for k, v in self.query_list.items()}
        self.headers = headers
        self.body = body
        self.client = client
        self.params = {}
        self._json = None
        # A long answer (a watch) polls this to end when its client has gone, as the API server's request context
        # is cancelled when the connection closes; the HTTP handler sets it.
        self.client_gone = lambda: False

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def json(self):
        if self._json is None:
            if not self.body:
                self._json = {}
            else:
                self._json = json.loads(self.body.decode("utf-8"))
        return self._json

    @property
    def bearer(self):
        auth = self.headers.get("Authorization", "") or ""
        return auth[7:] if auth.lower().startswith("bearer ") else None


class Response:
    def __init__(self, status=200, body=None, headers=None, content_type="application/json"):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type

    def encode(self):
        if self.body is None:
            return b""
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body)
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


class ApiError(Exception):
    """Raised by handlers; the App turns it into its family's error shape."""

    def __init__(self, code, message, reason=None, headers=None, **extra):
        # `extra` may carry a family's own status word (GCP's status="NOT_FOUND"), hence `code`.
        super().__init__(message)
        self.status = code
        self.message = message
        self.reason = reason
        self.headers = headers or {}
        self.extra = extra


class DropConnection(Exception):
    """Close the socket without answering (a dropped connection fault)."""


_VAR = re.compile(r"\{(\+?)([A-Za-z_][A-Za-z0-9_]*)(?::path)?\}")


def compile_template(template):
    """'/a/{x}/b/{+rest}' -> regex; {x} stops at '/' and ':', {+x} matches the rest."""
    out, pos = "", 0
    for m in _VAR.finditer(template):
        out += re.escape(template[pos:m.start()])
        greedy = m.group(1) == "+" or m.group(0).endswith(":path}")
        out += "(?P<%s>%s)" % (m.group(2), ".+?" if greedy else "[^/:]+")
        pos = m.end()
    out += re.escape(template[pos:])
    return re.compile("^" + out + "$")


class App:
    """One API family. Routes map (method, path template) to handlers(req) -> Response|obj."""

    family = "app"

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.routes = []

    def route(self, method, template, handler):
        rx = compile_template(template)
        literal = len(_VAR.sub("", template))
        self.routes.append((method.upper(), rx, literal, handler))
        # More literal text first, so '/x/{id}/action' beats '/x/{id}'.
        self.routes.sort(key=lambda r: -r[2])

    def error_response(self, err: ApiError) -> Response:
        return Response(err.status, {"error": {"code": err.status, "message": err.message}}, err.headers)

    def authenticate(self, req):
        """Override: raise ApiError(401) when the request carries no valid credential."""

    def dispatch(self, req):
        allowed = False
        for method, rx, _lit, handler in self.routes:
            m = rx.match(req.path)
            if not m:
                continue
            allowed = True
            if method != req.method:
                continue
            req.params = m.groupdict()
            self.authenticate(req)
            out = handler(req)
            return out if isinstance(out, Response) else Response(200, out)
        if allowed:
            raise ApiError(405, "Method %s not allowed on %s" % (req.method, req.path), reason="methodNotAllowed")
        raise ApiError(404, "The requested URL %s was not found on this server." % req.path, reason="notFound")


class FaultInjector:
    """Injects 429/5xx/dropped connections at a rate, or on demand per request header."""

    KINDS = ("429", "500", "503", "drop")

    def __init__(self, rate=0.0, kinds=KINDS, seed=None):
        self.rate = rate
        self.kinds = tuple(kinds)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.injected = {}

    def pick(self, req):
        forced = req.header("X-Sandbox-Fault")
        if forced:
            return forced
        if req.path.startswith("/_sandbox"):
            return None
        with self.lock:
            if self.rate <= 0 or self.rng.random() >= self.rate:
                return None
            return self.rng.choice(self.kinds)

    def count(self, kind):
        with self.lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1


class Mark(int):
    """A point in the request log: the index of the next entry, and the wall-clock time the mark was taken."""

    def __new__(cls, index, ts):
        mark = int.__new__(cls, index)
        mark.ts = ts
        return mark


class RequestLog:
    """Every request, one JSON line: no headers and no bodies, so no secret can be logged here."""

    def __init__(self, path=None):
        self.path = path
        self.lock = threading.Lock()
        self.entries = []

    def add(self, entry):
        if "?" in (entry.get("path") or ""):
            entry = dict(entry, path=scrub_query(entry["path"]))
        with self.lock:
            self.entries.append(entry)
            if self.path:
                # Owner-only, like every file in the state dir that could hold a credential.
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a") as fh:
                    fh.write(json.dumps(entry) + "\n")

    def mark(self):
        """Where a test's own requests start: pass it to `by_deployer`."""
        with self.lock:
            return Mark(len(self.entries), time.time())

    def by_deployer(self, mark):
        """Entries from `mark` (a `mark()`) on that the deployer's side made (Ansible, gcloud, a test): not the
        sandbox's own /_sandbox/ admin calls and not what the platform's workloads do on their own (a worker cleaning
        up its Cloud Run jobs, a server's telemetry refused at the proxy), which run on in the background.

        An entry is logged when its request ends, so a watch an earlier run opened can be logged after the mark: only
        requests that began after it count."""
        with self.lock:
            entries = self.entries[mark:]
        return [e for e in entries if not e.get("origin") and not str(e.get("path") or "").startswith("/_sandbox/")
                and e["began"] >= mark.ts]


SECRET_QUERY = re.compile(r"(?i)([?&][^=&]*(?:token|secret|password|key|signature)[^=&]*=)[^&]*")


def peer_closed(sock):
    """True when the client has closed its end: the socket reads as ready and a peek at the raw bytes finds the end
    of the stream or a TLS alert record (close_notify). Anything else waiting (a pipelined request) means it is still
    there. The peek is on a duplicate of the descriptor, under any TLS layer, so it consumes nothing."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
        if not ready:
            return False
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as raw:
            head = raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return head in (b"", b"\x15")
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


def scrub_query(path):
    """A request path with credential-looking query values removed (a client may send a token as a parameter)."""
    return SECRET_QUERY.sub(r"\1REDACTED", path)


def make_handler(app, sandbox):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "skyforge-sandbox"
        # Headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK of the headers,
        # 40 ms on every request after a connection's first, which no real front end adds.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):  # silence stderr; we keep our own log
            pass

        def _handle(self):
            started, began = time.monotonic(), time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = Request(self.command, self.path, self.headers, body, self.client_address[0])
            req.client_gone = lambda: peer_closed(self.connection)
            # Random faults go where our own modules' retries are under test; a family can opt out (the Kubernetes
            # API, whose clients are kubernetes.core's). A fault forced by header always applies.
            fault = sandbox.faults.pick(req) if getattr(app, "rate_faults", True) or req.header("X-Sandbox-Fault") \
                else None
            status = None
            try:
                if fault:
                    sandbox.faults.count(fault)
                    if fault == "drop":
                        raise DropConnection()
                    code = int(fault)
                    headers = {"Retry-After": "1"} if code == 429 else {}
                    raise ApiError(code, "injected fault %s" % fault, reason="sandboxFault", headers=headers)
                if req.path.startswith("/_sandbox/") and getattr(app, "admin_api", True):
                    resp = sandbox.admin(req, app)
                else:
                    resp = app.dispatch(req)
            except DropConnection:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                status = "drop"
                resp = None
            except ApiError as err:
                resp = app.error_response(err)
            except json.JSONDecodeError as err:
                resp = app.error_response(ApiError(400, "Invalid JSON payload received. %s" % err, reason="parseError"))
            except Exception as err:  # noqa: BLE001 - a sandbox bug must not kill the server
                import traceback

                traceback.print_exc()
                resp = app.error_response(ApiError(500, "sandbox internal error: %s" % err, reason="backendError"))
            if resp is not None and getattr(resp, "stream", None) is not None:
                # A watch: chunked JSON lines until the handler's generator ends or the client goes away.
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.content_type)
                self.send_header("Transfer-Encoding", "chunked")
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    for chunk in resp.stream:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    self.close_connection = True
                finally:
                    resp.stream.close()
                status = resp.status
                resp = None
            if resp is not None:
                payload = resp.encode()
                self.send_response(resp.status)
                if payload or resp.status not in (204, 304):
                    self.send_header("Content-Type", resp.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                status = resp.status
            sandbox.log.add(
                {
                    "ts": time.time(),
                    "began": began,
                    "family": app.family,
                    "method": req.method,
                    "path": req.raw_path,
                    "status": status,
                    "fault": fault,
                    "ms": round((time.monotonic() - started) * 1000, 2),
                    # Who asked, without the credential: a workload the sandbox runs, by its metadata-server token.
                    "origin": getattr(req, "origin", None),
                }
            )

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        def do_CONNECT(self):  # noqa: N802 - http.server's naming
            # Only an app that serves as an HTTP proxy (the kube family's bastion) answers CONNECT.
            if not hasattr(app, "connect"):
                self.send_error(405)
                return
            host, _, port = self.path.rpartition(":")
            started, began = time.monotonic(), time.time()
            status = app.connect(self, host, int(port or 443))
            origin = app.origin() if hasattr(app, "origin") else None
            sandbox.log.add({"ts": time.time(), "began": began, "family": app.family, "method": "CONNECT",
                             "path": self.path,
                             "status": status, "fault": None, "ms": round((time.monotonic() - started) * 1000, 2),
                             "origin": origin})

    return Handler


BASTION_SERVES = "it serves sandbox cluster endpoints and *.googleapis.com:443 only"


def connect_tunnel(handler, sandbox, host, port, refused=BASTION_SERVES):
    """Answer an HTTP CONNECT: splice the client to the loopback endpoint the sandbox maps host:port to.

    The target comes only from `sandbox.resolve` (cluster endpoints, the googleapis.com front end), so a proxy
    built on this never dials anything else; `refused` says what the proxy serves, for the 403 of any other host.
    """
    handler.close_connection = True
    try:
        target = sandbox.resolve(host, port)
    except LookupError:
        handler.send_error(403, "sandbox proxy: %s:%s is not reachable from here (%s; it never dials out)"
                           % (host, port, refused))
        return 403
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError:
        handler.send_error(502, "%s:%s is mapped but not answering" % (host, port))
        return 502
    handler.send_response(200, "Connection established")
    handler.end_headers()
    client = handler.connection
    sockets = [client, upstream]
    try:
        while True:
            readable, _, broken = select.select(sockets, [], sockets, 300)
            if broken or not readable:
                break
            done = False
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    done = True
                    break
                (upstream if sock is client else client).sendall(data)
            if done:
                break
    except OSError:
        pass
    finally:
        upstream.close()
    return 200


class Server:
    def __init__(self, app, sandbox, port=0, ssl_context=None):
        self.app = app
        self.httpd = ThreadingHTTPServer((LOOPBACK, port), make_handler(app, sandbox))
        self.scheme = "http"
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="sandbox-%s" % app.family, daemon=True)

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return "%s://%s:%d" % (self.scheme, LOOPBACK, self.port)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
