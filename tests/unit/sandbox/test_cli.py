"""`python -m sandbox up` starts every family (PostgreSQL included) and `down` leaves no process behind."""

import json
import os
import random
import socket
import subprocess
import sys
import time

from tests.unit.conftest import REPO


def _free_base():
    # Below the kernel's ephemeral range: the tests running beside this one bind port 0 and dial out all the time,
    # and either can take a port of that range between this check and the sandbox's bind.
    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        ephemeral_low = int(fh.read().split()[0])
    for _attempt in range(50):
        base = random.randint(min(20000, ephemeral_low - 1100), ephemeral_low - 100)
        ok = True
        for offset in list(range(4)) + list(range(20, 40)):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + offset))
                except OSError:
                    ok = False
        if ok:
            return base
    raise AssertionError("no free port range")


def _processes_mentioning(text):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open("/proc/%s/environ" % pid, "rb") as fh:
                env = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd or text in env:
            out.append((int(pid), cmd[:200]))
    return out


def test_up_then_down_leaves_nothing_running(tmp_path):
    state = tmp_path / "sb"
    env = dict(os.environ, SKYFORGE_SANDBOX_DIR=str(state), SKYFORGE_SANDBOX_PORT_BASE=str(_free_base()),
               SKYFORGE_SANDBOX_TIME_SCALE="0.002", ANSIBLE_NOCOLOR="1")

    def sandbox(*args):
        return subprocess.run([sys.executable, "-m", "sandbox"] + list(args), cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    started = time.monotonic()
    up = sandbox("up", "--fresh")
    took = time.monotonic() - started
    assert up.returncode == 0, up.stdout + up.stderr
    with open(state / "endpoints.json") as fh:
        endpoints = json.load(fh)
    for family in ("gcp", "cloudflare", "tfc", "kube"):
        assert endpoints[family + "_url"].startswith("http://127.0.0.1:")
    # A Cloud SQL instance runs a PostgreSQL server of its own: a child the sandbox must stop.
    site = subprocess.run(["ansible-playbook", os.path.join(REPO, "site.yml"), "-i",
                           os.path.join(REPO, "inventories", "sandbox"), "--tags", "foundation,cloudsql",
                           "-e", "skyforge_name=cli"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert site.returncode == 0, site.stdout[-3000:] + site.stderr[-2000:]
    from sandbox.postgres import Postgres

    instance_state = state / "cloudsql" / ("projects/%s/instances/cli-db" % endpoints["gcp_project"]).replace("/", "_")
    pg_dir = os.path.dirname(Postgres(str(instance_state), 0).data_dir)
    running = _processes_mentioning(str(state))
    assert running, "the sandbox should be running"
    assert _processes_mentioning(pg_dir), "the Cloud SQL instance's PostgreSQL should be running"

    down = sandbox("down")
    assert down.returncode == 0, down.stdout + down.stderr
    deadline = time.monotonic() + 60
    while (_processes_mentioning(str(state)) or _processes_mentioning(pg_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_mentioning(str(state)) == [], ("processes left behind after down", down.stdout, down.stderr)
    assert _processes_mentioning(pg_dir) == [], ("PostgreSQL left behind after down", down.stdout, down.stderr)
    with open(state / "up-seconds.txt", "w") as fh:
        fh.write("%.1f\n" % took)  # reported in bench/README.md, never asserted: speed is not a test
