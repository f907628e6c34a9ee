"""Benchmark 4: HCP Terraform components applied in parallel, against the graph's critical path.

    .venv/bin/python bench/tfc_graph.py --scale 1.0

Starts a fresh sandbox, then applies 12 synthetic components (remote execution, bench/tfc_graph/main.tf) in a graph
of depth 3 with the tfc_workspace_runs role twice: once with tfc_workspace_runs_parallelism (default 4), once with
parallelism 1 (one component after another, the serial figure), each in workspaces of its own. Reports the critical
path (the longest chain of dependent components, each weighing its run's duration from the sandbox's operation
timeline: queued to applied), the parallel converge's wall time (goal <= 1.15x the critical path) and the serial one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import critical_path as cp  # noqa: E402
from benchenv import ansible_env, in_venv  # noqa: E402

# Depth 3: four roots, four components on them, four on those; value_from hands an output down every edge's first
# dependency.
GRAPH = {
    "c01": [], "c02": [], "c03": [], "c04": [],
    "c05": ["c01"], "c06": ["c01", "c02"], "c07": ["c03"], "c08": ["c04"],
    "c09": ["c05"], "c10": ["c06", "c07"], "c11": ["c08"], "c12": ["c07"],
}


def components(graph=GRAPH):
    out = []
    for name, deps in graph.items():
        variables = [{"key": "name", "value": name}]
        if deps:
            variables.append({"key": "upstream", "value_from": "%s.id" % deps[0]})
        out.append({"name": name, "config_dir": os.path.join(ROOT, "bench", "tfc_graph"), "depends_on": deps,
                    "execution_mode": "remote", "variables": variables})
    return out


def get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer %s" % token} if token else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def converge(env, prefix, parallelism, workdir):
    values = {"tfc_workspace_runs_components": components(), "tfc_workspace_runs_workspace_prefix": prefix,
              "tfc_workspace_runs_parallelism": parallelism, "tfc_workspace_runs_execution_mode": "remote"}
    path = os.path.join(workdir, "%svars.json" % prefix)
    with open(path, "w") as fh:
        json.dump(values, fh)
    started, started_wall = time.monotonic(), time.time()
    proc = subprocess.run(["ansible-playbook", "bench/tfc_graph.yml", "-i", "inventories/sandbox", "-e", "@" + path],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    with open(os.path.join(workdir, "%sconverge.log" % prefix), "w") as fh:
        fh.write(proc.stdout + proc.stderr)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit("ansible-playbook failed (rc=%d)" % proc.returncode)
    return wall, started_wall, started_wall + wall


def run_spans(ep, prefix, timeline):
    """{component: (start, end) of its run, queued to applied} from the sandbox's timeline."""
    spans = cp.run_spans(timeline)
    api = ep["tfc_address"].rstrip("/") + "/api/v2"
    out = {}
    for name in GRAPH:
        ws = get("%s/organizations/%s/workspaces/%s%s" % (api, ep["tfc_organization"], prefix, name), ep["tfc_token"])
        runs = get("%s/workspaces/%s/runs" % (api, ws["data"]["id"]), ep["tfc_token"])["data"]
        out[name] = spans[runs[0]["id"]]
    return out


def split(spans, started, ended):
    """Seconds before the first run, from the first run's start to the last run's end, and after it."""
    first = min(s for s, _e in spans.values())
    last = max(e for _s, e in spans.values())
    return first - started, last - first, ended - last


def main():
    in_venv()
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--no-serial", action="store_true", help="skip the serial converge")
    parser.add_argument("--log-dir", help="keep both converges' output here")
    args = parser.parse_args()
    env = ansible_env(SKYFORGE_SANDBOX_TIME_SCALE=args.scale)
    python = env.get("VIRTUAL_ENV", sys.prefix) + "/bin/python"
    subprocess.run([python, "-m", "sandbox", "down"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "-m", "sandbox", "up", "--fresh"], cwd=ROOT, env=env, check=True)
    workdir = args.log_dir or tempfile.mkdtemp(prefix="tfc-graph-")
    os.makedirs(workdir, exist_ok=True)
    try:
        state_dir = env.get("SKYFORGE_SANDBOX_DIR", os.path.join(ROOT, ".sandbox"))
        with open(os.path.join(state_dir, "endpoints.json")) as fh:
            ep = json.load(fh)
        wall, started, ended = converge(env, "par-", args.parallelism, workdir)
        spans = run_spans(ep, "par-", get(ep["gcp_url"] + "/_sandbox/timeline"))
        took = dict((n, e - s) for n, (s, e) in spans.items())
        seconds, chain = cp.graph_critical_path(took, GRAPH)
        print("12 components, depth 3, scale %g: critical path %.1fs (%s), runs %.1f-%.1fs each" % (
            args.scale, seconds, " -> ".join("%s %.1fs" % (n, took[n]) for n in chain), min(took.values()),
            max(took.values())))
        print("parallel (parallelism %d): wall %.1fs, ratio %.2f (goal <= 1.15)"
              % (args.parallelism, wall, wall / seconds))
        before, graph, after = split(spans, started, ended)
        print("  %.1fs before the first run (Ansible start, validation, the graph module's start and the first "
              "workspace), %.1fs from the first run to the end of the last (%.2fx the critical path), %.1fs after it"
              % (before, graph, graph / seconds, after))
        if not args.no_serial:
            serial = converge(env, "ser-", 1, workdir)[0]
            print("serial (parallelism 1): wall %.1fs, ratio %.2f; sum of the parallel runs %.1fs" % (
                serial, serial / seconds, sum(took.values())))
        print("logs: %s" % workdir)
    finally:
        subprocess.run([python, "-m", "sandbox", "down"], cwd=ROOT, env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
