"""Benchmark 3: the cost of a no-op module call, and where it goes.

    .venv/bin/python bench/module_overhead.py [-n 15]

Runs `gcp_network` against an in-process sandbox for a network that already exists (a no-op) N times three ways:
  ansible   - `ansible localhost -m skyforge.prefect_platform.gcp_network`: Ansible's module transport included;
  module    - the module file run directly as Ansible's runner would: our code, imports, auth, HTTP;
  http      - the server-side time of the HTTP round trips, from the sandbox's request log.
Reports the median of each and the share of the Ansible call spent in transport versus our code versus HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from benchenv import ansible_env, in_venv  # noqa: E402


def main():
    in_venv()
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=15)
    args = parser.parse_args()
    from sandbox.core import Config, Sandbox

    sb = Sandbox(Config(state_dir=tempfile.mkdtemp(prefix="skyforge-bench-"), port_base=0, time_scale=0.001),
                 with_postgres=False).start()
    try:
        ep = sb.endpoints()
        app = sb.apps["gcp"]
        app.enabled["projects/%s/services/compute.googleapis.com" % app.project_number] = True
        margs = {"project": ep["gcp_project"], "auth_kind": "serviceaccount",
                 "service_account_file": ep["gcp_service_account_file"],
                 "api_endpoint_template": ep["gcp_api_endpoint_template"], "name": "bench-net"}
        env = ansible_env(PYTHONPATH=COLLECTIONS)

        def module_call():
            payload = json.dumps({"ANSIBLE_MODULE_ARGS": dict(margs, _ansible_check_mode=False, _ansible_diff=False)})
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m",
                                   "ansible_collections.skyforge.prefect_platform.plugins.modules.gcp_network"],
                                  input=payload, capture_output=True, text=True, env=env, check=True)
            return time.perf_counter() - started, json.loads(proc.stdout.strip().splitlines()[-1])

        module_call()  # creates the network
        module_times, http_times, ansible_times = [], [], []
        for _ in range(args.n):
            before = len(sb.log.entries)
            seconds, result = module_call()
            assert not result["changed"], "the benchmark needs a no-op"
            module_times.append(seconds)
            http_times.append(sum(e["ms"] for e in sb.log.entries[before:]) / 1000.0)
        for _ in range(args.n):
            started = time.perf_counter()
            subprocess.run(["ansible", "localhost", "-e", "ansible_python_interpreter=%s" % sys.executable,
                            "-m", "skyforge.prefect_platform.gcp_network", "-a", json.dumps(margs)],
                           capture_output=True, text=True, env=env, check=True)
            ansible_times.append(time.perf_counter() - started)
        a, m, h = (statistics.median(x) for x in (ansible_times, module_times, http_times))
        print("no-op gcp_network, median of %d: ansible %.3fs, module %.3fs, HTTP (server side) %.4fs" % (args.n, a, m, h))
        print("share of the ansible call: transport %.0f%%, our code + imports + auth %.0f%%, HTTP %.1f%%" % (
            100 * (a - m) / a, 100 * (m - h) / a, 100 * h / a))
        print("requests per no-op call: %d" % (len(sb.log.entries) / (2 * args.n + 1)))
    finally:
        sb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
