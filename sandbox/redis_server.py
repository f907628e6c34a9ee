"""A real redis-server on loopback behind each of the sandbox's Memorystore instances.

One process per instance, started in its own session and recorded (sandbox/procs.py) so `python -m sandbox down`
stops it. Its settings, the AUTH string among them, go in a 0600 config file, never on the command line. The sandbox
itself talks to it over a unix socket only (PING, CONFIG SET); clients reach it through the mapped address.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time

from cryptography.hazmat.primitives import serialization

from . import procs
from . import tls as pki  # `tls` is RedisServer.start's flag

PACKAGE = "redis-server"


def find_redis_server():
    path = os.environ.get("SKYFORGE_REDIS_SERVER") or shutil.which("redis-server")
    if not path or not os.access(path, os.X_OK):
        raise FileNotFoundError("redis-server not found: install the Debian package '%s' (bindep.txt) or set "
                                "SKYFORGE_REDIS_SERVER" % PACKAGE)
    return path


def make_tls(directory, ip, label, served_at=()):
    """A per-instance CA and a server certificate for `ip` signed by it; returns the CA's TlsCertificate fields.

    `served_at`: the loopback addresses the sandbox serves `ip` from (its `map_address` target). A client that dials
    the instance's address is sent there, so the certificate names them beside `ip`, as the real one names the address
    the client dialled. The CA is the instance's own: no other server's certificate verifies against it.
    """
    ca, ca_key = pki.new_ca("Memorystore for Redis CA %s" % label, 3650, organization="skyforge sandbox")
    server, key = pki.issue(ca, ca_key, ip, ips=[ip] + [a for a in served_at if a != ip])
    ca_pem = pki.pem(ca)
    pki.write_private(os.path.join(directory, "ca.pem"), ca_pem)
    pki.write_private(os.path.join(directory, "server.pem"), pki.pem(server))
    pki.write_private(os.path.join(directory, "server.key"), pki.key_pem(key))
    stamp = "%Y-%m-%dT%H:%M:%S.000000Z"
    return {"serialNumber": str(ca.serial_number), "cert": ca_pem.decode(),
            "createTime": ca.not_valid_before_utc.strftime(stamp), "expireTime": ca.not_valid_after_utc.strftime(stamp),
            "sha1Fingerprint": hashlib.sha1(ca.public_bytes(serialization.Encoding.DER)).hexdigest()}


class RedisServer:
    def __init__(self, directory, port, pid_dir, what):
        self.dir = directory
        self.port = port
        self.pid_dir = pid_dir
        self.what = what
        self.proc = None
        self.password = None
        self.socket = os.path.join(directory, "redis.sock")

    def start(self, password=None, tls=False, maxmemory_gb=1, configs=None):
        binary = find_redis_server()
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.password = password
        lines = ["bind 127.0.0.1", "protected-mode no", "daemonize no", "dir %s" % self.dir,
                 "unixsocket %s" % self.socket, "unixsocketperm 700", 'save ""', "appendonly no",
                 "logfile %s" % os.path.join(self.dir, "redis.log"), "maxmemory %dgb" % maxmemory_gb,
                 "maxmemory-policy volatile-lru"]
        if tls:
            lines += ["port 0", "tls-port %d" % self.port, "tls-cert-file %s" % os.path.join(self.dir, "server.pem"),
                      "tls-key-file %s" % os.path.join(self.dir, "server.key"),
                      "tls-ca-cert-file %s" % os.path.join(self.dir, "ca.pem"), "tls-auth-clients no"]
        else:
            lines.append("port %d" % self.port)
        if password:
            lines.append("requirepass %s" % password)
        for name, value in sorted((configs or {}).items()):
            lines.append("%s %s" % (name, value))
        conf = os.path.join(self.dir, "redis.conf")
        pki.write_private(conf, "\n".join(lines) + "\n")
        self.proc = procs.spawn(self.pid_dir, [binary, conf], self.what, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s: %s" % (self.proc.returncode, self.log_tail()))
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer within 20s: %s" % self.log_tail())
            time.sleep(0.05)

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as fh:
                return " | ".join(fh.read().strip().splitlines()[-3:])[-600:]
        except OSError:
            return "(no log)"

    def command(self, *args):
        """One command over the unix socket (authenticated when the instance has a password); its reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(self.socket)
            reader = sock.makefile("rb")
            if self.password:
                sock.sendall(_encode("AUTH", self.password))
                _reply(reader)
            sock.sendall(_encode(*args))
            return _reply(reader)

    def configure(self, password=None, maxmemory_gb=None, configs=None):
        """Live changes, as Memorystore applies them without a restart (the data stays)."""
        for name, value in sorted((configs or {}).items()):
            self.command("CONFIG", "SET", name, str(value))
        if maxmemory_gb is not None:
            self.command("CONFIG", "SET", "maxmemory", "%dgb" % maxmemory_gb)
        if password is not False:
            self.command("CONFIG", "SET", "requirepass", password or "")
            self.password = password

    def stop(self):
        if self.proc is not None:
            procs.stop(self.pid_dir, self.proc)
            self.proc = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else bytes(arg)
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _reply(reader):
    line = reader.readline()
    if not line:
        raise ConnectionError("redis-server closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n").decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError("redis-server: %s" % rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode()
    if kind == b"*":
        return [_reply(reader) for _i in range(max(int(rest), 0))]
    raise RuntimeError("unexpected reply from redis-server: %r" % line)
