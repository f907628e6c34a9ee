"""A real SMTP server on loopback that keeps what it is sent: the sink for the platform's notification mail.

aiosmtpd answers like a submission server: STARTTLS with a certificate from its own CA (`<dir>/ca.pem`, which a
client must trust), AUTH PLAIN/LOGIN against the users it was given, and no MAIL FROM before a successful AUTH, nor
AUTH before STARTTLS. Each accepted message is written whole to `<dir>/mail/<n>.json` (envelope, login, raw
message), so a test reads what arrived, in order, from another process too.

`python -m sandbox.smtp_server --dir D --port P --user NAME` runs one in the foreground, the password read from the
environment variable SKYFORGE_SMTP_PASSWORD (never from the command line).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import hmac
import itertools
import json
import os
import signal
import socket
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from . import tls as pki

MECHANISMS = ("PLAIN", "LOGIN")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.sink.store(session, envelope)
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink:
    """One SMTP server; start() returns once it answers, stop() ends it. users: {login: password}."""

    def __init__(self, directory, users, port=None, tls=True, host="127.0.0.1"):
        self.dir = str(directory)
        self.users = dict(users)
        self.port = port or free_port()
        self.host = host
        self.tls = tls
        self.ca_path = os.path.join(self.dir, "ca.pem")
        self.mail_dir = os.path.join(self.dir, "mail")
        self.refused = []
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode("utf-8", "replace") if isinstance(auth_data, LoginPassword) else None
        expected = self.users.get(login) if login is not None else None
        if mechanism not in MECHANISMS or expected is None or not hmac.compare_digest(expected.encode(),
                                                                                         auth_data.password):
            self.refused.append({"mechanism": mechanism, "at": time.time()})
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)

    def start(self):
        os.makedirs(self.mail_dir, mode=0o700, exist_ok=True)
        kwargs = dict(authenticator=self._authenticate, auth_required=True, auth_require_tls=self.tls,
                      auth_exclude_mechanism=[], server_hostname="smtp.sandbox.test")
        if self.tls:
            ca, ca_key = pki.new_ca("SMTP sink CA", 30, organization="skyforge sandbox")
            cert, key = pki.issue(ca, ca_key, self.host, ips=[self.host], dns_names=["localhost"])
            pki.write_private(self.ca_path, pki.pem(ca))
            kwargs.update(tls_context=pki.server_context(os.path.join(self.dir, "server.pem"), cert, key),
                          require_starttls=True)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=30, **kwargs)
        self._controller.start()
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def store(self, session, envelope):
        raw = envelope.original_content or envelope.content
        raw = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        entry = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "login": session.auth_data,
                 "tls": session.ssl is not None, "subject": str(msg.get("Subject", "")),
                 "body": body.get_content() if body is not None else "", "raw": raw.decode("utf-8", "replace"),
                 "received": time.time()}
        with self._lock:
            path = os.path.join(self.mail_dir, "%06d.json" % next(self._seq))
            pki.write_private(path, json.dumps(entry, indent=1))

    def messages(self):
        return read_messages(self.dir)

    def wait_for(self, predicate, timeout):
        """The first stored message for which predicate(message) is true; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if predicate(m)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError("no matching mail reached the SMTP sink in %ds; it holds %d: %s" % (
                    timeout, len(self.messages()), [m["subject"] for m in self.messages()]))
            time.sleep(0.5)

    def url_parts(self):
        return {"host": self.host, "port": self.port, "ca": self.ca_path if self.tls else None}


def read_messages(directory):
    mail_dir = os.path.join(str(directory), "mail")
    out = []
    for name in sorted(os.listdir(mail_dir)) if os.path.isdir(mail_dir) else ():
        if name.endswith(".json"):
            with open(os.path.join(mail_dir, name)) as fh:
                out.append(json.load(fh))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox.smtp_server")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", required=True)
    parser.add_argument("--no-tls", action="store_true")
    args = parser.parse_args(argv)
    password = os.environ.get("SKYFORGE_SMTP_PASSWORD")
    if not password:
        parser.error("set SKYFORGE_SMTP_PASSWORD to the password of --user")
    sink = SmtpSink(args.dir, {args.user: password}, port=args.port or None, tls=not args.no_tls).start()
    print(json.dumps(sink.url_parts()), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sink.stop()


if __name__ == "__main__":
    main()
