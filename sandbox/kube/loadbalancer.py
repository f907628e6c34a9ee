"""The external HTTP(S) load balancer GKE builds for an ingress, in miniature: Cloud Armor, then the backend.

A release's ingress maps its global IP (ports 80 and 443) to one of these instead of to the release itself. Each
request is checked against the Cloud Armor policy that the backend's BackendConfig names, as it stands at that
moment, and refused with the rule's status (Google's plain 403/404/502 page) or forwarded to the backend.

The load balancer sees the TCP source address, and here every connection comes from 127.0.0.1, so the address is
carried by the header `X-Sandbox-Source-IP`, standing in for the network layer. Cloudflare's edge proxy sets it
to its own egress address (inside Cloudflare's published ranges), as the real edge connects from those ranges; a
caller that sets nothing is 127.0.0.1, an outsider, which is what a direct hit on the IP is. The header never
reaches the backend.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOURCE_IP_HEADER = "X-Sandbox-Source-IP"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}
STATUS_TEXT = {403: "Forbidden", 404: "Not Found", 502: "Bad Gateway"}


def google_error_page(status):
    return ('<!doctype html><meta charset="utf-8"><meta name=viewport content="width=device-width, initial-scale=1">'
            "<title>%d</title>%d %s" % (status, status, STATUS_TEXT.get(status, ""))).encode()


class LoadBalancer:
    """`policy()` -> the Cloud Armor policy in force (a compute#securityPolicy dict) or None; `backend()` -> a
    loopback port, or (host, port)."""

    def __init__(self, policy, backend, evaluate):
        self.policy = policy
        self.backend = backend
        self.evaluate = evaluate
        self.refused = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="gclb", daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.httpd.server_address[1]

    def decide(self, source_ip):
        """(status to refuse with, or None to forward, rule priority)."""
        policy = self.policy()
        if not policy:
            return None, None
        action, priority = self.evaluate(policy, source_ip)
        if action.startswith("deny(") and action.endswith(")"):
            return int(action[5:-1]), priority
        return None, priority

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(lb):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Google Frontend"
        # Headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK of the headers,
        # 40 ms on every request after a connection's first, which no real front end adds.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):
            pass

        def _reply(self, status, data, headers):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Via", "1.1 google")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            source = self.headers.get(SOURCE_IP_HEADER) or self.client_address[0]
            status, _priority = lb.decide(source)
            if status is not None:
                lb.refused += 1
                self._reply(status, google_error_page(status), [("Content-Type", "text/html; charset=UTF-8")])
                return
            headers = dict((k, v) for k, v in self.headers.items()
                           if k.lower() not in HOP_BY_HOP and k.lower() != SOURCE_IP_HEADER.lower())
            forwarded = headers.get("X-Forwarded-For")
            headers["X-Forwarded-For"] = "%s, %s" % (forwarded, source) if forwarded else source
            try:
                target = lb.backend()
                host, port = target if isinstance(target, tuple) else ("127.0.0.1", target)
                conn = http.client.HTTPConnection(host, port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
            except (OSError, TypeError):
                self._reply(502, google_error_page(502), [("Content-Type", "text/html; charset=UTF-8")])
                return
            self._reply(resp.status, data, [(k, v) for k, v in resp.getheaders()
                                            if k.lower() not in HOP_BY_HOP and k.lower() != "via"])

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    return Handler
