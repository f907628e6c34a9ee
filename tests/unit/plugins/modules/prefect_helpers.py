"""Shared pieces of the Prefect module tests: a real Prefect server (SQLite, basic auth) on loopback."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

from sandbox.kube.releases import offline_env

AUTH = "admin:s3cret-pw"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_env(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(offline_env())
    env.update({"PREFECT_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def start_server(home, **extra_env):
    """Start `prefect server start` (its services too: triggers and actions run in it) and wait for /health.

    Returns (process, api_url); stop it with stop_server(process).
    """
    port = free_port()
    url = "http://127.0.0.1:%d/api" % port
    log = open(str(home / "server.log"), "wb")
    env = prefect_env(home, PREFECT_SERVER_API_AUTH_STRING=AUTH,
                      PREFECT_API_DATABASE_CONNECTION_URL="sqlite+aiosqlite:///%s/p.db" % home, **extra_env)
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                break
        except Exception:  # noqa: BLE001
            if proc.poll() is not None:
                raise AssertionError("prefect server exited: %s" % (home / "server.log").read_text())
            time.sleep(0.5)
    else:
        stop_server(proc)
        raise AssertionError("prefect server did not answer in 120s")
    return proc, url


def stop_server(proc):
    os.killpg(proc.pid, 15)
    proc.wait(20)
