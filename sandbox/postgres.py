"""A real PostgreSQL on loopback behind the sandbox's Cloud SQL instances.

PostgreSQL refuses to run as root, so as root we run it as an unprivileged system user.
"""

from __future__ import annotations

import datetime
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time

PG_USER = os.environ.get("SKYFORGE_PG_OS_USER", "postgres")


def find_pg_bin():
    """The directory holding initdb, pg_ctl and postgres."""
    candidates = []
    env = os.environ.get("SKYFORGE_PG_BIN")
    if env:
        candidates.append(env)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for name in ("initdb", "pg_ctl"):
        found = shutil.which(name)
        if found:
            candidates.append(os.path.dirname(os.path.realpath(found)))
    for cand in candidates:
        if all(os.access(os.path.join(cand, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return cand
    raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: "
                            "install the Debian package 'postgresql' or set SKYFORGE_PG_BIN")


def _psql():
    found = shutil.which("psql")
    if found:
        return found
    path = os.path.join(find_pg_bin(), "psql")
    if os.path.exists(path):
        return path
    raise FileNotFoundError("psql not found: install postgresql-client")


class Postgres:
    def __init__(self, state_dir, port, pid_dir=None):
        # The sandbox's state dir, where the postmaster is recorded so `python -m sandbox down` stops it.
        self.pid_dir = pid_dir
        self.as_root = os.geteuid() == 0
        data_dir = os.path.join(state_dir, "pg", "data")
        if self.as_root:
            # The unprivileged server user cannot traverse a root-only state dir (pytest's tmp, say).
            import hashlib

            tag = hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:12]
            data_dir = os.path.join("/tmp", "skyforge-pg-%s" % tag, "data")
        self.data_dir = data_dir
        self.port = port
        self.bin = find_pg_bin()
        self.password_file = os.path.join(state_dir, "pg-superuser-password")
        self.superuser = "postgres"
        self.password = None

    def _ensure_port(self):
        if not self.port:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]

    def _run(self, args, **kw):
        if self.as_root:
            args = ["runuser", "-u", PG_USER, "--"] + args
        proc = subprocess.run(args, capture_output=True, text=True, **kw)
        if proc.returncode:
            raise RuntimeError("%s failed: %s" % (" ".join(args), (proc.stderr or proc.stdout).strip()[-800:]))
        return proc

    def _ensure_os_user(self):
        if not self.as_root:
            return
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                           check=True)

    def start(self):
        self._ensure_port()
        self._ensure_os_user()
        parent = os.path.dirname(self.data_dir)
        os.makedirs(parent, mode=0o711, exist_ok=True)
        if self.as_root:
            owner = pwd.getpwnam(PG_USER)
            os.chown(parent, owner.pw_uid, owner.pw_gid)
        os.makedirs(os.path.dirname(self.password_file), exist_ok=True)
        if not os.path.exists(self.password_file):
            # Data without its password (a leftover of a killed run) cannot be used: start over.
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if not os.path.exists(os.path.join(self.data_dir, "PG_VERSION")):
            shutil.rmtree(self.data_dir, ignore_errors=True)
            os.makedirs(self.data_dir, mode=0o700)
            self.password = secrets.token_urlsafe(24)
            pwfile = os.path.join(parent, ".pg-initdb-pw")
            with open(pwfile, "w") as fh:
                fh.write(self.password)
            if self.as_root:
                owner = pwd.getpwnam(PG_USER)
                os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
                os.chown(pwfile, owner.pw_uid, owner.pw_gid)
            self._run([os.path.join(self.bin, "initdb"), "-D", self.data_dir, "-U", self.superuser,
                       "--pwfile", pwfile, "-A", "scram-sha-256", "-E", "UTF8", "--no-instructions"])
            os.unlink(pwfile)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self.password)
        else:
            with open(self.password_file) as fh:
                self.password = fh.read().strip()
        self._ensure_tls()
        log = os.path.join(self.data_dir, "server.log")
        opts = "-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='' -c max_connections=200 " \
               "-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c ssl=on " \
               "-c ssl_cert_file=server.crt -c ssl_key_file=server.key" % self.port
        self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data_dir, "-l", log, "-o", opts, "-w", "-t", "60",
                   "start"])
        self._record()
        deadline = time.time() + 30
        while True:
            try:
                self.sql("select 1")
                return
            except subprocess.CalledProcessError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def _ensure_tls(self):
        """Cloud SQL requires TLS (sslMode ENCRYPTED_ONLY): so does the sandbox's server, for real."""
        crt = os.path.join(self.data_dir, "server.crt")
        if os.path.exists(crt):
            return
        from . import tls

        # Self-signed, CA and server certificate at once: what the instance's serverCaCert hands clients.
        cert, key = tls.new_ca("skyforge-sandbox-cloudsql", 3651, None, use_rsa=True, key_usage=(),
                               backdate=datetime.timedelta(days=1))
        self.ca_pem = tls.pem(cert).decode()
        for path, data in ((crt, tls.pem(cert)), (os.path.join(self.data_dir, "server.key"), tls.key_pem(key))):
            tls.write_private(path, data)
            if self.as_root:
                owner = pwd.getpwnam(PG_USER)
                os.chown(path, owner.pw_uid, owner.pw_gid)
        hba = os.path.join(self.data_dir, "pg_hba.conf")
        with open(hba, "w") as fh:
            fh.write("hostssl all all 127.0.0.1/32 scram-sha-256\n")
        if self.as_root:
            owner = pwd.getpwnam(PG_USER)
            os.chown(hba, owner.pw_uid, owner.pw_gid)

    def server_ca(self):
        with open(os.path.join(self.data_dir, "server.crt")) as fh:
            return fh.read()

    def destroy(self):
        """Stop the server and delete its data: a deleted Cloud SQL instance leaves nothing behind."""
        self.stop()
        shutil.rmtree(os.path.dirname(self.data_dir), ignore_errors=True)

    def _postmaster_pid(self):
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as fh:
                return int(fh.readline().strip())
        except (OSError, ValueError):
            return None

    def _record(self):
        pid = self._postmaster_pid()
        if self.pid_dir and pid:
            from . import procs

            # SIGINT is PostgreSQL's fast shutdown; the postmaster is not a group leader of its own.
            procs.record(self.pid_dir, pid, "postgres %s" % self.data_dir, stop_signal=signal.SIGINT, group=False)

    def stop(self):
        pid = self._postmaster_pid()
        try:
            self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data_dir, "-m", "fast", "-w", "stop"])
        except RuntimeError:
            pass
        if self.pid_dir and pid:
            from . import procs

            procs.forget(self.pid_dir, pid)

    def sql(self, statement, dbname="postgres", user=None, password=None):
        env = dict(os.environ, PGPASSWORD=password or self.password, PGCONNECT_TIMEOUT="5", PGSSLMODE="require")
        proc = subprocess.run(
            [_psql(), "-h", "127.0.0.1", "-p", str(self.port), "-U", user or self.superuser, "-d", dbname,
             "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statement],
            check=True, capture_output=True, text=True, env=env,
        )
        return proc.stdout

    @staticmethod
    def ident(name):
        return '"%s"' % name.replace('"', '""')

    @staticmethod
    def literal(value):
        return "'%s'" % value.replace("'", "''")

    def info(self):
        return {"host": "127.0.0.1", "port": self.port, "superuser": self.superuser,
                "password_file": self.password_file}
